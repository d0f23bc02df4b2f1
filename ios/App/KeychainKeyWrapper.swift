// Profile keys wrapped by a per-profile AES-256 key kept in the Keychain
// (this device only, after first unlock, never in backups). Deleting the
// Keychain item on wipe makes any copy of the wrapped key useless.
import CryptoKit
import Foundation
import OccAppLogic
import Security

final class KeychainKeyWrapper: AesGcmKeyWrapper {
    private let service = "org.occ.profile-keys"

    override func cipherKey(alias: String) throws -> SymmetricKey {
        var query: [String: Any] = [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: service,
            kSecAttrAccount as String: alias,
            kSecReturnData as String: true,
        ]
        var item: CFTypeRef?
        if SecItemCopyMatching(query as CFDictionary, &item) == errSecSuccess, let data = item as? Data {
            return SymmetricKey(data: data)
        }
        let key = SymmetricKey(size: .bits256)
        query[kSecReturnData as String] = nil
        query[kSecValueData as String] = key.withUnsafeBytes { Data($0) }
        query[kSecAttrAccessible as String] = kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly
        let status = SecItemAdd(query as CFDictionary, nil)
        guard status == errSecSuccess else { throw KeyWrapError.noKey(alias) }
        return key
    }

    override func forget(alias: String) {
        SecItemDelete([
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: service,
            kSecAttrAccount as String: alias,
        ] as CFDictionary)
    }
}
