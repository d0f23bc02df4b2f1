// Database keys never touch the disk in the clear: each profile's random
// 32-byte key is wrapped by a platform key (the Keychain in the app, a
// software key in tests) and only the wrapped form is stored.
import Foundation
#if canImport(CryptoKit)
import CryptoKit
#else
import Crypto
#endif
import Occ

/// Wraps and unwraps profile keys under a key the platform protects.
public protocol KeyWrapper {
    func wrap(alias: String, key: Data) throws -> Data
    func unwrap(alias: String, wrapped: Data) throws -> Data
    func forget(alias: String)
}

/// AES-256-GCM with the alias as associated data, so a wrapped key cannot be
/// swapped between profiles. Subclasses supply the key per alias.
open class AesGcmKeyWrapper: KeyWrapper {
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

public enum KeyWrapError: Error {
    case sealing
    case noKey(String)
}

/// Master keys in memory (tests, tools).
public final class SoftwareKeyWrapper: AesGcmKeyWrapper {
    private var keys: [String: SymmetricKey] = [:]
    private let lock = NSLock()

    public override init() {}

    public override func cipherKey(alias: String) throws -> SymmetricKey {
        lock.lock()
        defer { lock.unlock() }
        if let key = keys[alias] { return key }
        let key = SymmetricKey(size: .bits256)
        keys[alias] = key
        return key
    }

    public override func forget(alias: String) {
        lock.lock()
        keys[alias] = nil
        lock.unlock()
    }
}

/// Wrapped keys on disk, one file per profile, excluded from backups and
/// (on iOS) protected until first unlock.
public final class WrappedKeyStore {
    private let dir: URL

    public init(dir: URL) throws {
        self.dir = dir
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
    }

    private func file(_ profile: String) -> URL { dir.appendingPathComponent("\(profile).key") }

    public func put(profile: String, wrapped: Data) throws {
        var options: Data.WritingOptions = [.atomic]
        #if os(iOS)
        options.insert(.completeFileProtectionUntilFirstUserAuthentication)
        #endif
        try wrapped.write(to: file(profile), options: options)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file(profile).path)
    }

    public func get(profile: String) -> Data? { try? Data(contentsOf: file(profile)) }

    public func delete(profile: String) { try? FileManager.default.removeItem(at: file(profile)) }
}
