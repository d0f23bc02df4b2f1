// Profile keys wrapped by a non-exportable AES-256-GCM key in the Android
// Keystore (hardware-backed where the device has it). Deleting the Keystore
// entry on wipe makes any copy of the wrapped key useless.
package org.occ.android

import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import java.security.KeyStore
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import org.occ.app.AesGcmKeyWrapper

class KeystoreKeyWrapper : AesGcmKeyWrapper() {
    private val keyStore = KeyStore.getInstance("AndroidKeyStore").apply { load(null) }

    override fun cipherKey(alias: String): SecretKey {
        (keyStore.getEntry(alias, null) as? KeyStore.SecretKeyEntry)?.let { return it.secretKey }
        val generator = KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, "AndroidKeyStore")
        generator.init(
            KeyGenParameterSpec.Builder(alias, KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT)
                .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
                .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
                .setKeySize(256)
                .build(),
        )
        return generator.generateKey()
    }

    override fun forget(alias: String) {
        if (keyStore.containsAlias(alias)) keyStore.deleteEntry(alias)
    }
}
