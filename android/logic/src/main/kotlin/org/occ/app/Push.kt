// The push path, from the bytes a push distributor delivers to a
// notification and back from the user's answer:
//
// 1. The distributor (UnifiedPush's `bytesMessage`, an FCM data message, an
//    APNs payload) delivers the relay's signed notice exactly as the relay
//    POSTed it. The handler finds the profile it is for (the distributor's
//    instance, or the device the notice names).
// 2. Open profile: the core verifies it (`verifyNotice`: the relay's
//    signature, this device, not expired, not a replay; the sender and
//    thread looked up; the organisation's policy applied) and the prompt is
//    posted — "Do you want to download this OCC message?" with Download and
//    Decline (and Acknowledge for an urgent alert) on the prompt channel, or
//    the urgent channel for an urgent alert.
// 3. Locked profile: the core verifies it without the key
//    (`verifyNoticeLocked`) and a content-free notification with "Unlock"
//    is posted: no sender, no thread, nothing of the profile.
// 4. A forged, replayed or expired notice posts nothing; the core records
//    it (audited, or for a locked profile at its next unlock).
// 5. The answer: Download fetches, verifies and stores the one message and
//    replaces the prompt with the message's notification; Decline tells the
//    core (the message is never stored) and removes the prompt; Acknowledge
//    downloads if needed and acknowledges the urgent alert.
package org.occ.app

import org.occ.OccException
import org.occ.ReceiveReport
import org.occ.received
import org.occ.text
import org.occ.verifyNoticeLocked

/** What became of one push. */
sealed interface PushOutcome {
    /** An open profile's prompt was posted under [key]. */
    data class Prompted(val profile: String, val key: String) : PushOutcome

    /** A locked profile's content-free notification was posted under [key]. */
    data class PromptedLocked(val profile: String, val key: String) : PushOutcome

    /** Refused (forged, replayed, expired, not for a profile here): nothing posted. */
    data class Refused(val reason: String) : PushOutcome
}

/** What became of the user's answer to a notification. */
sealed interface ActionOutcome {
    data class Downloaded(val messageId: String?) : ActionOutcome
    data object Declined : ActionOutcome
    data class Acknowledged(val messageId: String) : ActionOutcome

    /** The profile is locked: unlock it first (the shell shows its unlock screen). */
    data object NeedsUnlock : ActionOutcome

    /** The message can no longer be had (expired, denied). */
    data class Gone(val reason: String) : ActionOutcome
}

/** Turns pushes into notifications and notification actions into core calls. */
class PushHandler(
    private val profiles: DeviceProfiles,
    private val center: NotificationCenter,
) {
    private val previews = mutableMapOf<String, Boolean>()

    /** One push, as the distributor delivered it; [instance] is the profile it was registered for, if known. */
    suspend fun onMessage(body: ByteArray, instance: String? = null): PushOutcome {
        val profile = try {
            instance ?: profiles.manager.profileForNotice(body)
        } catch (e: OccException) {
            return PushOutcome.Refused(e.message ?: "malformed")
        } ?: return PushOutcome.Refused("no profile on this device has that device")
        // Captured first: if the user locks while the notice is verified,
        // the prompt (which names the sender) is not posted after the lock.
        val generation = center.generation(profile)
        val client = profiles.openClient(profile)
        return try {
            if (client != null) {
                val prompt = client.verifyNotice(body)
                val n = promptNotification(profile, prompt)
                if (!center.show(n, relayId = prompt.relayMessageId, generation = generation)) {
                    return PushOutcome.Refused("the profile was locked meanwhile")
                }
                synchronized(previews) { previews[prompt.relayMessageId] = prompt.previews }
                PushOutcome.Prompted(profile, n.key)
            } else {
                val notice = verifyNoticeLocked(profiles.dir(profile), body)
                val n = lockedNotification(profile, notice)
                center.show(n, relayId = notice.relayMessageId)
                PushOutcome.PromptedLocked(profile, n.key)
            }
        } catch (e: OccException) {
            PushOutcome.Refused(e.message ?: e.toString())
        }
    }

    /** The user's answer [action] to the notification [key] of [profile]. */
    suspend fun onAction(profile: String, key: String, action: NotificationAction): ActionOutcome {
        val generation = center.generation(profile)
        val client = profiles.openClient(profile) ?: return ActionOutcome.NeedsUnlock
        val relayId = key.removePrefix("notice:").takeIf { key.startsWith("notice:") }
        return try {
            when (action) {
                NotificationAction.UNLOCK -> ActionOutcome.NeedsUnlock
                NotificationAction.DECLINE -> {
                    if (relayId != null) {
                        client.decline(relayId)
                        synchronized(previews) { previews.remove(relayId) }
                    }
                    center.cancel(profile, key)
                    ActionOutcome.Declined
                }
                NotificationAction.DOWNLOAD -> {
                    val id = relayId ?: return ActionOutcome.Downloaded(center.messageOf(profile, key))
                    ActionOutcome.Downloaded(download(profile, key, id, client.download(id), client, generation))
                }
                NotificationAction.ACKNOWLEDGE -> {
                    val messageId = center.messageOf(profile, key)
                        ?: relayId?.let { download(profile, key, it, client.download(it), client, generation) }
                        ?: return ActionOutcome.Gone("the alert is not on this device")
                    client.acknowledge(messageId, null)
                    center.show(
                        generation = generation,
                        n =
                        AppNotification(
                            profile, key, NotificationChannel.MESSAGES, ContentFree.TITLE,
                            "Acknowledged", ContentFree.MESSAGE, emptyList(),
                            client.message(messageId).deadlineMs,
                        ),
                        messageIds = setOf(messageId),
                    )
                    ActionOutcome.Acknowledged(messageId)
                }
            }
        } catch (e: OccException.Expired) {
            center.cancel(profile, key)
            ActionOutcome.Gone("expired")
        } catch (e: OccException.PolicyDenied) {
            center.cancel(profile, key)
            ActionOutcome.Gone(e.reason)
        }
    }

    /** Replaces the prompt with the downloaded message's notification; its id. */
    private suspend fun download(
        profile: String,
        key: String,
        relayId: String,
        report: ReceiveReport,
        client: org.occ.Client,
        generation: Long,
    ): String? {
        val got = report.received.firstOrNull()
        if (got == null) {
            center.cancel(profile, key)
            return null
        }
        val stored = client.message(got.messageId)
        val title = client.threads().firstOrNull { it.id == got.threadId }?.title
        val preview = synchronized(previews) { previews.remove(relayId) } == true
        center.show(
            messageNotification(
                profile, key, got.sender, title, if (preview) stored.text else null,
                got.urgent, stored.deadlineMs,
            ),
            relayId = relayId,
            messageIds = setOf(got.messageId),
            generation = generation,
        )
        return got.messageId
    }
}
