// Shared devices: several people, one phone (mirrors the Android logic's
// Profiles.kt). Each person has a profile (its own database and key) that
// opens only with that person's credential:
//
// - a PIN or passphrase, which the core stretches (scrypt) together with a
//   secret this device keeps wrapped by the Keychain, so guessing needs
//   this device; the core counts failures, makes the user wait after three,
//   and wipes the profile at the limit (the app's, or the organisation
//   policy's);
// - or platform user authentication (Face ID or Touch ID, not the device
//   passcode, which everyone sharing the phone knows): a random credential
//   kept wrapped under a Keychain key that opens only after the platform
//   authenticated the user, then the same core unlock. Every face or
//   finger enrolled on the device passes it, so on a shared device each
//   person uses a PIN profile.
//
// At most one profile is open. Locking closes it at once (its key leaves
// memory; its notifications are withdrawn); switching is lock + unlock;
// wiping deletes the profile's files, its wrapped secrets and its Keychain
// keys. Creating, unlocking and wiping run one at a time (an async lock);
// `lock()` never waits. Creating refuses a name already taken before
// anything of that profile is touched, and stores the new profile's wrapped
// secrets only once the core created it.
import Foundation
import Occ

/// The profile in use.
public struct ActiveProfile: Sendable {
    public let name: String
    public let client: Client
}

/// The platform must authenticate the user before this key can be used.
public struct UserAuthenticationRequired: Error, Equatable {
    public init() {}
}

/// A profile operation that cannot be done as asked.
public enum ProfileError: Error, Equatable {
    /// This device has no platform user authentication (no wrapper given).
    case noUserAuthentication
    /// The profile unlocks with its PIN, not with user authentication.
    case notUsingUserAuthentication(String)
    /// No profile of that name on this device.
    case noSuchProfile(String)
    /// A profile of that name already exists on this device (creating it
    /// again is refused; nothing of the existing one was touched).
    case nameTaken(String)
}

/// How an unlock went.
public enum UnlockResult: Equatable, Sendable {
    case opened(Client)
    /// Counted: `attemptsLeft` more failures wipe the profile (0 with no limit).
    case wrongCredential(attemptsLeft: Int, retryAfterMs: Int64)
    /// Too soon after failures: not tried.
    case tryLater(retryAfterMs: Int64)
    /// The platform has to authenticate the user first (show its prompt, then retry).
    case needsUserAuthentication
    /// That was the last allowed failure: the profile is gone.
    case wiped

    public static func == (a: UnlockResult, b: UnlockResult) -> Bool {
        switch (a, b) {
        case let (.opened(x), .opened(y)): return x === y
        case let (.wrongCredential(l1, r1), .wrongCredential(l2, r2)): return l1 == l2 && r1 == r2
        case let (.tryLater(r1), .tryLater(r2)): return r1 == r2
        case (.needsUserAuthentication, .needsUserAuthentication), (.wiped, .wiped): return true
        default: return false
        }
    }

    /// What the unlock screen tells the user (nil when it opened).
    public func message(profile: String) -> String? {
        switch self {
        case .opened:
            return nil
        case let .wrongCredential(left, wait):
            var text = "Wrong PIN."
            if left == 1 { text += " One more wrong attempt wipes this profile." }
            if left > 1 { text += " \(left) more wrong attempts wipe this profile." }
            if wait > 0 { text += " Try again in \(seconds(wait)) s." }
            return text
        case let .tryLater(wait):
            return "Too many wrong attempts: try again in \(seconds(wait)) s."
        case .needsUserAuthentication:
            return "Authenticate to unlock \(profile)."
        case .wiped:
            return "Too many wrong attempts: the profile \(profile) was wiped."
        }
    }

    private func seconds(_ ms: Int64) -> Int64 { (ms + 999) / 1000 }
}

