// UnifiedPush: the distributor app on the phone (ntfy, NextPush, … or the
// embedded FCM distributor of the `fcm` build flavour) hands the relay's
// signed notice over as `bytesMessage`, exactly as the relay POSTed it; the
// connector library calls onMessage with those bytes. One registration per
// profile (the instance is the profile's name), so the notice is routed
// without opening anything. A new endpoint goes to the relay at once if that
// profile is open, else at its next unlock.
package org.occ.android

import android.content.Context
import kotlinx.coroutines.launch
import org.unifiedpush.android.connector.MessagingReceiver

class PushService : MessagingReceiver() {
    override fun onMessage(context: Context, message: ByteArray, instance: String) {
        val app = context.applicationContext as OccApp
        val pending = goAsync()
        app.scope.launch {
            try {
                app.push.onMessage(message, instance)
            } finally {
                pending.finish()
            }
        }
    }

    override fun onNewEndpoint(context: Context, endpoint: String, instance: String) {
        val app = context.applicationContext as OccApp
        app.endpoints.edit().putString(instance, endpoint).apply()
        app.scope.launch { app.sessionFor(instance)?.onNewPushEndpoint(endpoint) }
    }

    override fun onUnregistered(context: Context, instance: String) {
        val app = context.applicationContext as OccApp
        app.endpoints.edit().remove(instance).apply()
        app.scope.launch { app.sessionFor(instance)?.onNewPushEndpoint(null) }
    }

    override fun onRegistrationFailed(context: Context, instance: String) {
        android.util.Log.w("occ", "push registration failed for a profile; background sync still delivers")
    }
}
