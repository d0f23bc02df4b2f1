// Shared devices: several people, one phone. Each person has a profile (its
// own database and key) that opens only with that person's credential:
//
// - a PIN or passphrase, which the core stretches (scrypt) together with a
//   secret this device keeps in its keystore, so guessing needs this device;
//   the core counts failures, makes the user wait after three, and wipes the
//   profile at the limit (the app's, or the organisation policy's);
// - or platform user authentication (fingerprint, face, device PIN): a
//   random credential kept wrapped under a keystore key that only opens
//   after the platform authenticated the user, then the same core unlock.
//
// At most one profile is open. Locking closes it at once (its key leaves
// memory; its notifications are withdrawn); switching is lock + unlock;
// wiping deletes the profile's files, its wrapped secrets and its keystore
// keys.
package org.occ.app

import java.io.File
import java.security.SecureRandom
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.sync.Mutex
import kotlinx.coroutines.sync.withLock
import org.occ.Client
import org.occ.LockOptions
import org.occ.OccException
import org.occ.ProfileManager
import org.occ.defaultLockOptions

/** The profile in use. */
data class ActiveProfile(val name: String, val client: Client)

/** The platform must authenticate the user before this key can be used. */
class UserAuthenticationRequired(message: String = "authenticate the user first") : Exception(message)

/** How an unlock went. */
sealed interface UnlockResult {
    data class Opened(val client: Client) : UnlockResult

    /** Counted: [attemptsLeft] more failures wipe the profile. */
    data class WrongCredential(val attemptsLeft: Int, val retryAfterMs: Long) : UnlockResult

    /** Too soon after failures: not tried. */
    data class TryLater(val retryAfterMs: Long) : UnlockResult

    /** The platform has to authenticate the user first (show its prompt, then retry). */
    data object NeedsUserAuthentication : UnlockResult

    /** That was the last allowed failure: the profile is gone. */
    data object Wiped : UnlockResult
}

/**
 * Creates, unlocks, locks, switches and wipes the profiles of one device.
 * [secrets] wraps each profile's device secret (a keystore key that needs no
 * authentication: it binds the PIN to this device); [userAuth], where the
 * platform has it, wraps the credential of profiles unlocked by user
 * authentication.
 */
