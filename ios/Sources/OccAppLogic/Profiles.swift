// Shared devices: each person has a profile (own database and key); the
// switcher opens one at a time, locks it (its key leaves memory) and wipes it.
import Foundation
import Occ

/// The profile in use.
public struct ActiveProfile {
    public let name: String
    public let client: Client
}

/// Opens, switches, locks and wipes profiles; at most one is open.
public final class ProfileSwitcher {
    private let manager: ProfileManager
    private let wrapper: KeyWrapper
    private let keys: WrappedKeyStore
    private let lock = NSLock()
    public private(set) var current: ActiveProfile?

    public init(root: URL, wrapper: KeyWrapper, keys: WrappedKeyStore) throws {
        manager = try ProfileManager(root: root.appendingPathComponent("profiles").path)
        self.wrapper = wrapper
        self.keys = keys
    }

    public func profiles() throws -> [String] { try manager.list() }

    /// Creates `name` with a fresh key (stored wrapped) and opens it.
    @discardableResult
    public func create(name: String) throws -> Client {
        lock.lock()
        defer { lock.unlock() }
        lockCurrent()
        let key = try generateDatabaseKey()
        try keys.put(profile: name, wrapped: try wrapper.wrap(alias: alias(name), key: key))
        let client = try manager.create(name: name, key: key)
        current = ActiveProfile(name: name, client: client)
        return client
    }

    /// Locks the open profile and opens `name`.
    @discardableResult
    public func switchTo(name: String) throws -> Client {
        lock.lock()
        defer { lock.unlock() }
        lockCurrent()
        guard let wrapped = keys.get(profile: name) else { throw KeyWrapError.noKey(name) }
        let key = try wrapper.unwrap(alias: alias(name), wrapped: wrapped)
        let client = try manager.open(name: name, key: key)
        current = ActiveProfile(name: name, client: client)
        return client
    }

    /// Closes the open profile: its database and key leave memory.
    public func lockProfile() {
        lock.lock()
        defer { lock.unlock() }
        lockCurrent()
    }

    /// Deletes `name` for good: its files, wrapped key and platform key.
    public func wipe(name: String) throws {
        lock.lock()
        defer { lock.unlock() }
        if current?.name == name { lockCurrent() }
        try manager.wipe(name: name)
        keys.delete(profile: name)
        wrapper.forget(alias: alias(name))
    }

    private func lockCurrent() {
        current?.client.closeProfile()
        current = nil
    }

    private func alias(_ name: String) -> String { "occ-profile-\(name)" }
}
