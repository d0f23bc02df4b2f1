// The app's state for SwiftUI: the device's profiles, the open one's
// session, what to tell the user. It lives on the main actor but does no
// core or disk work there: every call into the core is `async` and runs on
// the core's threads, and the one synchronous set-up (checking the native
// library, opening the profile store) runs in a detached task. All
// decisions are OccAppLogic's; this only wires them to the screens, the
// notification list, the Keychain and APNs.
import Foundation
import Occ
import OccAppLogic

/// The core's log lines in the system log (the core never logs secrets or
/// content).
final class LogForwarder: Logger, @unchecked Sendable {
    func log(level: LogLevel, target: String, message: String) {
        NSLog("occ %@ %@: %@", "\(level)", target, message)
    }
}

/// Why the app cannot start.
struct StartupError: Error, CustomStringConvertible {
    let description: String
}

/// Everything that is not UI, made once off the main actor.
final class AppServices: @unchecked Sendable {
    let coreVersion: String
    let device: DeviceProfiles
    let poster: ApplePoster
    let notifications: OccAppLogic.NotificationCenter
    let push: PushHandler
    let background: BackgroundWork
    let userAuth: UserAuthKeychainWrapper
    let sessionKeys: SessionKeyShare

    private init(coreVersion: String, device: DeviceProfiles, poster: ApplePoster,
                 notifications: OccAppLogic.NotificationCenter, userAuth: UserAuthKeychainWrapper,
                 sessionKeys: SessionKeyShare) {
        self.coreVersion = coreVersion
        self.device = device
        self.poster = poster
        self.notifications = notifications
        self.userAuth = userAuth
        self.sessionKeys = sessionKeys
        push = PushHandler(profiles: device, center: notifications)
        background = BackgroundWork(profiles: device)
    }

    /// Checks the native library first (a stale one throws here, with a
    /// clear message), then opens the profile store in the App Group.
    static func make(onLocked: @escaping (String) -> Void) throws -> AppServices {
        let version = try ensureNativeLibrary()
        setLogger(logger: LogForwarder(), level: .info)
        guard let root = SharedConfig.container() else {
            throw StartupError(description: "the App Group \(SharedConfig.appGroup) is not available: check the entitlements")
        }
        let poster = ApplePoster()
        let sessionKeys = SessionKeyShare()
        // After a launch nothing is unlocked: no session key may remain for
        // the extension, no notification with content may stay.
        sessionKeys.deleteAll()
        poster.removeAllButLocked()
        poster.removeLapsed(nowMs: deviceNowMs())
        let notifications = OccAppLogic.NotificationCenter(poster: poster)
        let userAuth = UserAuthKeychainWrapper()
        let device = try DeviceProfiles(
            root: root,
            secrets: KeychainKeyWrapper(),
            keys: try WrappedKeyStore(dir: root.appendingPathComponent("keys")),
            userAuth: userAuth,
            onLocked: { name in
                sessionKeys.delete(profile: name)
                // At once, not when the session's events arrive: this also
                // starts the profile's new notification generation, so a
                // prompt or message whose work began before the lock is
                // never posted after it.
                notifications.cancelAll(profile: name)
                poster.removeAll(profile: name)
                onLocked(name)
            }
        )
        return AppServices(coreVersion: version, device: device, poster: poster, notifications: notifications,
                           userAuth: userAuth, sessionKeys: sessionKeys)
    }
}

/// One row of the profile list.
struct ProfileEntry: Identifiable, Equatable {
    let name: String
    let usesUserAuth: Bool
    var id: String { name }
}

@MainActor
final class AppState: ObservableObject {
    @Published private(set) var profiles: [ProfileEntry] = []
    @Published private(set) var session: ProfileSession?
    @Published private(set) var connected: Bool?
    @Published var message: String?
    /// A notification asked to unlock this profile (its unlock screen shows).
    @Published var unlockRequest: String?
    @Published private(set) var startupError: String?
    private(set) var pushEndpoint: String?
    private var servicesTask: Task<AppServices, Error>?
    private var resolved: AppServices?
    private var sessionTasks: [Task<Void, Never>] = []

    init() {
        servicesTask = Task.detached {
            try AppServices.make { [weak self] name in
                Task { @MainActor in self?.profileLocked(name) }
            }
        }
    }

    /// The services, once made.
    func services() async throws -> AppServices {
        if let resolved { return resolved }
        guard let task = servicesTask else { throw CancellationError() }
        let made = try await task.value
        resolved = made
        return made
    }

    /// Loads the profile list (the first screen's `.task`).
    func start() async {
        do {
            let s = try await services()
            profiles = try await Self.entries(s.device)
        } catch {
            startupError = "\(error)"
        }
    }

