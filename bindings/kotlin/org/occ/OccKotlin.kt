// The idiomatic Kotlin layer over the generated `org.occ` bindings: events as
// a Flow, text and durations where apps think in them, small builders, and a
// clear error when the native library does not match the bindings. It adds
// no behaviour of its own; everything below it is the Rust core.
//
// Threads: every call that touches the profile, the disk or the network is a
// `suspend fun` whose work runs on the core's own threads, so calling it from
// `Dispatchers.Main` never blocks the main thread. Events are pulled by
// their collector (`events()`), or pushed to a listener on a core thread of
// that subscription's own (`subscribe`).
//
// Clients, profile managers and sync handles are AutoCloseable: `use {}`
// releases them, and releasing a Client closes its profile.
package org.occ

import kotlin.time.Duration
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.flow

/** The native library is not the one these bindings were generated from. */
class OccBindingMismatchException(message: String, cause: Throwable?) : IllegalStateException(message, cause)

/**
 * Loads the native library and checks that it has exactly the API these
 * bindings were generated for (UniFFI's checksums); returns the core's
 * version. Call it once at start-up: a stale `libocc_ffi` then fails here with
 * [OccBindingMismatchException] instead of corrupting memory later.
 */
fun ensureNativeLibrary(): String {
    try {
        // The generated code checks the checksums only here, not on every
        // call: this is the check.
        uniffiEnsureInitialized()
        return coreVersion()
    } catch (e: Throwable) {
        val chain = generateSequence(e) { it.cause }.mapNotNull { it.message }.joinToString(" / ")
        if ("checksum" in chain || "contract version" in chain) {
            throw OccBindingMismatchException(
                "the native library libocc_ffi does not match these Kotlin bindings " +
                    "(built from another version of occ): rebuild both with scripts/gen-bindings.sh ($chain)",
                e,
            )
        }
        throw e
    }
}

/**
 * The client's events as a Flow: each collection is its own subscription
 * (any number may run at once), ended when the collector stops or the
 * profile closes (after `ProfileClosed` / `ProfileWiped`). The collector
 * takes events from the core only as fast as it handles them; meanwhile the
 * core keeps a bounded queue for it, where ordinary events coalesce (it is
 * then told with `Coalesced`) and critical ones — lock, wipe, security
 * alerts, withdrawals, urgent messages — wait in order. No thread waits for
 * a slow collector: not the emitter, not a core thread.
 */
fun Client.events(): Flow<ClientEvent> = flow {
    val sub = subscribePull()
    try {
        while (true) emit(sub.next() ?: break)
    } finally {
        sub.cancel()
        sub.close()
    }
}

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
 * Options to enrol as [user] with [relay]; [pushEndpoint] is where the relay
 * posts push notices (the push distributor's endpoint); [orgKey] (hex) pins
 * the organisation key; [link] (from `linkDevice` on another device of
 * [user]) enrols a further device.
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
