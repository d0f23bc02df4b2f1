// Everything the screens need for the open profile: its models, its events
// (routed to refreshes and alerts), enrolment and background sync.
import Foundation
import Occ

/// Something the user must be told about.
public struct Alert: Equatable {
    public let kind: String
    public let detail: String
}

/// The open profile with its screen models and background sync.
public final class ProfileSession {
    public let name: String
    public let client: Client
    public let threads: ThreadsModel
    public let settings: SettingsModel
    private var conversations: [ConversationModel] = []
    private var sync: SyncHandle?
    private var events: Task<Void, Never>?
    private let lock = NSLock()
    public private(set) var connected: Bool?
    public var onAlert: ((Alert) -> Void)?
    public var onConnectionChange: ((Bool) -> Void)?

    public init(name: String, client: Client) {
        self.name = name
        self.client = client
        threads = ThreadsModel(client: client)
        settings = SettingsModel(client: client)
        events = Task { [weak self] in
            for await event in client.events() {
                await self?.handle(event)
            }
        }
    }

    public func isEnrolled() async throws -> Bool { try await client.enrolment() != nil }

    @discardableResult
    public func enrol(url: String, pin: String, user: String, caPem: String? = nil) async throws -> Enrolment {
        try await client.enrol(options: EnrolOptions(relay: relaySettings(url: url, pins: [pin], caPem: caPem),
                                                     user: user, pushEndpoint: nil, orgKey: nil, link: nil))
    }

    public func startSync() throws {
        lock.lock()
        defer { lock.unlock() }
        if sync?.isRunning() != true { sync = try client.startSync(options: defaultSyncOptions()) }
    }

    public func conversation(threadId: String) -> ConversationModel {
        let model = ConversationModel(client: client, threadId: threadId)
        lock.lock()
        conversations.append(model)
        lock.unlock()
        return model
    }

    public func release(_ model: ConversationModel) {
        lock.lock()
        conversations.removeAll { $0 === model }
        lock.unlock()
    }

    func handle(_ event: ClientEvent) async {
        switch event {
        case .messagesReceived, .messagesExpired, .messageSent:
            try? await threads.refresh()
            lock.lock()
            let open = conversations
            lock.unlock()
            for model in open { try? await model.refresh() }
        case let .deliveryFailed(_, reason):
            onAlert?(Alert(kind: "undelivered", detail: reason))
        case let .securityAlert(kind, detail):
            onAlert?(Alert(kind: "\(kind)", detail: detail))
        case let .connectionChanged(isConnected, _):
            connected = isConnected
            onConnectionChange?(isConnected)
        case .receiptReceived, .policyChanged:
            lock.lock()
            let open = conversations
            lock.unlock()
            for model in open { try? await model.refresh() }
        case let .alertEscalated(_, _, unacknowledged):
            onAlert?(Alert(kind: "escalation", detail: "not acknowledged by \(unacknowledged.joined(separator: ", "))"))
        case let .volumeAlert(count, minutes):
            onAlert?(Alert(kind: "volume_alert", detail: "\(count) downloads within \(minutes) minutes"))
        case let .locked(isLocked):
            onAlert?(Alert(kind: "locked", detail: isLocked ? "locked by your organisation" : "unlocked"))
        case .profileWiped:
            onAlert?(Alert(kind: "wiped", detail: "this profile was wiped by your organisation"))
        }
    }

    public func close() {
        events?.cancel()
        lock.lock()
        sync?.stop()
        sync = nil
        lock.unlock()
    }
}
