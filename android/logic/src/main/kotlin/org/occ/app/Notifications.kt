// What the phone shows in its notification shade, and when it must go.
//
// The rules, in plain words:
// - A lock screen never shows content, a sender or a thread: every
//   notification's public text is content-free ("New occ message").
// - A locked profile's notification says only that something arrived and
//   offers "Unlock"; nothing of that profile is looked up or shown.
// - Message text appears in a notification only when the organisation's
//   policy allows previews, and never on the lock screen.
// - A notification goes when its message expires or is purged, when its
//   push notice lapses, and — all of a profile's at once — when the profile
//   is locked, switched away from or wiped. The core says so
//   (`WithdrawNotifications`); the platform's own timeout is set to the same
//   deadline in case the app is not running then.
package org.occ.app

import org.occ.ClientEvent
import org.occ.DownloadPrompt
import org.occ.LockedNotice

/** Content-free text for lock screens and locked profiles. */
object ContentFree {
    const val TITLE = "occ"
    const val MESSAGE = "New occ message"
    const val URGENT = "Urgent occ alert"
    const val LOCKED = "New occ message — unlock your profile to see it"
    const val LOCKED_URGENT = "Urgent occ alert — unlock your profile to see it"
}

/** The notification key of a push prompt for relay message [relayId]. */
fun noticeKey(relayId: String): String = "notice:$relayId"

/** The notification key of messages received in [threadId]. */
fun threadKey(threadId: String): String = "thread:$threadId"

/** A verified prompt of an open profile, as a notification. */
fun promptNotification(profile: String, prompt: DownloadPrompt): AppNotification {
    val view = promptView(prompt)
    val actions = buildList {
        if (view.canDownload) {
            add(NotificationAction.DOWNLOAD)
            add(NotificationAction.DECLINE)
            if (prompt.urgent) add(NotificationAction.ACKNOWLEDGE)
        }
    }
    return AppNotification(
        profile = profile,
        key = noticeKey(prompt.relayMessageId),
        channel = if (prompt.urgent) NotificationChannel.URGENT else NotificationChannel.PROMPTS,
        title = view.title,
        text = view.body,
        publicText = if (prompt.urgent) ContentFree.URGENT else ContentFree.MESSAGE,
        actions = actions,
        timeoutAtMs = prompt.expiresMs,
        breakThrough = prompt.urgent,
    )
}

/** A verified notice of a locked profile: nothing of the profile in it. */
fun lockedNotification(profile: String, notice: LockedNotice): AppNotification {
    val text = if (notice.urgent) ContentFree.LOCKED_URGENT else ContentFree.LOCKED
    return AppNotification(
        profile = profile,
        key = noticeKey(notice.relayMessageId),
        channel = if (notice.urgent) NotificationChannel.URGENT else NotificationChannel.PROMPTS,
        title = ContentFree.TITLE,
        text = text,
        publicText = text,
        actions = listOf(NotificationAction.UNLOCK),
        timeoutAtMs = notice.expiresMs,
        breakThrough = notice.urgent,
    )
}

/**
 * A stored message as a notification (after a download, or received while
 * the app runs): who and where; its text only with [preview].
 */
fun messageNotification(
    profile: String,
    key: String,
    sender: String,
    threadTitle: String?,
    text: String?,
    urgent: Boolean,
    deadlineMs: Long,
    count: Int = 1,
): AppNotification {
    val where = threadTitle?.takeIf { it != sender }?.let { " in $it" } ?: ""
    val what = when {
        urgent -> "Urgent alert"
        count > 1 -> "$count messages"
        else -> "Message"
    }
    val head = "$what from $sender$where"
    return AppNotification(
        profile = profile,
        key = key,
        channel = if (urgent) NotificationChannel.URGENT else NotificationChannel.MESSAGES,
        title = ContentFree.TITLE,
        text = if (text != null) "$head: $text" else head,
        publicText = if (urgent) ContentFree.URGENT else ContentFree.MESSAGE,
        actions = if (urgent) listOf(NotificationAction.ACKNOWLEDGE) else emptyList(),
        timeoutAtMs = deadlineMs,
        breakThrough = urgent,
    )
}

/**
 * The notifications shown, per profile, with the messages and push notices
 * each stands for, so that a withdrawal removes exactly what it must.
 */
