// The small interfaces the phone shells implement: where notifications are
// posted and removed. Everything that decides what to post, when to withdraw
// it and what to show on a lock screen is in this module and tested with
// `swift test`; the iOS shell only adapts these to UNUserNotificationCenter
// and APNs (the Android logic module has the same ones for
// NotificationManager and UnifiedPush / FCM).
//
// iOS has one APNs token per app, not one push registration per profile, so
// there is no per-profile push distributor here: the token becomes the
// endpoint (`apnsEndpoint`) that every profile's session registers with
// `ProfileSession.onNewPushEndpoint`.
import Foundation

/// A notification channel: on iOS, how loudly a notification may interrupt
/// (see `interruptionLevel(of:criticalAlertsAllowed:)`).
public enum NotificationChannel: String, CaseIterable, Sendable {
    /// Download prompts: "Do you want to download this OCC message?".
    case prompts = "occ.prompts"
    /// Urgent alerts: time-sensitive; critical only where allowed.
    case urgent = "occ.urgent"
    /// Messages that arrived while the app was open.
    case messages = "occ.messages"

    public var id: String { rawValue }

    public var title: String {
        switch self {
        case .prompts: return "Download prompts"
        case .urgent: return "Urgent alerts"
        case .messages: return "Messages"
        }
    }
}

/// What the user can do from a notification.
public enum NotificationAction: String, CaseIterable, Sendable {
    case download
    case decline
    case acknowledge
    case unlock

    public var label: String {
        switch self {
        case .download: return "Download"
        case .decline: return "Decline"
        case .acknowledge: return "Acknowledge"
        case .unlock: return "Unlock"
        }
    }
}

/// One notification as the platform shows it. `publicText` is what a lock
/// screen may show (never content, sender or thread); `text` is shown only
/// on an unlocked device. `timeoutAtMs` is when it must go (the message's
/// deadline or the notice's expiry), even if the app is not running then.
public struct AppNotification: Equatable, Sendable {
    public let profile: String
    public let key: String
    public let channel: NotificationChannel
    public let title: String
    public let text: String
    public let publicText: String
    public let actions: [NotificationAction]
    public let timeoutAtMs: Int64?
    /// Break through focus modes (urgent alerts).
    public let breakThrough: Bool

    public init(
        profile: String,
        key: String,
        channel: NotificationChannel,
        title: String,
        text: String,
        publicText: String,
        actions: [NotificationAction],
        timeoutAtMs: Int64?,
        breakThrough: Bool = false
    ) {
        self.profile = profile
        self.key = key
        self.channel = channel
        self.title = title
        self.text = text
        self.publicText = publicText
        self.actions = actions
        self.timeoutAtMs = timeoutAtMs
        self.breakThrough = breakThrough
    }
}

/// Posts and removes notifications (UNUserNotificationCenter in the app, a
/// recorder in tests). Called with the notification center's lock held:
/// implementations return at once and never call back into it.
public protocol NotificationPoster: AnyObject {
    /// Posts `n`, replacing any notification with the same profile and key.
    func post(_ n: AppNotification)

    /// Removes the notification `key` of `profile`, if shown.
    func cancel(profile: String, key: String)
}
