// Everything the screens need for the open profile, in one place: its
// models, its event routing, enrolment and background sync. The Android and
// iOS shells create one when a profile is opened and close it on lock.
package org.occ.app

import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Job
import org.occ.Client
import org.occ.Enrolment
import org.occ.SyncHandle
import org.occ.defaultSyncOptions
import org.occ.enrolOptions
import org.occ.relaySettings

/** The open profile with its screen models and background sync. */
class ProfileSession(val name: String, val client: Client, scope: CoroutineScope) : AutoCloseable {
    val threads = ThreadsModel(client)
    val settings = SettingsModel(client)
    private val conversations = mutableListOf<ConversationModel>()
    val events = EventRouter(client, threads) { synchronized(conversations) { conversations.toList() } }
    private val eventsJob: Job = events.start(scope)
    private var sync: SyncHandle? = null

    /** Whether this profile has been enrolled with a relay. */
    suspend fun isEnrolled(): Boolean = client.enrolment() != null

    /** Enrols with the relay at [url], recognised by [pin] (and a private [caPem]). */
    suspend fun enrol(url: String, pin: String, user: String, caPem: String? = null): Enrolment =
        client.enrol(enrolOptions(relaySettings(url, listOf(pin), caPem), user))

    /** Starts background sync (idempotent). */
    @Synchronized
    fun startSync() {
        if (sync?.isRunning() != true) sync = client.startSync(defaultSyncOptions())
    }

    /** A conversation model kept fresh by events until [release]d. */
    fun conversation(threadId: String): ConversationModel =
        ConversationModel(client, threadId).also { synchronized(conversations) { conversations.add(it) } }

    fun release(model: ConversationModel) {
        synchronized(conversations) { conversations.remove(model) }
    }

    @Synchronized
    override fun close() {
        eventsJob.cancel()
        sync?.stop()
        sync = null
    }
}
