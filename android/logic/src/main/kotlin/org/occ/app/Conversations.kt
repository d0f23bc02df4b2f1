// What the screens show, computed off the UI thread from the client: the
// thread list, a conversation with a live TTL countdown per message, and the
// keep-period setting. Plain Kotlin with StateFlows: the Android shell only
// renders them.
package org.occ.app

import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import org.occ.Client
import org.occ.OccException
import org.occ.Recipient
import org.occ.StoredMessage
import org.occ.ThreadKind
import org.occ.ThreadSummary
import org.occ.sendText
import org.occ.text

/** "expires in …" for a remaining time, coarse when far, exact when near. */
fun countdownLabel(remainingMs: Long): String {
    if (remainingMs <= 0) return "expired"
    val d = remainingMs.milliseconds
    return d.toComponents { days, hours, minutes, seconds, _ ->
        when {
            days > 0 -> "expires in ${days} d ${hours} h"
            hours > 0 -> "expires in ${hours} h ${minutes} min"
            minutes > 0 -> "expires in ${minutes} min %02d s".format(seconds)
            else -> "expires in ${seconds} s"
        }
    }
}

/** Where a reply in this thread goes: the thread itself, or the other user. */
fun ThreadSummary.replyTo(): Recipient =
    if (kind == ThreadKind.GROUP) Recipient.Thread(id, emptyList()) else Recipient.User(title)

/** The thread list. */
class ThreadsModel(private val client: Client) {
    private val state = MutableStateFlow<List<ThreadSummary>>(emptyList())
    val threads: StateFlow<List<ThreadSummary>> = state.asStateFlow()

    suspend fun refresh() {
        state.value = client.threads()
    }
}

/** One message as the conversation screen shows it. */
data class MessageItem(
    val id: String,
    val sender: String,
    val outgoing: Boolean,
    val text: String,
    val deadlineMs: Long,
    val countdown: String,
)

/**
 * A conversation: its messages, newest first, each with a countdown to its
 * deadline (TTL, keep period or read timer). [tick] moves the countdowns on
 * the screen's clock and drops what expired, without crossing into the core;
 * [refresh] reloads from the core (which never returns expired content).
 */
class ConversationModel(private val client: Client, val threadId: String) {
    private var loaded: List<StoredMessage> = emptyList()
    private var offsetMs = 0L // trusted time minus the screen's clock
    private val state = MutableStateFlow<List<MessageItem>>(emptyList())
    val items: StateFlow<List<MessageItem>> = state.asStateFlow()

    suspend fun refresh(screenNowMs: Long = System.currentTimeMillis()) {
        loaded = try {
            client.messages(threadId, 50u)
        } catch (e: OccException.NotFound) {
            emptyList()
        }
        offsetMs = client.nowMs() - screenNowMs
        tick(screenNowMs)
    }

    /** Recomputes the countdowns at [screenNowMs]; expired messages disappear. */
    fun tick(screenNowMs: Long = System.currentTimeMillis()) {
        val now = screenNowMs + offsetMs
        state.value = loaded.filter { it.deadlineMs > now }.map {
            MessageItem(it.id, it.sender, it.outgoing, it.text, it.deadlineMs, countdownLabel(it.deadlineMs - now))
        }
    }

    suspend fun send(to: Recipient, text: String, ttl: Duration) {
        client.sendText(to, text, ttl)
        refresh()
    }

    /** Opens a message (starts its read timer, if it has one). */
    suspend fun open(id: String) {
        client.markRead(id)
        refresh()
    }
}

/** The keep-period setting. */
class SettingsModel(private val client: Client) {
    private val state = MutableStateFlow<ULong?>(null)
    val keepPeriodSecs: StateFlow<ULong?> = state.asStateFlow()

    suspend fun refresh() {
        state.value = client.settings().keepPeriodSecs
    }

    /** Sets it; the core refuses values above the organisation's maximum. */
    suspend fun setKeepPeriod(secs: ULong) {
        client.setKeepPeriodSecs(secs)
        refresh()
    }
}
