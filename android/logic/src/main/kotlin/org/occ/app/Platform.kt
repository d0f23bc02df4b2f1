// The small interfaces the phone shells implement: where notifications are
// posted, where push endpoints come from. Everything that decides what to
// post, when to withdraw it and what to show on a lock screen is in this
// module and tested on the JVM; the Android shell only adapts these to
// NotificationManager and UnifiedPush / FCM (the iOS logic mirrors them for
// UNUserNotificationCenter and APNs).
package org.occ.app

/** A notification channel (an Android channel, an iOS category's sound and level). */
enum class NotificationChannel(val id: String, val title: String) {
    /** Download prompts: "Do you want to download this OCC message?". */
    PROMPTS("occ.prompts", "Download prompts"),

    /** Urgent alerts: high importance; may bypass Do Not Disturb where policy says. */
    URGENT("occ.urgent", "Urgent alerts"),

    /** Messages that arrived while the app was open. */
    MESSAGES("occ.messages", "Messages"),
}

/** What the user can do from a notification. */
enum class NotificationAction(val label: String) {
    DOWNLOAD("Download"),
    DECLINE("Decline"),
    ACKNOWLEDGE("Acknowledge"),
    UNLOCK("Unlock"),
}

/**
 * One notification as the platform shows it. [publicText] is what a lock
 * screen shows (never content, sender or thread); [text] is shown only on
 * an unlocked device. [timeoutAtMs] is when the platform must remove it by
 * itself (the message's deadline or the notice's expiry), in case the app is
 * not running then.
 */
data class AppNotification(
    val profile: String,
    val key: String,
    val channel: NotificationChannel,
    val title: String,
    val text: String,
    val publicText: String,
    val actions: List<NotificationAction>,
    val timeoutAtMs: Long?,
    /** Break through focus modes / Do Not Disturb (urgent alerts the policy allows). */
    val breakThrough: Boolean = false,
)

/** Posts and removes notifications (NotificationManager, UNUserNotificationCenter). */
interface NotificationPoster {
    /** Posts [n], replacing any notification with the same profile and key. */
    fun post(n: AppNotification)

    /** Removes the notification [key] of [profile], if shown. */
    fun cancel(profile: String, key: String)
}

/** A push distributor (UnifiedPush, FCM) registered per profile. */
interface PushDistributor {
    /** Asks for an endpoint for [profile]; it arrives through [PushEndpoints.onNewEndpoint]. */
    fun register(profile: String)

    /** Stops push for [profile]. */
    fun unregister(profile: String)
}

/** Milliseconds since the epoch on the device clock (tests move it). */
fun interface WallClock {
    fun nowMs(): Long
}

/** The system clock. */
val systemClock = WallClock { System.currentTimeMillis() }
