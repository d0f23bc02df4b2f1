// Everything the screens need for the open profile, in one place: its
// models, its event routing (screens and notifications), enrolment with the
// push endpoint, and background sync. The Android and iOS shells create one
// when a profile is unlocked and close it when it is locked.
package org.occ.app

import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Job
import kotlinx.coroutines.launch
import kotlinx.coroutines.sync.Mutex
import kotlinx.coroutines.sync.withLock
import org.occ.Client
import org.occ.Enrolment
import org.occ.OccException
import org.occ.SyncHandle
import org.occ.defaultSyncOptions
import org.occ.enrolOptions
import org.occ.events
import org.occ.relaySettings
import org.occ.text

/** The open profile with its screen models, notifications and background sync. */
class ProfileSession(
    val name: String,
    val client: Client,
    scope: CoroutineScope,
    notifications: NotificationCenter? = null,
    /** Whether the organisation lets notifications preview message text. */
    private val previews: () -> Boolean = { false },
) : AutoCloseable {
    val threads = ThreadsModel(client)
    val settings = SettingsModel(client)
    private val conversations = mutableListOf<ConversationModel>()
    val events = EventRouter(client, threads) { synchronized(conversations) { conversations.toList() } }
    private val eventsJob: Job = events.start(scope)
    private val notificationJob: Job? = notifications?.let { center ->
        val router = NotificationRouter(name, center) { thread, message ->
            try {
                val m = client.message(message)
                val title = client.threads().firstOrNull { it.id == thread }?.title
                NotificationRouter.Described(title, if (previews()) m.text else null, m.deadlineMs)
            } catch (e: OccException) {
                null
            }
        }
        scope.launch { client.events().collect { router.handle(it) } }
    }
    private val syncLock = Mutex()
    private var sync: SyncHandle? = null

    /** Whether this profile has been enrolled with a relay. */
    suspend fun isEnrolled(): Boolean = client.enrolment() != null

    /**
     * Enrols with the relay at [url], recognised by [pin] (and a private
     * [caPem]), registering [pushEndpoint] (the push distributor's) for
     * notices.
     */
    suspend fun enrol(url: String, pin: String, user: String, caPem: String? = null, pushEndpoint: String? = null): Enrolment =
        client.enrol(enrolOptions(relaySettings(url, listOf(pin), caPem), user, pushEndpoint))

    /** The push distributor handed out a new endpoint: the relay is told. */
    suspend fun onNewPushEndpoint(endpoint: String?) {
        if (client.enrolment()?.pushEndpoint != endpoint) client.setPushEndpoint(endpoint)
    }

    /** Starts background sync (idempotent). */
    suspend fun startSync() = syncLock.withLock {
        if (sync?.isRunning() != true) sync = client.startSync(defaultSyncOptions())
    }

    /** A conversation model kept fresh by events until [release]d. */
    fun conversation(threadId: String): ConversationModel =
        ConversationModel(client, threadId).also { synchronized(conversations) { conversations.add(it) } }

    fun release(model: ConversationModel) {
        synchronized(conversations) { conversations.remove(model) }
    }

    override fun close() {
        eventsJob.cancel()
        notificationJob?.cancel()
        sync?.stop()
        sync = null
    }
}
