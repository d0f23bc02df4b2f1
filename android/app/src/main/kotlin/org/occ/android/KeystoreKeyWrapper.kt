// Keys wrapped by a non-exportable AES-256-GCM key in the Android Keystore
// (hardware-backed where the device has it). Two kinds:
// - without user authentication: each profile's device secret, which binds
//   its PIN to this phone (a copy of the files cannot be guessed elsewhere);
// - with user authentication (`requireUserAuth`): the credential of a
//   profile unlocked by a strong biometric. The key opens for one use only,
//   with a Cipher the BiometricPrompt authorised (a CryptoObject): the shell
//   gets it from `cipherFor`, shows the prompt, hands the authorised cipher
//   to `authorized`, and the logic's unlock then uses it once. Without that,
//   `unwrap` throws UserAuthenticationRequired. The device PIN is not
//   accepted (on a shared phone everyone knows it), and enrolling a new
//   fingerprint invalidates the key. Every enrolled fingerprint still opens
//   it: on a shared device, profiles use PINs.
// Deleting the Keystore entry on wipe makes any copy of a wrapped key useless.
package org.occ.android

import android.os.Build
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import android.security.keystore.UserNotAuthenticatedException
import java.security.KeyStore
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec
import org.occ.app.AesGcmKeyWrapper
import org.occ.app.UserAuthenticationRequired

class KeystoreKeyWrapper(private val requireUserAuth: Boolean = false) : AesGcmKeyWrapper() {
    private val keyStore = KeyStore.getInstance("AndroidKeyStore").apply { load(null) }

    @Volatile
    private var authorizedCipher: Pair<String, Cipher>? = null

    override fun cipherKey(alias: String): SecretKey {
        (keyStore.getEntry(alias, null) as? KeyStore.SecretKeyEntry)?.let { return it.secretKey }
        val spec = KeyGenParameterSpec.Builder(alias, KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT)
            .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
            .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
            .setKeySize(256)
        if (requireUserAuth) {
            spec.setUserAuthenticationRequired(true).setInvalidatedByBiometricEnrollment(true)
            if (Build.VERSION.SDK_INT >= 30) {
                // Timeout 0: every use needs its own authorised CryptoObject.
                spec.setUserAuthenticationParameters(0, KeyProperties.AUTH_BIOMETRIC_STRONG)
            }
        }
        val generator = KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, "AndroidKeyStore")
        generator.init(spec.build())
        return generator.generateKey()
    }

    /** The cipher the BiometricPrompt must authorise before `unwrap(alias, wrapped)`. */
    fun cipherFor(alias: String, wrapped: ByteArray): Cipher =
        Cipher.getInstance("AES/GCM/NoPadding").apply {
            init(Cipher.DECRYPT_MODE, cipherKey(alias), GCMParameterSpec(128, wrapped, 0, IV_BYTES))
        }

    /** The prompt authorised [cipher] for [alias]: the next unwrap uses it, once. */
    fun authorized(alias: String, cipher: Cipher) {
        authorizedCipher = alias to cipher
    }

    override fun unwrap(alias: String, wrapped: ByteArray): ByteArray {
        if (!requireUserAuth) return super.unwrap(alias, wrapped)
        val (forAlias, cipher) = authorizedCipher ?: throw UserAuthenticationRequired()
        authorizedCipher = null
        if (forAlias != alias) throw UserAuthenticationRequired()
        return try {
            cipher.updateAAD(alias.encodeToByteArray())
            cipher.doFinal(wrapped, IV_BYTES, wrapped.size - IV_BYTES)
        } catch (e: UserNotAuthenticatedException) {
            throw UserAuthenticationRequired()
        }
    }

    override fun forget(alias: String) {
        if (keyStore.containsAlias(alias)) keyStore.deleteEntry(alias)
    }
}
