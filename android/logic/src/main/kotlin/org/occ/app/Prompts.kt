// The download prompt a push notice becomes: what the notification says and
// which actions it offers. The core verified the notice (relay signature,
// this device, not expired, not a replay) and applied the organisation's
// policy before this code sees it; a forged notice never gets here.
package org.occ.app

import org.occ.Decision
import org.occ.DownloadPrompt

/** What the notification shows for one verified notice. */
data class PromptView(
    val title: String,
    val body: String,
    /** Offer "Download" (and "Decline"). */
    val canDownload: Boolean,
    /** The user must unlock (confirm presence) before the download. */
    val needsUnlock: Boolean,
    /** Time-sensitive (urgent alert): break through focus modes. */
    val urgent: Boolean,
    val relayMessageId: String,
)

fun promptView(p: DownloadPrompt): PromptView {
    val from = p.senderUser?.let { if (p.senderVerified) it else "$it (unverified)" } ?: "an unknown sender"
    val where = p.threadTitle?.let { " in $it" } ?: ""
    val what = when {
        p.urgent -> "URGENT alert"
        p.messageClass == "file" -> "file (${p.size} bytes)"
        else -> "message"
    }
    val more = if (p.count > 1u) " (+${p.count - 1u} more)" else ""
    return when (val d = p.decision) {
        is Decision.Deny -> PromptView(
            "occ", "A $what from $from$where cannot be downloaded on this device: ${d.reason}",
            canDownload = false, needsUnlock = false, urgent = p.urgent, relayMessageId = p.relayMessageId,
        )
        is Decision.Confirm -> PromptView(
            "occ", "Do you want to download this OCC $what from $from$where?$more ${d.reason}",
            canDownload = true, needsUnlock = true, urgent = p.urgent, relayMessageId = p.relayMessageId,
        )
        Decision.Allow -> PromptView(
            "occ", "Do you want to download this OCC $what from $from$where?$more",
            canDownload = true, needsUnlock = false, urgent = p.urgent, relayMessageId = p.relayMessageId,
        )
    }
}