class NotificationCenter(private val poster: NotificationPoster) {
    private class Shown(val relayId: String?, val messageIds: MutableSet<String>)

    private val shown = mutableMapOf<String, MutableMap<String, Shown>>()
    private val generations = mutableMapOf<String, Long>()

    /**
     * The profile's generation: [cancelAll] (a lock, a switch, a wipe) starts
     * a new one. Work that began before it (a notice being verified, a
     * message being downloaded when the user locked) must not post after it.
     */
    @Synchronized
    fun generation(profile: String): Long = generations[profile] ?: 0L

    /**
     * Posts [n] (replacing its key), standing for [relayId] and [messageIds] —
     * unless [generation] is given and the profile was locked since: then
     * nothing is posted and it returns false.
     */
    @Synchronized
    fun show(
        n: AppNotification,
        relayId: String? = null,
        messageIds: Set<String> = emptySet(),
        generation: Long? = null,
    ): Boolean {
        if (generation != null && generation != generation(n.profile)) return false
        val byKey = shown.getOrPut(n.profile) { mutableMapOf() }
        val previous = byKey[n.key]
        val ids = (previous?.messageIds ?: mutableSetOf()).apply { addAll(messageIds) }
        byKey[n.key] = Shown(relayId ?: previous?.relayId, ids)
        poster.post(n)
        return true
    }

    /** Removes one notification. */
    @Synchronized
    fun cancel(profile: String, key: String) {
        shown[profile]?.remove(key)
        poster.cancel(profile, key)
    }

    /** Removes every notification of [profile]. */
    @Synchronized
    fun cancelAll(profile: String) {
        generations[profile] = generation(profile) + 1
        val keys = shown.remove(profile)?.keys ?: return
        keys.forEach { poster.cancel(profile, it) }
    }

    /** Removes what a `WithdrawNotifications` event names. */
    @Synchronized
    fun withdraw(profile: String, event: ClientEvent.WithdrawNotifications) {
        if (event.all) {
            cancelAll(profile)
            return
        }
        val byKey = shown[profile] ?: return
        val relay = event.relayMessageIds.toSet()
        val messages = event.messageIds.toSet()
        val doomed = byKey.filter { (_, s) ->
            (s.relayId != null && s.relayId in relay) ||
                (s.messageIds.isNotEmpty() && s.messageIds.all { it in messages })
        }.keys
        doomed.forEach { cancel(profile, it) }
        // A thread notification that still stands for live messages keeps
        // only those.
        byKey.values.forEach { it.messageIds.removeAll(messages) }
    }

    /** The keys shown for [profile]. */
    @Synchronized
    fun keys(profile: String): Set<String> = shown[profile]?.keys?.toSet() ?: emptySet()

    /** The message a notification stands for, if it stands for one. */
    @Synchronized
    fun messageOf(profile: String, key: String): String? = shown[profile]?.get(key)?.messageIds?.firstOrNull()
}

/**
 * Routes one open profile's events to the notification shade: withdrawals,
 * the end of the profile (locked, wiped), and messages that arrived while
 * the app runs (content only with the policy's [previews]).
 */
class NotificationRouter(
    private val profile: String,
    private val center: NotificationCenter,
    private val describe: suspend (threadId: String, messageId: String) -> Described?,
) {
    /** What a received message looks like in a notification. */
    data class Described(val threadTitle: String?, val text: String?, val deadlineMs: Long)

    suspend fun handle(event: ClientEvent) {
        when (event) {
            is ClientEvent.WithdrawNotifications -> center.withdraw(profile, event)
            is ClientEvent.ProfileClosed, is ClientEvent.ProfileWiped -> center.cancelAll(profile)
            is ClientEvent.Locked -> if (event.locked) center.cancelAll(profile)
            is ClientEvent.MessagesReceived -> for ((thread, batch) in event.messages.groupBy { it.threadId }) {
                val generation = center.generation(profile)
                val newest = batch.last()
                val d = describe(thread, newest.messageId) ?: continue
                center.show(
                    messageNotification(
                        profile, threadKey(thread), newest.sender, d.threadTitle, d.text,
                        batch.any { it.urgent }, d.deadlineMs, batch.size,
                    ),
                    messageIds = batch.map { it.messageId }.toSet(),
                    generation = generation,
                )
            }
            else -> {}
        }
    }
}