class DeviceProfiles(
    root: File,
    private val secrets: KeyWrapper,
    private val keys: WrappedKeyStore,
    private val userAuth: KeyWrapper? = null,
    private val lockOptions: LockOptions = defaultLockOptions(),
    private val onLocked: (String) -> Unit = {},
) : AutoCloseable {
    val manager = ProfileManager(File(root, "profiles").path)
    private val mutex = Mutex()
    private val active = MutableStateFlow<ActiveProfile?>(null)

    /** The open profile, or null when locked. */
    val current: StateFlow<ActiveProfile?> = active.asStateFlow()

    /** Every profile on the device. */
    suspend fun profiles(): List<String> = manager.list()

    /** The open client of [name], if it is the open profile. */
    fun openClient(name: String): Client? = active.value?.takeIf { it.name == name }?.client

    /** The directory of [name] (for the locked push path). */
    fun dir(name: String): String = manager.profileDir(name)

    /**
     * Creates [name], unlocked by [pin] on this device, and opens it. A name
     * already taken is refused before anything of that profile is touched.
     */
    suspend fun createWithPin(name: String, pin: ByteArray): Client = mutex.withLock {
        refuseTaken(name)
        lockLocked()
        val secret = random(32)
        try {
            val client = manager.createLocked(name, pin, secret, lockOptions)
            storeKeys(name, secret, client) { null }
            open(name, client)
        } finally {
            secret.fill(0)
        }
    }

    /**
     * Creates [name], unlocked by platform user authentication, and opens it.
     * Every user enrolled on the device (each fingerprint, face) can pass
     * that authentication: on a shared device, give each person a PIN
     * profile; this is for a phone with one user.
     */
    suspend fun createWithUserAuth(name: String): Client = mutex.withLock {
        val auth = userAuth ?: throw IllegalStateException("this device has no user authentication")
        refuseTaken(name)
        lockLocked()
        val secret = random(32)
        val credential = random(32)
        try {
            val client = manager.createLocked(name, credential, secret, lockOptions)
            storeKeys(name, secret, client) { auth.wrap(authAlias(name), credential) }
            open(name, client)
        } finally {
            secret.fill(0)
            credential.fill(0)
        }
    }

    /** For the shell's user-authentication prompt: the key alias and wrapped credential of [name]. */
    fun userAuthChallenge(name: String): Pair<String, ByteArray>? =
        keys.get(credentialId(name))?.let { authAlias(name) to it }

    /** Whether [name] unlocks with user authentication (else with its PIN). */
    fun usesUserAuth(name: String): Boolean = keys.get(credentialId(name)) != null

    /** Locks the open profile and unlocks [name] with [pin]. */
    suspend fun unlock(name: String, pin: ByteArray): UnlockResult = mutex.withLock {
        lockLocked()
        attempt(name, pin)
    }

    /** Locks the open profile and unlocks [name] after platform user authentication. */
    suspend fun unlockWithUserAuth(name: String): UnlockResult = mutex.withLock {
        val auth = userAuth ?: throw IllegalStateException("this device has no user authentication")
        lockLocked()
        val wrapped = keys.get(credentialId(name)) ?: throw IllegalArgumentException("$name does not use user authentication")
        val credential = try {
            auth.unwrap(authAlias(name), wrapped)
        } catch (e: UserAuthenticationRequired) {
            return@withLock UnlockResult.NeedsUserAuthentication
        }
        try {
            attempt(name, credential)
        } finally {
            credential.fill(0)
        }
    }

    /**
     * Closes the open profile: every later call on its client fails with
     * `Closed` at once, its subscribers are told (and withdraw its
     * notifications), and the database closes on the core's threads. Never
     * waits.
     */
    fun lock() {
        val was = active.value ?: return
        active.value = null
        was.client.takeUnless { it.uniffiIsDestroyed }?.closeProfile()
        onLocked(was.name)
    }

    /** Deletes [name] for good: its files, wrapped secrets and keystore keys. */
    suspend fun wipe(name: String) = mutex.withLock {
        if (active.value?.name == name) lockLocked()
        manager.wipe(name)
        forgetKeys(name)
    }

    override fun close() {
        lock()
        manager.close()
    }

    private fun lockLocked() = lock()

    private fun open(name: String, client: Client): Client {
        active.value = ActiveProfile(name, client)
        return client
    }

    private suspend fun attempt(name: String, credential: ByteArray): UnlockResult {
        val wrapped = keys.get(secretId(name)) ?: throw IllegalArgumentException("no profile $name on this device")
        val secret = secrets.unwrap(secretAlias(name), wrapped)
        return try {
            UnlockResult.Opened(open(name, manager.unlock(name, credential, secret)))
        } catch (e: OccException.WrongCredential) {
            UnlockResult.WrongCredential(e.attemptsLeft.toInt(), e.retryAfterMs.toLong())
        } catch (e: OccException.TryLater) {
            UnlockResult.TryLater(e.retryAfterMs.toLong())
        } catch (e: OccException.ProfileWiped) {
            forgetKeys(name)
            UnlockResult.Wiped
        } finally {
            secret.fill(0)
        }
    }

    private suspend fun refuseTaken(name: String) {
        if (manager.exists(name) || keys.get(secretId(name)) != null) {
            throw IllegalArgumentException("a profile named $name already exists on this device")
        }
    }

    /**
     * Stores the new profile's wrapped secrets, after the core created it; if
     * that fails, the new profile is removed again (nothing half-made stays).
     */
    private suspend fun storeKeys(name: String, secret: ByteArray, client: Client, credential: () -> ByteArray?) {
        try {
            keys.put(secretId(name), secrets.wrap(secretAlias(name), secret))
            credential()?.let { keys.put(credentialId(name), it) }
        } catch (e: Throwable) {
            client.closeProfile()
            runCatching { manager.wipe(name) }
            forgetKeys(name)
            throw e
        }
    }

    private fun forgetKeys(name: String) {
        keys.delete(secretId(name))
        keys.delete(credentialId(name))
        secrets.forget(secretAlias(name))
        userAuth?.forget(authAlias(name))
    }

    private fun random(n: Int) = ByteArray(n).also { SecureRandom().nextBytes(it) }
    private fun secretId(name: String) = "$name.secret"
    private fun credentialId(name: String) = "$name.credential"
    private fun secretAlias(name: String) = "occ-profile-$name"
    private fun authAlias(name: String) = "occ-profile-auth-$name"
}
