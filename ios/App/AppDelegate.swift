// The app's platform hooks, and nothing else: notification categories and
// permission, APNs registration (the device token becomes the push
// endpoint, `https://<gateway>/apns/<token-hex>`, given at enrolment and
// to the relay whenever it changes), the answers to notifications (through
// OccAppLogic's PushHandler), a push that arrives while the app is in the
// foreground, and background refresh (OccAppLogic's BackgroundWork).
import BackgroundTasks
import Foundation
import Occ
import OccAppLogic
import UIKit
import UserNotifications

@MainActor
final class AppDelegate: NSObject, UIApplicationDelegate {
    static let refreshTask = "org.occ.refresh"

    let state = AppState()
    private lazy var notificationDelegate = NotificationDelegate(state: state)

    func application(
        _ application: UIApplication,
        didFinishLaunchingWithOptions launchOptions: [UIApplication.LaunchOptionsKey: Any]? = nil
    ) -> Bool {
        let center = UNUserNotificationCenter.current()
        center.delegate = notificationDelegate
        center.setNotificationCategories(notificationCategories())
        var options: UNAuthorizationOptions = [.alert, .sound, .badge]
        if SharedConfig.criticalAlertsEntitled { options.insert(.criticalAlert) }
        Task {
            do {
                _ = try await center.requestAuthorization(options: options)
            } catch {
                NSLog("occ: notifications not authorised: %@", "\(error)")
            }
        }
        application.registerForRemoteNotifications()
        registerBackgroundWork()
        return true
    }

    func application(_ application: UIApplication, didRegisterForRemoteNotificationsWithDeviceToken deviceToken: Data) {
        state.pushTokenChanged(deviceToken)
    }

    func application(_ application: UIApplication, didFailToRegisterForRemoteNotificationsWithError error: Error) {
        NSLog("occ: no push token: %@", "\(error)")
    }

    /// Asks for the next background refresh (when the app leaves the screen).
    func scheduleBackgroundWork() {
        let request = BGAppRefreshTaskRequest(identifier: Self.refreshTask)
        request.earliestBeginDate = Date(timeIntervalSinceNow: 15 * 60)
        do {
            try BGTaskScheduler.shared.submit(request)
        } catch {
            NSLog("occ: background refresh not scheduled: %@", "\(error)")
        }
    }

    /// Also removes what lapsed while the app was away (iOS cannot).
    func becameActive() {
        Task {
            guard let s = try? await state.services() else { return }
            s.poster.removeLapsed(nowMs: deviceNowMs())
        }
    }

    /// The refresh runs its handler on the main queue (this class's actor);
    /// the work itself runs on the core's threads.
    private func registerBackgroundWork() {
        let state = self.state
        BGTaskScheduler.shared.register(forTaskWithIdentifier: Self.refreshTask, using: .main) { task in
            let work = Task {
                var done = false
                if let s = try? await state.services() {
                    s.poster.removeLapsed(nowMs: deviceNowMs())
                    let result = try? await s.background.run()
                    done = result == .success || result == .nothingOpen
                }
                task.setTaskCompleted(success: done)
            }
            task.expirationHandler = { work.cancel() }
            Task { @MainActor in self.scheduleBackgroundWork() }
        }
    }
}

/// Notification answers and foreground pushes, off the main actor: every
/// decision is PushHandler's.
final class NotificationDelegate: NSObject, UNUserNotificationCenterDelegate, @unchecked Sendable {
    private weak var state: AppState?

    init(state: AppState) {
        self.state = state
    }

    /// A notification arrives while the app is on screen. A push (the
    /// extension already showed its content-free version) is handled here
    /// too: for the open profile PushHandler posts the real prompt, which
    /// replaces the extension's.
    func userNotificationCenter(
        _ center: UNUserNotificationCenter,
        willPresent notification: UNNotification,
        withCompletionHandler completionHandler: @escaping (UNNotificationPresentationOptions) -> Void
    ) {
        guard let body = noticeBody(userInfo: notification.request.content.userInfo) else {
            completionHandler([.banner, .list, .sound])
            return
        }
        let state = self.state
        Task {
            guard let s = try? await state?.services() else {
                completionHandler([.banner, .list, .sound])
                return
            }
            if case .prompted = await s.push.onMessage(body: body) {
                completionHandler([])
            } else {
                completionHandler([.banner, .list, .sound])
            }
        }
    }

    /// The user tapped a notification or one of its buttons.
    func userNotificationCenter(
        _ center: UNUserNotificationCenter,
        didReceive response: UNNotificationResponse,
        withCompletionHandler completionHandler: @escaping () -> Void
    ) {
        let info = response.notification.request.content.userInfo
        let identifier = response.actionIdentifier
        let chosen: NotificationAction? = identifier == UNNotificationDefaultActionIdentifier
            ? NotificationAction.tap
            : NotificationAction(identifier: identifier)
        guard let ref = notificationRef(userInfo: info), let action = chosen else {
            completionHandler()
            return
        }
        let state = self.state
        Task {
            defer { completionHandler() }
            guard let s = try? await state?.services() else { return }
            do {
                switch try await s.push.onAction(profile: ref.profile, key: ref.key, action: action) {
                case .needsUnlock:
                    await state?.requestUnlock(ref.profile)
                case let .gone(reason):
                    await MainActor.run { state?.message = "That message is no longer available (\(reason))." }
                case .downloaded, .declined, .acknowledged:
                    break
                }
            } catch {
                await MainActor.run { state?.message = "\(error)" }
            }
        }
    }
}
