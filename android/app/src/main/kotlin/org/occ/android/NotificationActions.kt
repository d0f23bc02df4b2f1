// Download / Decline / Acknowledge / Unlock, from a notification to the
// logic module's PushHandler (off the main thread), with the result
// replacing the prompt. Unlock (and any action on a locked profile) opens the
// app at its unlock screen.
package org.occ.android

import android.app.PendingIntent
import android.content.BroadcastReceiver
import android.content.Context
import android.content.Intent
import kotlinx.coroutines.launch
import org.occ.app.ActionOutcome
import org.occ.app.NotificationAction

class NotificationActions : BroadcastReceiver() {
    override fun onReceive(context: Context, intent: Intent) {
        val profile = intent.getStringExtra(PROFILE) ?: return
        val key = intent.getStringExtra(KEY) ?: return
        val action = intent.getStringExtra(ACTION)?.let { runCatching { NotificationAction.valueOf(it) }.getOrNull() } ?: return
        val app = context.applicationContext as OccApp
        val pending = goAsync()
        app.scope.launch {
            try {
                if (app.push.onAction(profile, key, action) == ActionOutcome.NeedsUnlock) {
                    context.startActivity(
                        Intent(context, MainActivity::class.java)
                            .addFlags(Intent.FLAG_ACTIVITY_NEW_TASK)
                            .putExtra("profile", profile),
                    )
                }
            } finally {
                pending.finish()
            }
        }
    }

    companion object {
        private const val PROFILE = "org.occ.profile"
        private const val KEY = "org.occ.key"
        private const val ACTION = "org.occ.action"

        fun intent(context: Context, profile: String, key: String, action: NotificationAction): PendingIntent =
            PendingIntent.getBroadcast(
                context,
                "$profile/$key/$action".hashCode(),
                Intent(context, NotificationActions::class.java)
                    .putExtra(PROFILE, profile).putExtra(KEY, key).putExtra(ACTION, action.name),
                PendingIntent.FLAG_IMMUTABLE or PendingIntent.FLAG_UPDATE_CURRENT,
            )
    }
}
