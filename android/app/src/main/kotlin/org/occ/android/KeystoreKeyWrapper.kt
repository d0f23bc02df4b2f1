// Keys wrapped by a non-exportable AES-256-GCM key in the Android Keystore
// (hardware-backed where the device has it). Two kinds:
// - without user authentication: each profile's device secret, which binds
//   its PIN to this phone (a copy of the files cannot be guessed elsewhere);
// - with user authentication (`requireUserAuth`): the credential of a
//   profile unlocked by fingerprint, face or the device PIN. The key opens
//   for 30 s after a BiometricPrompt succeeds; before that, `unwrap` throws
//   UserAuthenticationRequired and the logic asks the shell to show the
//   prompt. Enrolling a new fingerprint invalidates the key.
// Deleting the Keystore entry on wipe makes any copy of a wrapped key useless.
package org.occ.android

import android.os.Build
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import android.security.keystore.UserNotAuthenticatedException
import java.security.KeyStore
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import org.occ.app.AesGcmKeyWrapper
import org.occ.app.UserAuthenticationRequired

class KeystoreKeyWrapper(private val requireUserAuth: Boolean = false) : AesGcmKeyWrapper() {
    private val keyStore = KeyStore.getInstance("AndroidKeyStore").apply { load(null) }

    override fun cipherKey(alias: String): SecretKey {
        (keyStore.getEntry(alias, null) as? KeyStore.SecretKeyEntry)?.let { return it.secretKey }
        val spec = KeyGenParameterSpec.Builder(alias, KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT)
            .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
            .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
            .setKeySize(256)
        if (requireUserAuth) {
            spec.setUserAuthenticationRequired(true).setInvalidatedByBiometricEnrollment(true)
            if (Build.VERSION.SDK_INT >= 30) {
                spec.setUserAuthenticationParameters(
                    30,
                    KeyProperties.AUTH_BIOMETRIC_STRONG or KeyProperties.AUTH_DEVICE_CREDENTIAL,
                )
            } else {
                @Suppress("DEPRECATION")
                spec.setUserAuthenticationValidityDurationSeconds(30)
            }
        }
        val generator = KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, "AndroidKeyStore")
        generator.init(spec.build())
        return generator.generateKey()
    }

    override fun unwrap(alias: String, wrapped: ByteArray): ByteArray = try {
        super.unwrap(alias, wrapped)
    } catch (e: UserNotAuthenticatedException) {
        throw UserAuthenticationRequired()
    }

    override fun forget(alias: String) {
        if (keyStore.containsAlias(alias)) keyStore.deleteEntry(alias)
    }
}
