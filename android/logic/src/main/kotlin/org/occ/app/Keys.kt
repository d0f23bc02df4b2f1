// Database keys never touch the disk in the clear: each profile's random
// 32-byte SQLCipher key is wrapped by a platform key (the Android Keystore
// in the app, a software key in tests) and only the wrapped form is stored.
package org.occ.app

import java.io.File
import java.security.SecureRandom
import javax.crypto.Cipher
import javax.crypto.spec.GCMParameterSpec
import javax.crypto.spec.SecretKeySpec

/** Wraps and unwraps profile keys under a key the platform protects. */
interface KeyWrapper {
    /** Encrypts [key] for the profile known as [alias]. */
    fun wrap(alias: String, key: ByteArray): ByteArray

    /** Decrypts what [wrap] produced; throws if it was tampered with. */
    fun unwrap(alias: String, wrapped: ByteArray): ByteArray

    /** Deletes the platform key of [alias] (a wiped profile). */
    fun forget(alias: String)
}

/**
 * AES-256-GCM wrapping with the alias as associated data, so a wrapped key
 * cannot be swapped between profiles. The Android app supplies the cipher
 * key from the Keystore; tests and desktops use [SoftwareKeyWrapper].
 */
abstract class AesGcmKeyWrapper : KeyWrapper {
    /** The AES key for [alias], created on first use. */
    protected abstract fun cipherKey(alias: String): javax.crypto.SecretKey

    override fun wrap(alias: String, key: ByteArray): ByteArray {
        val cipher = Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(Cipher.ENCRYPT_MODE, cipherKey(alias))
        cipher.updateAAD(alias.encodeToByteArray())
        return cipher.iv + cipher.doFinal(key)
    }

    override fun unwrap(alias: String, wrapped: ByteArray): ByteArray {
        require(wrapped.size > IV_BYTES) { "a wrapped key is too short" }
        val cipher = Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(
            Cipher.DECRYPT_MODE,
            cipherKey(alias),
            GCMParameterSpec(128, wrapped, 0, IV_BYTES),
        )
        cipher.updateAAD(alias.encodeToByteArray())
        return cipher.doFinal(wrapped, IV_BYTES, wrapped.size - IV_BYTES)
    }

    companion object {
        const val IV_BYTES = 12
    }
}

/** A wrapper whose master keys live in memory (tests, desktop tools). */
class SoftwareKeyWrapper : AesGcmKeyWrapper() {
    private val keys = java.util.concurrent.ConcurrentHashMap<String, javax.crypto.SecretKey>()

    override fun cipherKey(alias: String): javax.crypto.SecretKey = keys.getOrPut(alias) {
        SecretKeySpec(ByteArray(32).also { SecureRandom().nextBytes(it) }, "AES")
    }

    override fun forget(alias: String) {
        keys.remove(alias)
    }
}

/** Wrapped keys on disk, one owner-only file per profile. */
class WrappedKeyStore(private val dir: File) {
    init {
        dir.mkdirs()
        private(dir)
    }

    private fun file(profile: String) = File(dir, "$profile.key")

    /** Stores the wrapped key of [profile]. */
    fun put(profile: String, wrapped: ByteArray) {
        val f = file(profile)
        val tmp = File(dir, "$profile.key.new")
        tmp.writeBytes(wrapped)
        private(tmp)
        check(tmp.renameTo(f)) { "cannot store the key of $profile" }
    }

    /** The wrapped key of [profile], if stored. */
    fun get(profile: String): ByteArray? = file(profile).takeIf { it.isFile }?.readBytes()

    /** Deletes the wrapped key of [profile]. */
    fun delete(profile: String) {
        file(profile).delete()
    }

    private fun private(f: File) {
        f.setReadable(false, false)
        f.setWritable(false, false)
        f.setReadable(true, true)
        f.setWritable(true, true)
        if (f.isDirectory) {
            f.setExecutable(false, false)
            f.setExecutable(true, true)
        }
    }
}
