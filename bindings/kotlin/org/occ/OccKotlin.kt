// The idiomatic Kotlin layer over the generated `org.occ` bindings: events as
// a Flow, text and durations where apps think in them, small builders. It adds
// no behaviour of its own; everything below it is the Rust core.
//
// Clients, profile managers and sync handles are AutoCloseable: `use {}`
// releases them, and releasing a Client closes its profile.
package org.occ

import kotlin.time.Duration
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.channels.trySendBlocking
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.buffer
import kotlinx.coroutines.flow.callbackFlow

/**
 * The client's events as a Flow. The core has one listener slot per client:
 * collecting installs this Flow's listener (replacing any other) and removes
 * it when the collector stops. For several collectors, `shareIn` it.
 */
fun Client.events(): Flow<ClientEvent> = callbackFlow {
    setListener(object : EventListener {
        override fun onEvent(event: ClientEvent) {
            // The core calls listeners on its own threads: never block there
            // for long, but do not drop events either.
            trySendBlocking(event)
        }
    })
    awaitClose { runCatching { setListener(null) } }
}.buffer(1024)

/** Sends UTF-8 text with a time to live (and optionally a read timer). */
suspend fun Client.sendText(
    to: Recipient,
    text: String,
    ttl: Duration,
    readTimer: Duration? = null,
): String = send(
    to,
    text.encodeToByteArray(),
    ttl.inWholeSeconds.toULong(),
    readTimer?.inWholeSeconds?.toULong(),
)

/** A direct conversation with [name]. */
fun directTo(name: String): Recipient = Recipient.User(name)

/** A thread, adding [members] (the sender is always one). */
fun thread(id: String, vararg members: String): Recipient = Recipient.Thread(id, members.toList())

/** The relay, recognised by its SPKI pins (`sha256/…`) and, if private, its CA. */
fun relaySettings(
    url: String,
    pins: List<String>,
    caPem: String? = null,
    pinsExpireMs: Long? = null,
    pinsLapseToChain: Boolean = false,
): RelaySettings = RelaySettings(url, pins, pinsExpireMs, pinsLapseToChain, caPem)

/**
 * Options to enrol as [user] with [relay]; [orgKey] (hex) pins the organisation key;
 * [link] (from `linkDevice` on another device of [user]) enrols a further device.
 */
fun enrolOptions(
    relay: RelaySettings,
    user: String,
    pushEndpoint: String? = null,
    orgKey: String? = null,
    link: ByteArray? = null,
): EnrolOptions = EnrolOptions(relay, user, pushEndpoint, orgKey, link)

/** The body as text (occ carries bytes; apps that send text read it so). */
val StoredMessage.text: String get() = body.decodeToString()

/** Milliseconds until this message disappears, at trusted time [nowMs]. */
fun StoredMessage.remainingMs(nowMs: Long): Long = (deadlineMs - nowMs).coerceAtLeast(0)

/** The new messages of a receive or sync report. */
val ReceiveReport.received: List<ReceivedMessage>
    get() = items.mapNotNull { (it.outcome as? ItemOutcome.Stored)?.message }

/** How many items of a report were refused. */
val ReceiveReport.rejected: Int
    get() = items.count { it.outcome is ItemOutcome.Rejected }