/// Creates, unlocks, locks, switches and wipes the profiles of one device.
/// `secrets` wraps each profile's device secret (a Keychain key that needs
/// no authentication: it binds the PIN to this device); `userAuth`, where
/// the platform has it, wraps the credential of profiles unlocked by user
/// authentication. `onLocked` is called (on the caller's thread) each time
/// an open profile is closed.
public final class DeviceProfiles: @unchecked Sendable {
    public let manager: ProfileManager
    private let secrets: KeyWrapper
    private let keys: WrappedKeyStore
    private let userAuth: KeyWrapper?
    private let lockOptions: LockOptions
    private let onLocked: (String) -> Void
    private let mutex = AsyncMutex()
    private let active = Protected<ActiveProfile?>(nil)

    /// Profiles under `root/profiles`. Creates that directory if missing:
    /// call it off the main thread (or once at start-up).
    public init(
        root: URL,
        secrets: KeyWrapper,
        keys: WrappedKeyStore,
        userAuth: KeyWrapper? = nil,
        lockOptions: LockOptions = defaultLockOptions(),
        onLocked: @escaping (String) -> Void = { _ in }
    ) throws {
        manager = try ProfileManager(root: root.appendingPathComponent("profiles").path)
        self.secrets = secrets
        self.keys = keys
        self.userAuth = userAuth
        self.lockOptions = lockOptions
        self.onLocked = onLocked
    }

    /// The open profile, or nil when locked.
    public var current: ActiveProfile? { active.get() }

    /// Every profile on the device.
    public func profiles() async throws -> [String] { try await manager.list() }

    /// The open client of `name`, if it is the open profile.
    public func openClient(name: String) -> Client? {
        active.withLock { a in a?.name == name ? a?.client : nil }
    }

    /// The directory of `name` (for the locked push path).
    public func dir(name: String) throws -> String { try manager.profileDir(name: name) }

    /// Creates `name`, unlocked by `pin` on this device, and opens it. A
    /// name already taken is refused (`ProfileError.nameTaken`) before
    /// anything of that profile is touched.
    @discardableResult
    public func createWithPin(name: String, pin: Data) async throws -> Client {
        try await mutex.withLock {
            try await refuseTaken(name)
            lock()
            var secret = randomBytes(32)
            defer { wipeBytes(&secret) }
            let client = try await manager.createLocked(name: name, credential: pin, deviceSecret: secret, options: lockOptions)
            try await storeKeys(name, secret: secret, credential: nil, client: client)
            return activate(name, client)
        }
    }

    /// Creates `name`, unlocked by platform user authentication, and opens
    /// it. A name already taken is refused (`ProfileError.nameTaken`) before
    /// anything of that profile is touched. Every user enrolled on the
    /// device (each face, each finger) can pass that authentication: on a
    /// shared device, give each person a PIN profile; this is for a phone
    /// with one user.
    @discardableResult
    public func createWithUserAuth(name: String) async throws -> Client {
        guard userAuth != nil else { throw ProfileError.noUserAuthentication }
        return try await mutex.withLock {
            try await refuseTaken(name)
            lock()
            var secret = randomBytes(32)
            var credential = randomBytes(32)
            defer {
                wipeBytes(&secret)
                wipeBytes(&credential)
            }
            let client = try await manager.createLocked(name: name, credential: credential, deviceSecret: secret, options: lockOptions)
            try await storeKeys(name, secret: secret, credential: credential, client: client)
            return activate(name, client)
        }
    }

    /// Whether `name` unlocks with user authentication (else with its PIN).
    public func usesUserAuth(name: String) -> Bool { keys.get(profile: credentialId(name)) != nil }

    /// Locks the open profile and unlocks `name` with `pin`.
    public func unlock(name: String, pin: Data) async throws -> UnlockResult {
        try await mutex.withLock {
            lock()
            return try await attempt(name, pin)
        }
    }

