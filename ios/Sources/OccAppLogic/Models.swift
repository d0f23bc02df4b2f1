// What the screens show, computed from the client off the main thread
// (mirrors the Android logic's Conversations.kt): the thread list, a
// conversation with a live TTL countdown per message, and the keep period.
// Plain classes (no Combine, so they build on Linux) whose state is behind a
// lock; `onChange` is called, on whatever thread made the change, after each
// change: the SwiftUI app copies the state onto the main actor there.
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
    if minutes > 0 { return "expires in \(minutes) min \(seconds < 10 ? "0" : "")\(seconds) s" }
    return "expires in \(seconds) s"
}

public extension ThreadSummary {
    /// Where a reply in this thread goes: the thread, or the other user.
    func replyTo() -> Recipient {
        kind == .group ? .thread(id: id, members: []) : .user(name: title)
    }
}

/// A change callback behind a lock (set from the UI, called from anywhere).
final class ChangeCallback: @unchecked Sendable {
    private let callback = Protected<(() -> Void)?>(nil)

    var value: (() -> Void)? {
        get { callback.get() }
        set { callback.set(newValue) }
    }

    func fire() { callback.get()?() }
}

/// The thread list.
public final class ThreadsModel: @unchecked Sendable {
    private let client: Client
    private let state = Protected<[ThreadSummary]>([])
    private let changed = ChangeCallback()

    public init(client: Client) { self.client = client }

    public var threads: [ThreadSummary] { state.get() }

    /// Called after each change of `threads`.
    public var onChange: (() -> Void)? {
        get { changed.value }
        set { changed.value = newValue }
    }

    public func refresh() async throws {
        let threads = try await client.threads()
        state.set(threads)
        changed.fire()
    }
}

/// One message as the conversation screen shows it.
public struct MessageItem: Equatable, Sendable {
    public let id: String
    public let sender: String
    public let outgoing: Bool
    public let text: String
    public let deadlineMs: Int64
    public let countdown: String
}

/// A conversation: its messages, newest first, each with a countdown to its
/// deadline (TTL, keep period or read timer). `tick` moves the countdowns
/// on the screen's clock and drops what expired, without crossing into the
/// core; `refresh` reloads from the core (which never returns expired
/// content).
public final class ConversationModel: @unchecked Sendable {
    private struct State {
        var loaded: [StoredMessage] = []
        var offsetMs: Int64 = 0 // trusted time minus the screen's clock
        var items: [MessageItem] = []
    }

    private let client: Client
    public let threadId: String
    private let state = Protected(State())
    private let changed = ChangeCallback()

    public init(client: Client, threadId: String) {
        self.client = client
        self.threadId = threadId
    }

    public var items: [MessageItem] { state.withLock { $0.items } }

    /// Called after each change of `items`.
    public var onChange: (() -> Void)? {
        get { changed.value }
        set { changed.value = newValue }
    }

    public func refresh(screenNowMs: Int64 = deviceNowMs()) async throws {
        let loaded: [StoredMessage]
        do {
            loaded = try await client.messages(threadId: threadId, limit: 50)
        } catch OccError.NotFound {
            loaded = []
        }
        let offset = try await client.nowMs() - screenNowMs
        state.withLock {
            $0.loaded = loaded
            $0.offsetMs = offset
        }
        tick(screenNowMs: screenNowMs)
    }

    /// Recomputes the countdowns at `screenNowMs`; expired messages disappear.
    public func tick(screenNowMs: Int64 = deviceNowMs()) {
        state.withLock { s in
            let now = screenNowMs + s.offsetMs
            s.items = s.loaded.filter { $0.deadlineMs > now }.map {
                MessageItem(id: $0.id, sender: $0.sender, outgoing: $0.outgoing, text: $0.text,
                            deadlineMs: $0.deadlineMs, countdown: countdownLabel(remainingMs: $0.deadlineMs - now))
            }
        }
        changed.fire()
    }

    public func send(to: Recipient, _ text: String, ttl: TimeInterval) async throws {
        try await client.sendText(to: to, text, ttl: ttl)
        try await refresh()
    }

    /// Opens a message (starts its read timer, if it has one).
    public func open(id: String) async throws {
        _ = try await client.markRead(id: id)
        try await refresh()
    }
}

/// The keep-period setting.
public final class SettingsModel: @unchecked Sendable {
    private let client: Client
    private let state = Protected<UInt64?>(nil)
    private let changed = ChangeCallback()

    public init(client: Client) { self.client = client }

    public var keepPeriodSecs: UInt64? { state.get() }

    /// Called after each change of `keepPeriodSecs`.
    public var onChange: (() -> Void)? {
        get { changed.value }
        set { changed.value = newValue }
    }

    public func refresh() async throws {
        let settings = try await client.settings()
        state.set(settings.keepPeriodSecs)
        changed.fire()
    }

    /// Sets it; the core refuses values above the organisation's maximum.
    public func setKeepPeriod(secs: UInt64) async throws {
        try await client.setKeepPeriodSecs(secs: secs)
        try await refresh()
    }
}
