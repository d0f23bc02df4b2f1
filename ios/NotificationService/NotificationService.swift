// The Notification Service Extension: the relay's push carries a signed,
// content-free notice (message id, sender device, size, expiry, class). The
// extension verifies it offline with `verifyNotice` — the relay's service
// key learned at enrolment, this device, not expired, not a replay — looks
// the sender and thread up locally and applies the organisation's policy;
// then it shows "Do you want to download this OCC message?" (or why not).
// A forged notice shows nothing new (the core audits it). The download
// happens on the user's consent, in the app (`Client.download`).
//
// Shared with the app through the App Group container: the profiles, the
// wrapped keys, and the active profile's name (set by the app); the key
// wrapper's Keychain items use the group's access group. It opens no
// client and no network: one database connection with a small page cache,
// well inside the extension's 24 MB.
import Foundation
import Occ
import OccAppLogic
import UserNotifications

let appGroup = "group.org.occ"

final class NotificationService: UNNotificationServiceExtension {
    override func didReceive(
        _ request: UNNotificationRequest,
        withContentHandler contentHandler: @escaping (UNNotificationContent) -> Void
    ) {
        guard let content = request.content.mutableCopy() as? UNMutableNotificationContent else {
            contentHandler(request.content)
            return
        }
        content.title = "occ"
        content.body = "New activity in occ"
        guard let root = FileManager.default.containerURL(forSecurityApplicationGroupIdentifier: appGroup),
              let name = UserDefaults(suiteName: appGroup)?.string(forKey: "activeProfile"),
              let notice = (request.content.userInfo["notice"] as? String)?.data(using: .utf8),
              let keys = try? WrappedKeyStore(dir: root.appendingPathComponent("keys")),
              let wrapped = keys.get(profile: name),
              let key = try? KeychainKeyWrapper().unwrap(alias: "occ-profile-\(name)", wrapped: wrapped)
        else {
            contentHandler(content)
            return
        }
        let dir = root.appendingPathComponent("profiles").appendingPathComponent(name).path
        do {
            let view = promptView(try verifyNotice(dir: dir, key: key, notice: notice))
            content.body = view.body
            content.userInfo["occ_message_id"] = view.relayMessageId
            content.categoryIdentifier = view.canDownload ? "OCC_DOWNLOAD" : "OCC_DENIED"
            if view.urgent { content.interruptionLevel = .timeSensitive }
        } catch {
            // Forged, replayed, expired or locked: no prompt.
            content.body = "A notification could not be verified"
        }
        contentHandler(content)
    }

    override func serviceExtensionTimeWillExpire() {}
}
