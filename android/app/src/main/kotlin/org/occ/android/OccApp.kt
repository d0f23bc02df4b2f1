// The process-wide state: the device's profiles (each unlocked by its user's
// PIN or by the platform's user authentication), the open one's session, the
// notification center and the push handler. Every core call is a suspend
// function whose work runs on the core's own threads, so the UI may call
// them from Dispatchers.Main.
package org.occ.android

import android.app.Application
import android.content.SharedPreferences
import java.io.File
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import org.occ.LogLevel
import org.occ.Logger
import org.occ.app.DeviceProfiles
import org.occ.app.NotificationCenter
import org.occ.app.ProfileSession
import org.occ.app.PushHandler
import org.occ.app.UnlockResult
import org.occ.app.WrappedKeyStore
import org.occ.ensureNativeLibrary
import org.occ.setLogger
import org.unifiedpush.android.connector.UnifiedPush

class OccApp : Application() {
    val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)
    lateinit var device: DeviceProfiles
        private set
    lateinit var notifications: NotificationCenter
        private set
    lateinit var push: PushHandler
        private set
    lateinit var endpoints: SharedPreferences
        private set
    /** The Keystore wrapper of user-authenticated profiles (the biometric prompt authorises it). */
    val userAuth = KeystoreKeyWrapper(requireUserAuth = true)
    private val sessionState = MutableStateFlow<ProfileSession?>(null)
    val session: StateFlow<ProfileSession?> = sessionState.asStateFlow()

    override fun onCreate() {
        super.onCreate()
        ensureNativeLibrary() // a stale native library fails here, clearly
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
        val poster = AndroidNotifications(this).also { it.createChannels() }
        notifications = NotificationCenter(poster)
        endpoints = getSharedPreferences("push-endpoints", MODE_PRIVATE)
        device = DeviceProfiles(
            filesDir,
            secrets = KeystoreKeyWrapper(),
            keys = WrappedKeyStore(File(filesDir, "keys")),
            userAuth = userAuth,
            onLocked = { name -> notifications.cancelAll(name) },
        )
        push = PushHandler(device, notifications)
        SyncWorker.schedule(this)
    }

    /** The session of [name], if it is the open profile. */
    fun sessionFor(name: String): ProfileSession? = sessionState.value?.takeIf { it.name == name }

    /** Creates [name] unlocked by [pin] (or by user authentication when null) and opens it. */
    suspend fun create(name: String, pin: ByteArray?) {
        lock()
        val client = if (pin != null) device.createWithPin(name, pin) else device.createWithUserAuth(name)
        begin(name, client)
        UnifiedPush.registerAppWithDialog(this, name) // one endpoint per profile
    }

    /** Unlocks [name]; the result says what the unlock screen shows next. */
    suspend fun unlock(name: String, pin: ByteArray?): UnlockResult {
        lock()
        val r = if (pin != null) device.unlock(name, pin) else device.unlockWithUserAuth(name)
        if (r is UnlockResult.Opened) begin(name, r.client)
        return r
    }

    private suspend fun begin(name: String, client: org.occ.Client) {
        val s = ProfileSession(name, client, scope, notifications)
        sessionState.value = s
        if (s.isEnrolled()) {
            s.onNewPushEndpoint(endpoints.getString(name, null))
            s.startSync()
        }
    }

    /** Locks the open profile (the next user must unlock their own). Never waits. */
    fun lock() {
        sessionState.value?.close()
        sessionState.value = null
        device.lock()
    }

    /** Wipes [name]: files, wrapped secrets, Keystore keys, push registration. */
    suspend fun wipe(name: String) {
        if (sessionState.value?.name == name) lock()
        device.wipe(name)
        UnifiedPush.unregisterApp(this, name)
        endpoints.edit().remove(name).apply()
    }
}
