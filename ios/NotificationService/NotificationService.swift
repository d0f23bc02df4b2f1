// The Notification Service Extension: the relay's push carries a signed,
// content-free notice (message id, sender device, size, expiry, class). The
// extension shows the download prompt; the download itself happens in the
// app, on the user's consent, through `Client.fetch(relayMessageId:)`.
//
// It stays inside the extension's limits (24 MB, seconds): it never opens a
// profile database here. Verifying the notice offline against the service
// key and applying the download policy come with the push issue, through a
// light entry point of the core that this target will call.
import Foundation
import UserNotifications

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
        content.body = "Do you want to download this OCC message?"
        if let notice = request.content.userInfo["notice"] as? [String: Any],
           let messageId = notice["message_id"] as? String {
            content.userInfo["occ_message_id"] = messageId
            content.categoryIdentifier = "OCC_DOWNLOAD"
        }
        contentHandler(content)
    }

    override func serviceExtensionTimeWillExpire() {}
}