    func create(_ name: String, pin: String) async {
        await run {
            let s = try await self.services()
            let client = try await s.device.createWithPin(name: name, pin: Data(pin.utf8))
            await self.opened(name, client, s)
        }
    }

    func createWithUserAuth(_ name: String) async {
        await run {
            let s = try await self.services()
            let client = try await s.device.createWithUserAuth(name: name)
            await self.opened(name, client, s)
        }
    }

    func unlock(_ name: String, pin: String) async {
        await run {
            let s = try await self.services()
            let result = try await s.device.unlock(name: name, pin: Data(pin.utf8))
            await self.handle(result, name, s)
        }
    }

    func unlockWithUserAuth(_ name: String) async {
        await run {
            let s = try await self.services()
            var result = try await s.device.unlockWithUserAuth(name: name)
            if result == .needsUserAuthentication {
                guard await s.userAuth.authenticate(reason: "Unlock the occ profile \(name)") else { return }
                result = try await s.device.unlockWithUserAuth(name: name)
            }
            await self.handle(result, name, s)
        }
    }

    /// Locks the open profile (the next user must unlock their own).
    func lock() {
        endSession()
        resolved?.device.lock() // never waits: the core closes the profile on its threads
    }

    func wipe(_ name: String) async {
        await run {
            if self.session?.name == name { self.endSession() }
            let s = try await self.services()
            try await s.device.wipe(name: name)
            self.profiles = try await Self.entries(s.device)
        }
    }

    /// APNs gave this device a (new) token.
    func pushTokenChanged(_ token: Data) {
        guard let gateway = SharedConfig.pushGateway else { return }
        let endpoint = apnsEndpoint(gateway: gateway, deviceToken: token)
        guard endpoint != pushEndpoint else { return }
        pushEndpoint = endpoint
        if let session { Task { try? await Self.tellRelay(session, endpoint) } }
    }

    /// A notification's answer needs the profile unlocked.
    func requestUnlock(_ profile: String) {
        if session?.name != profile { unlockRequest = profile }
    }

    private func handle(_ result: UnlockResult, _ name: String, _ s: AppServices) async {
        if case let .opened(client) = result {
            await opened(name, client, s)
            return
        }
        message = result.message(profile: name)
        if result == .wiped { profiles = (try? await Self.entries(s.device)) ?? profiles }
    }

    private func opened(_ name: String, _ client: Client, _ s: AppServices) async {
        endSession()
        let session = ProfileSession(name: name, client: client, notifications: s.notifications)
        self.session = session
        unlockRequest = nil
        message = nil
        connected = nil
        profiles = (try? await Self.entries(s.device)) ?? profiles
        // While this profile is unlocked, the extension may open it to show
        // a full prompt; the key leaves the shared keychain when it locks.
        if let key = try? client.sessionKey() {
            try? s.sessionKeys.put(profile: name, key: key)
        }
        sessionTasks = [
            Task { [weak self] in
                for await alert in session.events.alerts() { self?.message = "\(alert.kind): \(alert.detail)" }
            },
            Task { [weak self] in
                for await up in session.events.connectionChanges() { self?.connected = up }
            },
            Task { [weak self] in
                await s.poster.adoptDelivered(profile: name, into: s.notifications)
                do {
                    guard try await session.isEnrolled() else { return }
                    try await session.startSync()
                    if let endpoint = self?.pushEndpoint { try await Self.tellRelay(session, endpoint) }
                } catch {
                    self?.message = "\(error)"
                }
            },
        ]
    }

    /// After enrolment (the enrol screen's completion).
    func enrolled() {
        guard let session else { return }
        sessionTasks.append(Task { [weak self] in
            do { try await session.startSync() } catch { self?.message = "\(error)" }
        })
    }

    private func profileLocked(_ name: String) {
        // Only the session whose client was closed ends (a later unlock of
        // the same profile has a new client).
        if let session, session.name == name, session.client.isClosed() { endSession() }
    }

    private func endSession() {
        sessionTasks.forEach { $0.cancel() }
        sessionTasks = []
        session?.close()
        session = nil
        connected = nil
    }

    /// Runs `body`, showing its error.
    private func run(_ body: () async throws -> Void) async {
        do { try await body() } catch { message = "\(error)" }
    }

    nonisolated private static func entries(_ device: DeviceProfiles) async throws -> [ProfileEntry] {
        try await device.profiles().map { ProfileEntry(name: $0, usesUserAuth: device.usesUserAuth(name: $0)) }
    }

    nonisolated private static func tellRelay(_ session: ProfileSession, _ endpoint: String) async throws {
        try await session.onNewPushEndpoint(endpoint)
    }
}