    /// Locks the open profile and unlocks `name` after platform user
    /// authentication (`needsUserAuthentication` until the platform did).
    public func unlockWithUserAuth(name: String) async throws -> UnlockResult {
        guard let auth = userAuth else { throw ProfileError.noUserAuthentication }
        return try await mutex.withLock {
            lock()
            guard let wrapped = keys.get(profile: credentialId(name)) else {
                throw ProfileError.notUsingUserAuthentication(name)
            }
            var credential: Data
            do {
                credential = try auth.unwrap(alias: authAlias(name), wrapped: wrapped)
            } catch is UserAuthenticationRequired {
                return .needsUserAuthentication
            }
            defer { wipeBytes(&credential) }
            return try await attempt(name, credential)
        }
    }

    /// Closes the open profile: every later call on its client fails with
    /// `Closed` at once, its subscribers are told (and withdraw its
    /// notifications), and the database closes on the core's threads.
    /// Never waits.
    public func lock() {
        let closing: ActiveProfile? = active.withLock { a in
            let previous = a
            a = nil
            return previous
        }
        guard let was = closing else { return }
        was.client.closeProfile()
        onLocked(was.name)
    }

    /// Deletes `name` for good: its files, wrapped secrets and Keychain keys.
    public func wipe(name: String) async throws {
        try await mutex.withLock {
            if current?.name == name { lock() }
            try await manager.wipe(name: name)
            forgetKeys(name)
        }
    }

    /// Locks the open profile (the manager itself is released with this object).
    public func close() { lock() }

    private func activate(_ name: String, _ client: Client) -> Client {
        active.set(ActiveProfile(name: name, client: client))
        return client
    }

    private func attempt(_ name: String, _ credential: Data) async throws -> UnlockResult {
        guard let wrapped = keys.get(profile: secretId(name)) else { throw ProfileError.noSuchProfile(name) }
        var secret = try secrets.unwrap(alias: secretAlias(name), wrapped: wrapped)
        defer { wipeBytes(&secret) }
        do {
            let client = try await manager.unlock(name: name, credential: credential, deviceSecret: secret)
            return .opened(activate(name, client))
        } catch let OccError.WrongCredential(attemptsLeft, retryAfterMs) {
            return .wrongCredential(attemptsLeft: Int(attemptsLeft), retryAfterMs: Int64(clamping: retryAfterMs))
        } catch let OccError.TryLater(retryAfterMs) {
            return .tryLater(retryAfterMs: Int64(clamping: retryAfterMs))
        } catch OccError.ProfileWiped {
            forgetKeys(name)
            return .wiped
        }
    }

    /// Refuses a name already taken (by the core's files or by a wrapped
    /// secret stored here), so that creating it touches none of its keys.
    private func refuseTaken(_ name: String) async throws {
        let exists = try await manager.exists(name: name)
        if exists || keys.get(profile: secretId(name)) != nil || keys.get(profile: credentialId(name)) != nil {
            throw ProfileError.nameTaken(name)
        }
    }

    /// Wraps and stores the new profile's secrets (and, for a user-auth
    /// profile, its credential), after the core created it; if that fails,
    /// the new profile is closed, wiped and its keys forgotten (nothing
    /// half-made stays), and the error is thrown.
    private func storeKeys(_ name: String, secret: Data, credential: Data?, client: Client) async throws {
        do {
            try keys.put(profile: secretId(name), wrapped: try secrets.wrap(alias: secretAlias(name), key: secret))
            if let credential {
                guard let auth = userAuth else { throw ProfileError.noUserAuthentication }
                try keys.put(profile: credentialId(name), wrapped: try auth.wrap(alias: authAlias(name), key: credential))
            }
        } catch {
            client.closeProfile()
            try? await manager.wipe(name: name)
            forgetKeys(name)
            throw error
        }
    }

    private func forgetKeys(_ name: String) {
        keys.delete(profile: secretId(name))
        keys.delete(profile: credentialId(name))
        secrets.forget(alias: secretAlias(name))
        userAuth?.forget(alias: authAlias(name))
    }

    private func secretId(_ name: String) -> String { "\(name).secret" }
    private func credentialId(_ name: String) -> String { "\(name).credential" }
    private func secretAlias(_ name: String) -> String { "occ-profile-\(name)" }
    private func authAlias(_ name: String) -> String { "occ-profile-auth-\(name)" }
}
