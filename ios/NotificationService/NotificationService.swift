// The Notification Service Extension: APNs hands it each push before it is
// shown (the push gateway sets `mutable-content` and a content-free alert).
// The push carries the relay's signed, content-free notice (message id,
// this device, size, expiry, class) under "notice". OccAppLogic's
// NoticeExtension decides what to show:
//
// - a profile whose unlocked session left its key in the shared Keychain:
//   `verifyNotice` (relay signature, this device, not expired, not a
//   replay; sender, thread and policy looked up) — "Do you want to download
//   this OCC message?" with Download / Decline;
// - any other profile counts as locked: `verifyNoticeLocked`, no key, and a
//   content-free "New occ message — unlock your profile to see it" with
//   Unlock; no sender and no thread title of a locked profile is ever
//   looked up or shown;
// - a forged, replayed or expired notice: the content-free "could not be
//   verified" (the core records it).
//
// The content handler is called exactly once: with the decision, or — when
// the system says time is up (`serviceExtensionTimeWillExpire`), or nothing
// can be decided — with content-free text. The download itself happens in
// the app, on the user's answer. Shared with the app through the App Group:
// the profiles' directories; through the shared Keychain group: the session
// keys. It opens no client and no network: one database connection at most,
// well inside the extension's memory limit.
import Foundation
import Occ
import OccAppLogic
import UserNotifications

/// Calls the content handler once, whoever comes first.
final class Delivery: @unchecked Sendable {
    private struct Armed {
        let handler: (UNNotificationContent) -> Void
        let fallback: UNNotificationContent
        var work: Task<Void, Never>?
    }

    private let lock = NSLock()
    private var armed: Armed?

    func arm(_ handler: @escaping (UNNotificationContent) -> Void, fallback: UNNotificationContent) {
        lock.lock()
        armed = Armed(handler: handler, fallback: fallback, work: nil)
        lock.unlock()
    }

    /// Remembers the work deciding, to stop it if time runs out.
    func started(_ task: Task<Void, Never>) {
        lock.lock()
        armed?.work = task
        lock.unlock()
    }

    /// Delivers `content` if nothing was delivered yet.
    func deliver(_ content: UNNotificationContent) {
        take()?.handler(content)
    }

    /// Delivers the content-free fallback if nothing was delivered yet, and
    /// stops the work.
    func deliverFallback() {
        guard let taken = take() else { return }
        taken.work?.cancel()
        taken.handler(taken.fallback)
    }

    private func take() -> Armed? {
        lock.lock()
        defer { lock.unlock() }
        let taken = armed
        armed = nil
        return taken
    }
}

final class NotificationService: UNNotificationServiceExtension {
    private let delivery = Delivery()

    override func didReceive(
        _ request: UNNotificationRequest,
        withContentHandler contentHandler: @escaping (UNNotificationContent) -> Void
    ) {
        let fallback = Self.contentFree(request, ContentFree.message)
        delivery.arm(contentHandler, fallback: fallback)
        guard let body = noticeBody(userInfo: request.content.userInfo),
              let root = SharedConfig.container() else {
            delivery.deliverFallback()
            return
        }
        let once = delivery
        once.started(Task {
            let content = await Self.decide(request, body: body, profiles: root.appendingPathComponent("profiles"))
            once.deliver(content)
        })
    }

    override func serviceExtensionTimeWillExpire() {
        delivery.deliverFallback()
    }

    private static func decide(_ request: UNNotificationRequest, body: Data, profiles: URL) async -> UNNotificationContent {
        let outcome: ExtensionOutcome
        do {
            let manager = try ProfileManager(root: profiles.path)
            outcome = await NoticeExtension(manager: manager, sessionKeys: SessionKeyShare()).notification(for: body)
        } catch {
            outcome = .refused(reason: "\(error)")
        }
        switch outcome {
        case let .show(n):
            guard let content = request.content.mutableCopy() as? UNMutableNotificationContent else {
                return contentFree(request, ContentFree.message)
            }
            let settings = await UNUserNotificationCenter.current().notificationSettings()
            apply(n, to: content, settings: settings)
            return content
        case .refused:
            return contentFree(request, ContentFree.unverified)
        }
    }

    /// The push's own content with content-free text only.
    private static func contentFree(_ request: UNNotificationRequest, _ text: String) -> UNNotificationContent {
        guard let content = request.content.mutableCopy() as? UNMutableNotificationContent else { return request.content }
        applyContentFree(text, to: content)
        return content
    }
}
