// What the app and its Notification Service Extension share (this file is
// compiled into both targets): the App Group, the settings both read from
// their Info.plist, a small Keychain helper, the shared session keys, and
// how an AppNotification is copied into a UNMutableNotificationContent.
// Every decision — which category, which body may show, how loudly — is
// OccAppLogic's (Apple.swift); this only copies fields.
import Foundation
import OccAppLogic
import Security
import UserNotifications

enum SharedConfig {
    /// The App Group both targets belong to (see the .entitlements files).
    static let appGroup = "group.org.occ"

    /// The App Group container: the profiles and the wrapped secrets.
    static func container() -> URL? {
        FileManager.default.containerURL(forSecurityApplicationGroupIdentifier: appGroup)
    }

    /// The Keychain access group both targets can read
    /// (`$(AppIdentifierPrefix)org.occ.shared`, expanded in Info.plist).
    static var sharedKeychainGroup: String? { string("OCCSharedKeychainGroup") }

    /// The organisation's push gateway (`https://host` or the host), if
    /// this build has one: the relay posts notices to
    /// `https://<gateway>/apns/<token-hex>`.
    static var pushGateway: String? { string("OCCPushGateway") }

    /// Whether this build holds Apple's critical-alert entitlement (Apple
    /// grants it per app, on request): only then may urgent alerts be
    /// critical, and only if the user allowed it too.
    static var criticalAlertsEntitled: Bool {
        Bundle.main.object(forInfoDictionaryKey: "OCCCriticalAlerts") as? Bool ?? false
    }

    private static func string(_ key: String) -> String? {
        guard let value = Bundle.main.object(forInfoDictionaryKey: key) as? String, !value.isEmpty else { return nil }
        return value
    }
}

/// Generic-password items in the Keychain, this device only (never in
/// backups, never synchronised).
enum Keychain {
    enum Protection {
        /// Readable after the first unlock since boot (the extension runs
        /// while the phone is locked).
        case afterFirstUnlock
        /// Readable only after the user authenticated with Face ID or
        /// Touch ID as enrolled when the item was added
        /// (`.biometryCurrentSet`): not with the device passcode, which on
        /// a shared device everyone knows, and no longer at all once a face
        /// or finger is enrolled or removed. Gone if the device passcode is
        /// removed.
        case currentBiometrics
    }

    struct Failure: Error {
        let status: OSStatus
    }

    /// The item's data, nil if there is none. `context` is an LAContext
    /// that already authenticated the user (for `.currentBiometrics` items).
    static func read(service: String, account: String, group: String? = nil, context: AnyObject? = nil) throws -> Data? {
        var query = base(service: service, account: account, group: group)
        query[kSecReturnData as String] = true
        query[kSecMatchLimit as String] = kSecMatchLimitOne
        if let context { query[kSecUseAuthenticationContext as String] = context }
        var item: CFTypeRef?
        let status = SecItemCopyMatching(query as CFDictionary, &item)
        if status == errSecItemNotFound { return nil }
        guard status == errSecSuccess, let data = item as? Data else { throw Failure(status: status) }
        return data
    }

    static func add(service: String, account: String, group: String? = nil, data: Data, protection: Protection) throws {
        var query = base(service: service, account: account, group: group)
        query[kSecValueData as String] = data
        switch protection {
        case .afterFirstUnlock:
            query[kSecAttrAccessible as String] = kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly
        case .currentBiometrics:
            // Biometrics bound to the current enrolment, not `.userPresence`:
            // that would accept the device passcode, and on a shared device
            // everyone knows it.
            guard let access = SecAccessControlCreateWithFlags(
                nil, kSecAttrAccessibleWhenPasscodeSetThisDeviceOnly, .biometryCurrentSet, nil
            ) else { throw Failure(status: errSecParam) }
            query[kSecAttrAccessControl as String] = access
        }
        let status = SecItemAdd(query as CFDictionary, nil)
        guard status == errSecSuccess else { throw Failure(status: status) }
    }

    /// Deletes the item (every item of `service` when `account` is nil).
    static func delete(service: String, account: String?, group: String? = nil) {
        SecItemDelete(base(service: service, account: account, group: group) as CFDictionary)
    }

    private static func base(service: String, account: String?, group: String?) -> [String: Any] {
        var query: [String: Any] = [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: service,
        ]
        if let account { query[kSecAttrAccount as String] = account }
        if let group { query[kSecAttrAccessGroup as String] = group }
        return query
    }
}

/// The keys of unlocked sessions, where the extension can read them (the
/// shared Keychain group). The app deletes a profile's key when the profile
/// is locked and every key at launch (a crash must not leave a profile
/// "unlocked" for the extension); it writes one on unlock when it has a key
/// `verifyNotice` accepts — see OccAppLogic's Extension.swift for why,
/// with today's core, it has none for PIN-locked profiles.
final class SessionKeyShare: SessionKeyReader, @unchecked Sendable {
    private let service = "org.occ.session-keys"

    func put(profile: String, key: Data) throws {
        delete(profile: profile)
        try Keychain.add(service: service, account: profile, group: SharedConfig.sharedKeychainGroup,
                         data: key, protection: .afterFirstUnlock)
    }

    func sessionKey(profile: String) -> Data? {
        try? Keychain.read(service: service, account: profile, group: SharedConfig.sharedKeychainGroup)
    }

    func delete(profile: String) {
        Keychain.delete(service: service, account: profile, group: SharedConfig.sharedKeychainGroup)
    }

    func deleteAll() {
        Keychain.delete(service: service, account: nil, group: SharedConfig.sharedKeychainGroup)
    }
}

/// Copies `n` into `content` as OccAppLogic decides for these notification
/// `settings`: the body only while previews stay off the lock screen, the
/// category carrying its actions, the interruption level, and the
/// identifying userInfo (added to what the push carried).
func apply(_ n: AppNotification, to content: UNMutableNotificationContent, settings: UNNotificationSettings) {
    let previewsHidden = settings.showPreviewsSetting != .always
    let critical = SharedConfig.criticalAlertsEntitled && settings.criticalAlertSetting == .enabled
    content.title = n.title
    content.subtitle = ""
    content.body = visibleBody(of: n, previewsHiddenWhenLocked: previewsHidden)
    content.categoryIdentifier = NotificationCategory.of(n).identifier
    var info = content.userInfo
    for (key, value) in notificationUserInfo(n) { info[key] = value }
    content.userInfo = info
    switch interruptionLevel(of: n, criticalAlertsAllowed: critical) {
    case .active:
        content.interruptionLevel = .active
        content.sound = .default
    case .timeSensitive:
        content.interruptionLevel = .timeSensitive
        content.sound = .default
    case .critical:
        content.interruptionLevel = .critical
        content.sound = .defaultCritical
    }
}

/// Content-free text only, no actions: the extension's answer when it runs
/// out of time or refused the notice.
func applyContentFree(_ text: String, to content: UNMutableNotificationContent) {
    content.title = ContentFree.title
    content.subtitle = ""
    content.body = text
    content.categoryIdentifier = NotificationCategory.message.identifier
}
