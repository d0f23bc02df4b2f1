// What the screens show, computed from the client: threads, a conversation
// with a live TTL countdown per message, and the keep period. Plain classes
// (no Combine, so they build on Linux); the SwiftUI app observes them through
// `onChange`.
import Foundation
import Occ

/// "expires in …" for a remaining time, coarse when far, exact when near.
public func countdownLabel(remainingMs: Int64) -> String {
    if remainingMs <= 0 { return "expired" }
    let total = remainingMs / 1000
    let days = total / 86_400, hours = (total % 86_400) / 3_600
    let minutes = (total % 3_600) / 60, seconds = total % 60
    if days > 0 { return "expires in \(days) d \(hours) h" }
    if hours > 0 { return "expires in \(hours) h \(minutes) min" }
    if minutes > 0 { return String(format: "expires in %lld min %02lld s", minutes, seconds) }
    return "expires in \(seconds) s"
}

public extension ThreadSummary {
    /// Where a reply in this thread goes: the thread, or the other user.
    func replyTo() -> Recipient {
        kind == .group ? .thread(id: id, members: []) : .user(name: title)
    }
}

/// The thread list.
public final class ThreadsModel {
    private let client: Client
    public private(set) var threads: [ThreadSummary] = []
    public var onChange: (() -> Void)?

    public init(client: Client) { self.client = client }

    public func refresh() async throws {
        threads = try await client.threads()
        onChange?()
    }
}

/// One message as the conversation screen shows it.
public struct MessageItem: Equatable {
    public let id: String
    public let sender: String
    public let outgoing: Bool
    public let text: String
    public let deadlineMs: Int64
    public let countdown: String
}

/// A conversation: newest first, each message with a countdown to its
/// deadline. `tick` moves the countdowns on the screen's clock without
/// calling the core; `refresh` reloads (the core never returns expired
/// content).
public final class ConversationModel {
    private let client: Client
    public let threadId: String
    private var loaded: [StoredMessage] = []
    private var offsetMs: Int64 = 0
    public private(set) var items: [MessageItem] = []
    public var onChange: (() -> Void)?

    public init(client: Client, threadId: String) {
        self.client = client
        self.threadId = threadId
    }

    public func refresh(screenNowMs: Int64 = Int64(Date().timeIntervalSince1970 * 1000)) async throws {
        do {
            loaded = try await client.messages(threadId: threadId, limit: 50)
        } catch OccError.NotFound {
            loaded = []
        }
        offsetMs = try await client.nowMs() - screenNowMs
        tick(screenNowMs: screenNowMs)
    }

    public func tick(screenNowMs: Int64 = Int64(Date().timeIntervalSince1970 * 1000)) {
        let now = screenNowMs + offsetMs
        items = loaded.filter { $0.deadlineMs > now }.map {
            MessageItem(id: $0.id, sender: $0.sender, outgoing: $0.outgoing, text: $0.text,
                        deadlineMs: $0.deadlineMs, countdown: countdownLabel(remainingMs: $0.deadlineMs - now))
        }
        onChange?()
    }

    public func send(to: Recipient, _ text: String, ttl: TimeInterval) async throws {
        try await client.sendText(to: to, text, ttl: ttl)
        try await refresh()
    }

    public func open(id: String) async throws {
        _ = try await client.markRead(id: id)
        try await refresh()
    }
}

/// The keep-period setting.
public final class SettingsModel {
    private let client: Client
    public private(set) var keepPeriodSecs: UInt64?
    public var onChange: (() -> Void)?

    public init(client: Client) { self.client = client }

    public func refresh() async throws {
        keepPeriodSecs = try await client.settings().keepPeriodSecs
        onChange?()
    }

    public func setKeepPeriod(secs: UInt64) async throws {
        try await client.setKeepPeriodSecs(secs: secs)
        try await refresh()
    }
}
