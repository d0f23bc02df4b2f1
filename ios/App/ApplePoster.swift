// OccAppLogic's NotificationPoster on UNUserNotificationCenter, and the
// notification categories the app registers at launch. Calls arrive with
// the logic's lock held, so each returns at once and its work runs on a
// serial chain of tasks: a removal never overtakes the post it follows.
//
// The extension posts notifications of its own (with APNs' identifiers),
// so every removal goes by what a notification says it is (its userInfo:
// profile and key), not only by identifier; posting a key first removes
// whatever stood for it.
import Foundation
import OccAppLogic
import UserNotifications

/// The categories OccAppLogic defines, with their actions (every action
/// opens the app; see Apple.swift).
func notificationCategories() -> Set<UNNotificationCategory> {
    Set(NotificationCategory.allCases.map { category in
        UNNotificationCategory(
            identifier: category.identifier,
            actions: category.actions.map { action in
                UNNotificationAction(
                    identifier: action.identifier,
                    title: action.label,
                    options: action.destructive ? [.foreground, .destructive] : [.foreground]
                )
            },
            intentIdentifiers: [],
            hiddenPreviewsBodyPlaceholder: category.hiddenPreviewsPlaceholder,
            options: [.hiddenPreviewsShowTitle]
        )
    })
}

final class ApplePoster: NotificationPoster, @unchecked Sendable {
    private let system = UNUserNotificationCenter.current()
    private let lock = NSLock()
    private var tail: Task<Void, Never>?

    func post(_ n: AppNotification) {
        enqueue { [self] in
            let settings = await system.notificationSettings()
            let content = UNMutableNotificationContent()
            apply(n, to: content, settings: settings)
            await remove { ref, _ in ref.profile == n.profile && ref.key == n.key }
            let request = UNNotificationRequest(
                identifier: notificationIdentifier(profile: n.profile, key: n.key), content: content, trigger: nil
            )
            try? await system.add(request)
        }
    }

    func cancel(profile: String, key: String) {
        enqueue { [self] in await remove { ref, _ in ref.profile == profile && ref.key == key } }
    }

    /// Removes every notification of `profile`, the extension's included
    /// (the profile was locked or wiped).
    func removeAll(profile: String) {
        enqueue { [self] in await remove { ref, _ in ref.profile == profile } }
    }

    /// At launch every profile is locked: only content-free notices of
    /// locked profiles may stay.
    func removeAllButLocked() {
        enqueue { [self] in
            await remove { _, n in n.request.content.categoryIdentifier != NotificationCategory.locked.identifier }
        }
    }

    /// Removes what passed its deadline (iOS cannot do it by itself).
    func removeLapsed(nowMs: Int64) {
        enqueue { [self] in await remove { _, n in isLapsed(userInfo: n.request.content.userInfo, nowMs: nowMs) } }
    }

    /// Tells `notifications` about what is shown for `profile` (the
    /// extension's, posted while the app did not run), so that withdrawals
    /// find them.
    func adoptDelivered(profile: String, into notifications: OccAppLogic.NotificationCenter) async {
        for n in await system.deliveredNotifications() {
            let info = n.request.content.userInfo
            guard let ref = notificationRef(userInfo: info), ref.profile == profile else { continue }
            notifications.track(profile: ref.profile, key: ref.key, relayId: notificationRelayId(userInfo: info))
        }
    }

    private func remove(where doomed: ((profile: String, key: String), UNNotification) -> Bool) async {
        let delivered = await system.deliveredNotifications()
        let ids = delivered.compactMap { n -> String? in
            guard let ref = notificationRef(userInfo: n.request.content.userInfo), doomed(ref, n) else { return nil }
            return n.request.identifier
        }
        guard !ids.isEmpty else { return }
        system.removeDeliveredNotifications(withIdentifiers: ids)
    }

    private func enqueue(_ work: @escaping @Sendable () async -> Void) {
        lock.lock()
        let previous = tail
        tail = Task {
            await previous?.value
            await work()
        }
        lock.unlock()
    }
}
