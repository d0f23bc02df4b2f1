// The client's events, routed to what the screens need (mirrors the Android
// logic's Events.kt): refresh the lists, show security alerts, show whether
// the relay is reachable. Notifications have their own router
// (NotificationRouter) on a subscription of their own.
import Foundation
import Occ

/// Something the user must be told about. (SwiftUI has an `Alert` too:
/// outside this module write `OccAppLogic.Alert` where both are imported.)
public struct Alert: Equatable, Sendable {
    public let kind: String
    public let detail: String

    public init(kind: String, detail: String) {
        self.kind = kind
        self.detail = detail
    }
}

/// Collects one client's events for as long as `start`'s task runs.
public final class EventRouter: @unchecked Sendable {
    private let client: Client
    private let threads: ThreadsModel
    private let conversations: () -> [ConversationModel]
    private let alertBroadcast = Broadcast<Alert>()
    private let connectionBroadcast = Broadcast<Bool>()
    private let connectedState = Protected<Bool?>(nil)

    public init(client: Client, threads: ThreadsModel, conversations: @escaping () -> [ConversationModel]) {
        self.client = client
        self.threads = threads
        self.conversations = conversations
    }

    /// Security alerts and undeliverable messages, from this call on.
    public func alerts() -> AsyncStream<Alert> { alertBroadcast.subscribe() }

    /// Each change of `connected`, from this call on.
    public func connectionChanges() -> AsyncStream<Bool> { connectionBroadcast.subscribe() }

    /// Whether background sync reaches the relay (nil: not known yet).
    public var connected: Bool? { connectedState.get() }

    /// Subscribes now and handles every event until the task is cancelled
    /// or the profile closes.
    public func start() -> Task<Void, Never> {
        let events = client.events()
        return Task {
            for await event in events {
                await self.handle(event)
            }
        }
    }

    private func refresh() async {
        _ = try? await threads.refresh()
        await refreshConversations()
    }

    private func refreshConversations() async {
        for model in conversations() {
            _ = try? await model.refresh()
        }
    }

    public func handle(_ event: ClientEvent) async {
        switch event {
        case .messagesReceived, .messagesExpired, .messageSent, .coalesced:
            await refresh()
        case let .deliveryFailed(_, reason):
            alertBroadcast.send(Alert(kind: "undelivered", detail: reason))
        case let .securityAlert(kind, detail):
            alertBroadcast.send(Alert(kind: snakeCase("\(kind)"), detail: detail))
        case let .connectionChanged(isConnected, _):
            connectedState.set(isConnected)
            connectionBroadcast.send(isConnected)
        case .receiptReceived, .policyChanged:
            await refreshConversations()
        case let .alertEscalated(_, _, unacknowledged):
            alertBroadcast.send(Alert(kind: "escalation", detail: "not acknowledged by \(unacknowledged.joined(separator: ", "))"))
        case let .volumeAlert(count, minutes):
            alertBroadcast.send(Alert(kind: "volume_alert", detail: "\(count) downloads within \(minutes) minutes"))
        case let .locked(isLocked):
            alertBroadcast.send(Alert(kind: "locked", detail: isLocked ? "locked by your organisation" : "unlocked"))
        case .profileWiped:
            alertBroadcast.send(Alert(kind: "wiped", detail: "this profile was wiped by your organisation"))
        case .profileClosed, .withdrawNotifications:
            break
        }
    }
}

/// `forgedNotice` → `forged_notice` (the Kotlin names of the same kinds).
func snakeCase(_ name: String) -> String {
    var out = ""
    for ch in name {
        if ch.isUppercase {
            out += "_" + ch.lowercased()
        } else {
            out.append(ch)
        }
    }
    return out
}
