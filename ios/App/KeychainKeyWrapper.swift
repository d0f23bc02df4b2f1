// The app's platform keys for OccAppLogic's KeyWrapper: AES-256 keys kept
// in the Keychain (this device only, never in backups), in the app's own
// access group — the notification extension cannot read them. Deleting a
// key on wipe makes every copy of what it wrapped useless.
//
// - KeychainKeyWrapper wraps each profile's device secret (it binds a PIN
//   to this device); readable after the first unlock since boot.
// - UserAuthKeychainWrapper wraps the credential of profiles unlocked by
//   Face ID or Touch ID: its keys open only with an LAContext in which the
//   user just authenticated with biometrics (`authenticate`), once; without
//   one, unwrapping throws UserAuthenticationRequired and never shows a
//   prompt of its own, so the unlock screen decides when to ask. The
//   Keychain items are bound to the current biometric enrolment
//   (`.biometryCurrentSet`), not to `.userPresence`: the device passcode is
//   not accepted, because on a shared device everyone knows it, and
//   enrolling or removing a face or finger makes the key unusable (the
//   profile must then be wiped and created again). Every face or finger
//   enrolled still opens it: on a shared device, profiles use PINs.
import CryptoKit
import Foundation
import LocalAuthentication
import OccAppLogic
import Security

final class KeychainKeyWrapper: AesGcmKeyWrapper {
    private let service = "org.occ.device-secrets"

    override func cipherKey(alias: String) throws -> SymmetricKey {
        if let data = try Keychain.read(service: service, account: alias) {
            return SymmetricKey(data: data)
        }
        let key = SymmetricKey(size: .bits256)
        try Keychain.add(service: service, account: alias, data: key.withUnsafeBytes { Data($0) },
                         protection: .afterFirstUnlock)
        return key
    }

    override func forget(alias: String) {
        Keychain.delete(service: service, account: alias)
    }
}

final class UserAuthKeychainWrapper: AesGcmKeyWrapper {
    private let service = "org.occ.user-auth"
    private let lock = NSLock()
    private var authenticated: LAContext?

    /// Shows the platform's biometric prompt (no passcode fallback: the
    /// Keychain items would not accept it anyway); true once the user
    /// authenticated. The next unwrap uses that authentication, once.
    func authenticate(reason: String) async -> Bool {
        let context = LAContext()
        do {
            guard try await context.evaluatePolicy(.deviceOwnerAuthenticationWithBiometrics, localizedReason: reason) else {
                return false
            }
        } catch {
            return false
        }
        context.interactionNotAllowed = true
        keep(context)
        return true
    }

    override func cipherKey(alias: String) throws -> SymmetricKey {
        let context = take() ?? Self.silentContext()
        do {
            if let data = try Keychain.read(service: service, account: alias, context: context) {
                return SymmetricKey(data: data)
            }
        } catch let failure as Keychain.Failure
            where [errSecInteractionNotAllowed, errSecAuthFailed, errSecUserCanceled].contains(failure.status) {
            throw UserAuthenticationRequired()
        }
        let key = SymmetricKey(size: .bits256)
        try Keychain.add(service: service, account: alias, data: key.withUnsafeBytes { Data($0) },
                         protection: .currentBiometrics)
        return key
    }

    override func forget(alias: String) {
        Keychain.delete(service: service, account: alias)
    }

    /// A context that fails instead of prompting.
    private static func silentContext() -> LAContext {
        let context = LAContext()
        context.interactionNotAllowed = true
        return context
    }

    private func keep(_ context: LAContext) {
        lock.lock()
        authenticated = context
        lock.unlock()
    }

    private func take() -> LAContext? {
        lock.lock()
        defer { lock.unlock() }
        let context = authenticated
        authenticated = nil
        return context
    }
}
