// How an AppNotification becomes an iOS notification. Decided here, so
// that the app and its notification extension only copy fields into
// UNMutableNotificationContent (and so that the rules are tested with
// `swift test` on any machine):
//
// - Categories: iOS attaches actions to a category, not to a notification,
//   so each set of actions the logic offers has one (the app registers them
//   all at launch). Every action opens the app: an answer may find its
//   profile locked (after a restart every profile is), and only the app can
//   show the unlock screen; an answer that is not processed would let a
//   declined message be fetched at the next sync.
// - The lock screen: iOS has no separate public version of a notification.
//   Its title is always "occ"; its body is `text` only while the user's
//   "Show Previews" setting keeps previews off the lock screen ("When
//   Unlocked", the default, or "Never"); with "Always" the body is the
//   content-free `publicText`. The category's hidden-preview placeholder is
//   content-free too.
// - Interruption: an urgent alert is time-sensitive; critical (sound and
//   break through the mute switch) only where the app holds Apple's
//   critical-alert entitlement and the user allowed it.
// - Timeouts: iOS cannot remove a notification by itself at a deadline, so
//   each carries its `timeoutAtMs` and the app removes what lapsed whenever
//   it runs (launch, foreground, background refresh); the core's withdrawals
//   remove the rest while it runs.
// - Push: APNs gives one device token per app; the relay posts notices to
//   the organisation's push gateway at `https://<gateway>/apns/<token-hex>`,
//   which forwards the notice bytes to APNs as UTF-8 text under the payload
//   key "notice", with `mutable-content: 1` and a content-free alert so
//   that the notification extension runs.
import Foundation

/// The iOS notification categories, one per set of actions.
public enum NotificationCategory: String, CaseIterable, Sendable {
    /// A download prompt: Download, Decline.
    case prompt = "OCC_PROMPT"
    /// An urgent alert's prompt: Download, Decline, Acknowledge.
    case urgent = "OCC_URGENT"
    /// A downloaded urgent alert: Acknowledge.
    case alert = "OCC_ALERT"
    /// A locked profile's content-free notice: Unlock.
    case locked = "OCC_LOCKED"
    /// A message, a denied prompt, an acknowledged alert: no actions.
    case message = "OCC_MESSAGE"

    public var identifier: String { rawValue }

    public var actions: [NotificationAction] {
        switch self {
        case .prompt: return [.download, .decline]
        case .urgent: return [.download, .decline, .acknowledge]
        case .alert: return [.acknowledge]
        case .locked: return [.unlock]
        case .message: return []
        }
    }

    /// What iOS shows instead of the body while previews are hidden.
    public var hiddenPreviewsPlaceholder: String {
        switch self {
        case .urgent, .alert: return ContentFree.urgent
        case .locked: return ContentFree.locked
        case .prompt, .message: return ContentFree.message
        }
    }

    /// The category whose actions are exactly those of `n` (none matches
    /// only for a set the logic never makes: then no actions at all).
    public static func of(_ n: AppNotification) -> NotificationCategory {
        allCases.first(where: { $0.actions == n.actions }) ?? .message
    }
}

public extension NotificationAction {
    /// The iOS action identifier.
    var identifier: String { "OCC_" + rawValue.uppercased() }

    /// The action of an iOS action identifier (nil for anything else).
    init?(identifier: String) {
        guard let action = NotificationAction.allCases.first(where: { $0.identifier == identifier }) else { return nil }
        self = action
    }

    /// Shown as destructive (red).
    var destructive: Bool { self == .decline }

    /// A tap on the notification itself (not on a button) means "open the
    /// profile": `.unlock`, which downloads nothing.
    static var tap: NotificationAction { .unlock }
}

/// How loudly a notification may interrupt.
public enum InterruptionLevel: Equatable, Sendable {
    case active
    case timeSensitive
    case critical
}

/// Urgent alerts break through focus modes (time-sensitive); critical only
/// where `criticalAlertsAllowed` (Apple's entitlement and the user's
/// consent).
public func interruptionLevel(of n: AppNotification, criticalAlertsAllowed: Bool) -> InterruptionLevel {
    guard n.breakThrough else { return .active }
    return criticalAlertsAllowed ? .critical : .timeSensitive
}

/// The body iOS may show: `text` only while previews stay off the lock
/// screen (`previewsHiddenWhenLocked`), else the content-free `publicText`.
public func visibleBody(of n: AppNotification, previewsHiddenWhenLocked: Bool) -> String {
    previewsHiddenWhenLocked ? n.text : n.publicText
}

/// The keys of an occ notification's `userInfo`.
public enum NotificationInfoKey {
    /// The relay's notice, as the push gateway put it in the APNs payload.
    public static let notice = "notice"
    public static let profile = "occ_profile"
    public static let key = "occ_key"
    public static let relayId = "occ_relay"
    public static let timeoutMs = "occ_timeout_ms"
}

/// The request identifier of the notification `key` of `profile` (profile
/// names cannot contain "/").
public func notificationIdentifier(profile: String, key: String) -> String { "occ/\(profile)/\(key)" }

/// What an occ notification carries in its `userInfo`: whose it is, its
/// key, the push notice it stands for and when it lapses. No content.
public func notificationUserInfo(_ n: AppNotification) -> [String: Any] {
    var info: [String: Any] = [NotificationInfoKey.profile: n.profile, NotificationInfoKey.key: n.key]
    if n.key.hasPrefix("notice:") { info[NotificationInfoKey.relayId] = String(n.key.dropFirst("notice:".count)) }
    if let timeout = n.timeoutAtMs { info[NotificationInfoKey.timeoutMs] = NSNumber(value: timeout) }
    return info
}

/// Which notification of which profile a delivered one is (nil: not occ's).
public func notificationRef(userInfo: [AnyHashable: Any]) -> (profile: String, key: String)? {
    guard let profile = userInfo[NotificationInfoKey.profile] as? String,
          let key = userInfo[NotificationInfoKey.key] as? String else { return nil }
    return (profile, key)
}

/// The push notice a delivered notification stands for, if any.
public func notificationRelayId(userInfo: [AnyHashable: Any]) -> String? {
    userInfo[NotificationInfoKey.relayId] as? String
}

/// The relay's notice bytes in a push payload, if it carries one.
public func noticeBody(userInfo: [AnyHashable: Any]) -> Data? {
    (userInfo[NotificationInfoKey.notice] as? String).map { Data($0.utf8) }
}

/// Whether a delivered notification passed its deadline at `nowMs`.
public func isLapsed(userInfo: [AnyHashable: Any], nowMs: Int64) -> Bool {
    guard let timeout = userInfo[NotificationInfoKey.timeoutMs] as? NSNumber else { return false }
    return timeout.int64Value <= nowMs
}

/// The endpoint the relay posts this device's notices to: the push
/// gateway (`https://host`, or just the host) with the APNs device token in
/// hex, `https://<gateway>/apns/<token-hex>`.
public func apnsEndpoint(gateway: String, deviceToken: Data) -> String {
    var base = gateway.hasPrefix("https://") ? gateway : "https://\(gateway)"
    while base.hasSuffix("/") { base.removeLast() }
    let digits = Array("0123456789abcdef")
    var hex = ""
    for byte in deviceToken {
        hex.append(digits[Int(byte >> 4)])
        hex.append(digits[Int(byte & 0x0f)])
    }
    return "\(base)/apns/\(hex)"
}
