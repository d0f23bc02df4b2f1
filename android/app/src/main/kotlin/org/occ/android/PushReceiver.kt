// A UnifiedPush distributor delivers the relay's signed push notice (message
// id, sender device, size, expiry, class — never content). The core verifies
// it (the relay's service key, this device, not expired, not a replay), looks
// the sender and thread up and applies the organisation's policy; the app
// logic turns the result into the prompt ("Do you want to download this OCC
// message?"). A forged notice raises OccException and shows nothing (the
// core audits it). With the profile open and the policy allowing it without
// confirmation, the message is downloaded at once; otherwise the user is
// asked (and unlocks) first.
package org.occ.android

import android.content.BroadcastReceiver
import android.content.Context
import android.content.Intent
import kotlinx.coroutines.launch
import org.occ.OccException
import org.occ.app.promptView

class PushReceiver : BroadcastReceiver() {
    override fun onReceive(context: Context, intent: Intent) {
        val body = intent.getByteArrayExtra("bytes") ?: return
        val app = context.applicationContext as OccApp
        val session = app.session.value ?: return // locked: the next sync fetches it
        val pending = goAsync()
        app.scope.launch {
            try {
                val view = promptView(session.client.verifyNotice(body))
                if (view.canDownload && !view.needsUnlock) {
                    session.client.download(view.relayMessageId)
                } else {
                    app.showPrompt(view)
                }
            } catch (e: OccException.Expired) {
                // Expired before the user got to it: nothing to show.
            } catch (e: OccException) {
                android.util.Log.w("occ", "push notice refused: $e")
            } finally {
                pending.finish()
            }
        }
    }
}
