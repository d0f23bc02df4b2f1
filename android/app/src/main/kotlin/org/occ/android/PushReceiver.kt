// A UnifiedPush distributor delivers the relay's signed push notice (message
// id, sender device, size, expiry — never content). The notice goes to the
// core: for the open profile it downloads that one message (the core
// decrypts and authenticates it; the relay's 410 means it already expired),
// and the app shows its own notification. Offline verification of the
// notice and the download prompt policy arrive with the push issue.
package org.occ.android

import android.content.BroadcastReceiver
import android.content.Context
import android.content.Intent
import kotlinx.coroutines.launch
import org.occ.OccException

class PushReceiver : BroadcastReceiver() {
    override fun onReceive(context: Context, intent: Intent) {
        val body = intent.getByteArrayExtra("bytes") ?: return
        val messageId = Regex("\"message_id\"\\s*:\\s*\"([0-9a-fA-F]{32})\"")
            .find(body.decodeToString())?.groupValues?.get(1) ?: return
        val app = context.applicationContext as OccApp
        val session = app.session.value ?: return // locked: the next sync fetches it
        val pending = goAsync()
        app.scope.launch {
            try {
                session.client.fetch(messageId)
            } catch (e: OccException.Expired) {
                // Expired before the user got to it: nothing to show.
            } catch (e: OccException) {
                android.util.Log.w("occ", "push download failed: $e")
            } finally {
                pending.finish()
            }
        }
    }
}
