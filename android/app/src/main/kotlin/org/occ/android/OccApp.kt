// The process-wide state: the device's profiles and the open one's session.
package org.occ.android

import android.app.Application
import java.io.File
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import org.occ.LogLevel
import org.occ.Logger
import org.occ.app.ProfileSession
import org.occ.app.PromptView
import org.occ.app.ProfileSwitcher
import org.occ.app.WrappedKeyStore
import org.occ.setLogger

class OccApp : Application() {
    val scope = CoroutineScope(SupervisorJob() + Dispatchers.IO)
    lateinit var device: ProfileSwitcher
        private set
    private val sessionState = MutableStateFlow<ProfileSession?>(null)
    val session: StateFlow<ProfileSession?> = sessionState.asStateFlow()

    override fun onCreate() {
        super.onCreate()
        setLogger(object : Logger {
            override fun log(level: LogLevel, target: String, message: String) {
                val priority = when (level) {
                    LogLevel.ERROR -> android.util.Log.ERROR
                    LogLevel.WARN -> android.util.Log.WARN
                    LogLevel.INFO -> android.util.Log.INFO
                    LogLevel.DEBUG -> android.util.Log.DEBUG
                    LogLevel.TRACE -> android.util.Log.VERBOSE
                }
                android.util.Log.println(priority, "occ", "$target: $message")
            }
        }, LogLevel.INFO)
        device = ProfileSwitcher(filesDir, KeystoreKeyWrapper(), WrappedKeyStore(File(filesDir, "keys")))
    }

    /** Opens (or creates) [name] and starts its session. */
    fun open(name: String, create: Boolean) {
        lock()
        val client = if (create) device.create(name) else device.switchTo(name)
        sessionState.value = ProfileSession(name, client, scope)
    }

    /** Locks the open profile (the next user must unlock their own). */
    fun lock() {
        sessionState.value?.close()
        sessionState.value = null
        device.lock()
    }

    /** Wipes [name]: files, wrapped key and Keystore key. */
    fun wipe(name: String) {
        if (sessionState.value?.name == name) lock()
        device.wipe(name)
    }

    /** The pending download prompt, for the UI to show (and act on). */
    val prompt = MutableStateFlow<PromptView?>(null)

    /** Shows a download prompt (the notification channel is the UI's). */
    fun showPrompt(view: PromptView) {
        prompt.value = view
    }
}
