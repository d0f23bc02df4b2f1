// Shared devices: several people, one phone. Each person has a profile (its
// own database and key); the switcher opens one at a time, locks it (closes
// it, so its key leaves memory) and wipes it (files and wrapped key).
package org.occ.app

import java.io.File
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import org.occ.Client
import org.occ.ProfileManager
import org.occ.generateDatabaseKey

/** The profile in use. */
data class ActiveProfile(val name: String, val client: Client)

/** Opens, switches, locks and wipes profiles; at most one is open. */
class ProfileSwitcher(
    root: File,
    private val wrapper: KeyWrapper,
    private val keys: WrappedKeyStore,
) : AutoCloseable {
    private val manager = ProfileManager(File(root, "profiles").path)
    private val active = MutableStateFlow<ActiveProfile?>(null)

    /** The open profile, or null when locked. */
    val current: StateFlow<ActiveProfile?> = active.asStateFlow()

    /** Every profile on the device. */
    fun profiles(): List<String> = manager.list()

    /** Creates [name] with a fresh key (stored wrapped) and opens it. */
    @Synchronized
    fun create(name: String): Client {
        lock()
        val key = generateDatabaseKey()
        try {
            keys.put(name, wrapper.wrap(alias(name), key))
            val client = manager.create(name, key)
            active.value = ActiveProfile(name, client)
            return client
        } finally {
            key.fill(0)
        }
    }

    /** Locks the open profile and opens [name]. */
    @Synchronized
    fun switchTo(name: String): Client {
        lock()
        val wrapped = keys.get(name) ?: throw IllegalArgumentException("no key for profile $name")
        val key = wrapper.unwrap(alias(name), wrapped)
        try {
            val client = manager.open(name, key)
            active.value = ActiveProfile(name, client)
            return client
        } finally {
            key.fill(0)
        }
    }

    /**
     * Closes the open profile: its database and key leave memory. Screens
     * still holding the client get `OccException.Closed` from it; the handle
     * itself is released when they let go of it.
     */
    @Synchronized
    fun lock() {
        // Released by its holder already? Releasing closed the profile too.
        active.value?.client?.takeUnless { it.uniffiIsDestroyed }?.closeProfile()
        active.value = null
    }

    /** Deletes [name] for good: its files, its wrapped key and its platform key. */
    @Synchronized
    fun wipe(name: String) {
        if (active.value?.name == name) lock()
        manager.wipe(name)
        keys.delete(name)
        wrapper.forget(alias(name))
    }

    override fun close() {
        lock()
        manager.close()
    }

    private fun alias(name: String) = "occ-profile-$name"
}
