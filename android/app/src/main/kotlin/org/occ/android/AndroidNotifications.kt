// The logic module's NotificationPoster on Android's NotificationManager: the
// three channels (urgent alerts at high importance, allowed to bypass Do Not
// Disturb where the user grants it), the lock-screen public version that is
// always content-free, the platform timeout at the message's deadline, and
// the actions as broadcasts to NotificationActions. Nothing here decides what
// to show: that is org.occ.app.
package org.occ.android

import android.app.NotificationChannel as AndroidChannel
import android.app.NotificationManager
import android.app.PendingIntent
import android.content.Context
import android.content.Intent
import androidx.core.app.NotificationCompat
import androidx.core.app.NotificationManagerCompat
import org.occ.app.AppNotification
import org.occ.app.NotificationChannel
import org.occ.app.NotificationPoster

class AndroidNotifications(private val context: Context) : NotificationPoster {
    private val manager = NotificationManagerCompat.from(context)

    /** Creates the channels (idempotent; call at start-up). */
    fun createChannels() {
        val system = context.getSystemService(NotificationManager::class.java)
        for (c in NotificationChannel.values()) {
            val importance = when (c) {
                NotificationChannel.URGENT -> NotificationManager.IMPORTANCE_HIGH
                NotificationChannel.PROMPTS -> NotificationManager.IMPORTANCE_DEFAULT
                NotificationChannel.MESSAGES -> NotificationManager.IMPORTANCE_DEFAULT
            }
            system.createNotificationChannel(AndroidChannel(c.id, c.title, importance).apply {
                lockscreenVisibility = android.app.Notification.VISIBILITY_PRIVATE
                if (c == NotificationChannel.URGENT) setBypassDnd(true) // honoured if the user allows it
            })
        }
    }

    private fun id(profile: String, key: String) = "$profile/$key".hashCode()

    override fun post(n: AppNotification) {
        val public = NotificationCompat.Builder(context, n.channel.id)
            .setSmallIcon(android.R.drawable.stat_notify_chat)
            .setContentTitle(n.title)
            .setContentText(n.publicText)
            .build()
        val b = NotificationCompat.Builder(context, n.channel.id)
            .setSmallIcon(android.R.drawable.stat_notify_chat)
            .setContentTitle(n.title)
            .setContentText(n.text)
            .setStyle(NotificationCompat.BigTextStyle().bigText(n.text))
            .setVisibility(NotificationCompat.VISIBILITY_PRIVATE)
            .setPublicVersion(public)
            .setOnlyAlertOnce(true)
            .setCategory(if (n.breakThrough) NotificationCompat.CATEGORY_ALARM else NotificationCompat.CATEGORY_MESSAGE)
            .setPriority(if (n.breakThrough) NotificationCompat.PRIORITY_MAX else NotificationCompat.PRIORITY_DEFAULT)
            .setContentIntent(openApp(n))
        n.timeoutAtMs?.let { b.setTimeoutAfter((it - System.currentTimeMillis()).coerceAtLeast(1)) }
        for (a in n.actions) b.addAction(0, a.label, NotificationActions.intent(context, n.profile, n.key, a))
        try {
            manager.notify(n.profile, id(n.profile, n.key), b.build())
        } catch (e: SecurityException) {
            android.util.Log.w("occ", "notifications are not allowed: $e")
        }
    }

    override fun cancel(profile: String, key: String) = manager.cancel(profile, id(profile, key))

    private fun openApp(n: AppNotification): PendingIntent = PendingIntent.getActivity(
        context, id(n.profile, n.key),
        Intent(context, MainActivity::class.java).putExtra("profile", n.profile),
        PendingIntent.FLAG_IMMUTABLE or PendingIntent.FLAG_UPDATE_CURRENT,
    )
}
