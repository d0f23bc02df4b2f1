// Secrets never touch the disk in the clear (mirrors the Android logic's
// Keys.kt): each profile's device secret — and, for profiles unlocked by
// user authentication, its credential — is wrapped by a platform key (the
// Keychain in the app) and only the wrapped form is stored, one owner-only
// file each.
//
// Where CryptoKit exists (every Apple platform), wrapping is AES-256-GCM
// with the alias as associated data, so a wrapped secret cannot be swapped
// between profiles and any change to it is detected. On Linux, where the
// package is only tested, there is no AES without a package dependency, so
// `SoftwareKeyWrapper` is a test double instead (see its comment): it is
// never used by an app.
import Foundation
#if canImport(CryptoKit)
import CryptoKit
#endif
import Occ

/// Wraps and unwraps secrets under a key the platform protects.
public protocol KeyWrapper: AnyObject {
    /// Encrypts `key` for the profile known as `alias`.
    func wrap(alias: String, key: Data) throws -> Data

    /// Decrypts what `wrap` produced; throws if it was tampered with, is for
    /// another alias, or its platform key is gone.
    func unwrap(alias: String, wrapped: Data) throws -> Data

    /// Deletes the platform key of `alias` (a wiped profile).
    func forget(alias: String)
}

public enum KeyWrapError: Error, Equatable {
    case sealing
    /// Not what `wrap` produced for this alias (changed, swapped, or its key forgotten).
    case tampered
    case noKey(String)
}

#if canImport(CryptoKit)
/// AES-256-GCM wrapping with the alias as associated data. Subclasses supply
/// the key per alias (the app's Keychain wrappers).
open class AesGcmKeyWrapper: KeyWrapper, @unchecked Sendable {
    public init() {}

    /// The AES key for `alias`, created on first use.
    open func cipherKey(alias: String) throws -> SymmetricKey {
        fatalError("subclasses supply the key")
    }

    open func forget(alias: String) {}

    public func wrap(alias: String, key: Data) throws -> Data {
        let box = try AES.GCM.seal(key, using: try cipherKey(alias: alias), authenticating: Data(alias.utf8))
        guard let combined = box.combined else { throw KeyWrapError.sealing }
        return combined
    }

    public func unwrap(alias: String, wrapped: Data) throws -> Data {
        let box = try AES.GCM.SealedBox(combined: wrapped)
        return try AES.GCM.open(box, using: try cipherKey(alias: alias), authenticating: Data(alias.utf8))
    }
}

/// A wrapper whose master keys live in memory (tests, tools).
public final class SoftwareKeyWrapper: AesGcmKeyWrapper {
    private let keys = Protected<[String: SymmetricKey]>([:])

    public override init() {}

    public override func cipherKey(alias: String) throws -> SymmetricKey {
        keys.withLock { all in
            if let key = all[alias] { return key }
            let key = SymmetricKey(size: .bits256)
            all[alias] = key
            return key
        }
    }

    public override func forget(alias: String) {
        keys.withLock { $0[alias] = nil }
    }
}
#else
/// A TEST DOUBLE for platforms without CryptoKit (the Linux test runs): it
/// encrypts nothing. `wrap` keeps the secret in this object's memory and
/// returns a fresh random 32-byte handle, which says nothing about the
/// secret; `unwrap` gives the secret back only for that exact handle and
/// the alias it was made for, and throws `KeyWrapError.tampered` for any
/// other bytes (a changed handle, another profile's, or one whose alias was
/// forgotten). It keeps the wrapper's contract — nothing of the secret in
/// what is stored, bound to its alias, changes detected — but not its
/// purpose: handles die with the process, so nothing wrapped survives a
/// restart. Apps never use it; on Apple platforms `SoftwareKeyWrapper` is
/// real AES-GCM.
public final class SoftwareKeyWrapper: KeyWrapper, @unchecked Sendable {
    private struct Entry {
        let alias: String
        let key: Data
    }

    private let entries = Protected<[Data: Entry]>([:])

    public init() {}

    public func wrap(alias: String, key: Data) throws -> Data {
        let handle = randomBytes(32)
        entries.withLock { $0[handle] = Entry(alias: alias, key: key) }
        return handle
    }

    public func unwrap(alias: String, wrapped: Data) throws -> Data {
        guard let entry = entries.withLock({ $0[wrapped] }), entry.alias == alias else {
            throw KeyWrapError.tampered
        }
        return entry.key
    }

    public func forget(alias: String) {
        entries.withLock { all in all = all.filter { $0.value.alias != alias } }
    }
}
#endif

/// Wrapped secrets on disk, one owner-only file per id (`<id>.key`), in a
/// directory only the owner can enter; on iOS protected until the first
/// unlock after a restart. The wrapped forms are useless without this
/// device's Keychain.
public final class WrappedKeyStore: @unchecked Sendable {
    private let dir: URL

    public init(dir: URL) throws {
        self.dir = dir
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
    }

    private func file(_ id: String) -> URL { dir.appendingPathComponent("\(id).key") }

    /// Stores the wrapped secret `id` (atomically: the old one or the new one).
    public func put(profile id: String, wrapped: Data) throws {
        var options: Data.WritingOptions = [.atomic]
        #if os(iOS)
        options.insert(.completeFileProtectionUntilFirstUserAuthentication)
        #endif
        try wrapped.write(to: file(id), options: options)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file(id).path)
    }

    /// The wrapped secret `id`, if stored.
    public func get(profile id: String) -> Data? { try? Data(contentsOf: file(id)) }

    /// Deletes the wrapped secret `id`.
    public func delete(profile id: String) { try? FileManager.default.removeItem(at: file(id)) }
}
