// Everything the screens need for the open profile, in one place (mirrors
// the Android logic's Session.kt): its models, its event routing (screens
// and notifications, each on a subscription of its own), enrolment with the
// push endpoint, and background sync. The iOS shell creates one when a
// profile is unlocked and closes it when the profile is locked.
import Foundation
import Occ

/// The open profile with its screen models, notifications and background sync.
public final class ProfileSession: @unchecked Sendable {
    public let name: String
    public let client: Client
    public let threads: ThreadsModel
    public let settings: SettingsModel
    public let events: EventRouter
    private let conversations: Protected<[ConversationModel]>
    private let eventsTask: Task<Void, Never>
    private let notificationTask: Task<Void, Never>?
    private let syncLock = AsyncMutex()
    private let sync = Protected<SyncHandle?>(nil)

    /// `notifications` receives this profile's notifications (withdrawals,
    /// messages while the app runs); `previews` says whether the
    /// organisation lets them preview message text.
    public init(
        name: String,
        client: Client,
        notifications: NotificationCenter? = nil,
        previews: @escaping () -> Bool = { false }
    ) {
        self.name = name
        self.client = client
        let threads = ThreadsModel(client: client)
        let conversations = Protected<[ConversationModel]>([])
        let events = EventRouter(client: client, threads: threads) { conversations.get() }
        self.threads = threads
        self.settings = SettingsModel(client: client)
        self.conversations = conversations
        self.events = events
        eventsTask = events.start()
        if let center = notifications {
            let router = NotificationRouter(profile: name, center: center) { thread, message in
                do {
                    let m = try await client.message(id: message)
                    let all = try await client.threads()
                    let title = all.first(where: { $0.id == thread })?.title
                    return NotificationRouter.Described(threadTitle: title, text: previews() ? m.text : nil, deadlineMs: m.deadlineMs)
                } catch {
                    return nil
                }
            }
            let stream = client.events()
            notificationTask = Task {
                for await event in stream {
                    await router.handle(event)
                }
            }
        } else {
            notificationTask = nil
        }
    }

    deinit { close() }

    /// Whether this profile has been enrolled with a relay.
    public func isEnrolled() async throws -> Bool { try await client.enrolment() != nil }

    /// Enrols with the relay at `url`, recognised by `pin` (and a private
    /// `caPem`), registering `pushEndpoint` (the push gateway's endpoint for
    /// this device) for notices.
    @discardableResult
    public func enrol(url: String, pin: String, user: String, caPem: String? = nil, pushEndpoint: String? = nil) async throws -> Enrolment {
        try await client.enrol(options: enrolOptions(relay: relaySettings(url: url, pins: [pin], caPem: caPem),
                                                     user: user, pushEndpoint: pushEndpoint))
    }

    /// The platform handed out a new push endpoint (or none): the relay is
    /// told, if it does not have it already.
    public func onNewPushEndpoint(_ endpoint: String?) async throws {
        if try await client.enrolment()?.pushEndpoint != endpoint {
            try await client.setPushEndpoint(endpoint: endpoint)
        }
    }

    /// Starts background sync (idempotent).
    public func startSync() async throws {
        try await syncLock.withLock {
            if sync.get()?.isRunning() != true {
                let handle = try await client.startSync(options: defaultSyncOptions())
                sync.set(handle)
            }
        }
    }

    /// A conversation model kept fresh by events until `release`d.
    public func conversation(threadId: String) -> ConversationModel {
        let model = ConversationModel(client: client, threadId: threadId)
        conversations.withLock { $0.append(model) }
        return model
    }

    public func release(_ model: ConversationModel) {
        conversations.withLock { list in list.removeAll { $0 === model } }
    }

    /// Stops the event routing and background sync (the profile itself is
    /// closed by `DeviceProfiles.lock`).
    public func close() {
        eventsTask.cancel()
        notificationTask?.cancel()
        let handle: SyncHandle? = sync.withLock { s in
            let h = s
            s = nil
            return h
        }
        handle?.stop()
    }
}
