// The client's events, routed to what the screens need: refresh the lists,
// show security alerts, show whether the relay is reachable.
package org.occ.app

import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Job
import kotlinx.coroutines.flow.MutableSharedFlow
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.SharedFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asSharedFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.launch
import org.occ.Client
import org.occ.ClientEvent
import org.occ.events

/** Something the user must be told about. */
data class Alert(val kind: String, val detail: String)

/** Collects one client's events for as long as [start]'s job runs. */
class EventRouter(
    private val client: Client,
    private val threads: ThreadsModel,
    private val conversations: () -> List<ConversationModel>,
) {
    private val alertFlow = MutableSharedFlow<Alert>(extraBufferCapacity = 64)
    private val connectedFlow = MutableStateFlow<Boolean?>(null)

    /** Security alerts and undeliverable messages. */
    val alerts: SharedFlow<Alert> = alertFlow.asSharedFlow()

    /** Whether background sync reaches the relay (null: not known yet). */
    val connected: StateFlow<Boolean?> = connectedFlow.asStateFlow()

    fun start(scope: CoroutineScope): Job = scope.launch {
        client.events().collect { handle(it) }
    }

    private suspend fun refresh() {
        runCatching { threads.refresh() }
        conversations().forEach { runCatching { it.refresh() } }
    }

    suspend fun handle(event: ClientEvent) {
        when (event) {
            is ClientEvent.MessagesReceived, is ClientEvent.MessagesExpired, is ClientEvent.MessageSent,
            is ClientEvent.Coalesced -> refresh()
            is ClientEvent.DeliveryFailed -> alertFlow.emit(Alert("undelivered", event.reason))
            is ClientEvent.SecurityAlert -> alertFlow.emit(Alert(event.kind.name.lowercase(), event.detail))
            is ClientEvent.ConnectionChanged -> connectedFlow.value = event.connected
            is ClientEvent.ReceiptReceived, ClientEvent.PolicyChanged -> conversations().forEach { runCatching { it.refresh() } }
            is ClientEvent.AlertEscalated -> alertFlow.emit(
                Alert("escalation", "not acknowledged by ${event.unacknowledged.joinToString(", ")}"),
            )
            is ClientEvent.VolumeAlert -> alertFlow.emit(
                Alert("volume_alert", "${event.count} downloads within ${event.minutes} minutes"),
            )
            is ClientEvent.Locked -> alertFlow.emit(
                Alert("locked", if (event.locked) "locked by your organisation" else "unlocked"),
            )
            ClientEvent.ProfileWiped -> alertFlow.emit(Alert("wiped", "this profile was wiped by your organisation"))
            ClientEvent.ProfileClosed, is ClientEvent.WithdrawNotifications -> {}
        }
    }
}
