// The Kotlin bindings against a real relay: enrolment with the pin, sending
// and receiving, events through the listener and the Flow, TTL and keep
// period, typed exceptions, cancellation, concurrency, closed objects,
// profiles, logging and background sync.
package org.occ.tests

import java.util.concurrent.CopyOnWriteArrayList
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.filterIsInstance
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.launch
import kotlinx.coroutines.asCoroutineDispatcher
import org.occ.Client
import org.occ.ClientEvent
import org.occ.EventListener
import org.occ.LogLevel
import org.occ.Logger
import org.occ.OccException
import org.occ.ProfileManager
import org.occ.SecurityEventKind
import org.occ.Trust
import org.occ.verifyNotice
import org.occ.verifyExport
import org.occ.DlpAction
import org.occ.DlpRules
import org.occ.ExportEncryption
import org.occ.ExportOptions
import org.occ.ExportScope
import org.occ.OutgoingFile
import org.occ.ProgressListener
import org.occ.defaultSyncOptions
import org.occ.directTo
import org.occ.enrolOptions
import org.occ.events
import org.occ.received
import org.occ.rejected
import org.occ.sendText
import org.occ.setLogger
import org.occ.text
import org.occ.thread
import org.occ.ensureNativeLibrary
import org.occ.coreVersion

fun main() = runTests(
    "bindings",
    listOf(
        "two profiles enrol with the pin and exchange direct and thread messages" to ::exchange,
        "events arrive through the listener and through the Flow" to ::events,
        "TTL expiry removes a message" to ::ttlExpiry,
        "the keep period applies" to ::keepPeriod,
        "a wrong pin is OccException.PinMismatch carrying the presented pins" to ::wrongPin,
        "a wrong database key is OccException.WrongKey" to ::wrongKey,
        "cancelling a coroutine blocked in a long-poll returns promptly" to ::cancelLongPoll,
        "many coroutines call one client at once" to ::concurrentCalls,
        "closed objects raise Closed" to ::closedObjects,
        "profiles: create, list, open once, wipe closes" to ::profiles,
        "the core's log reaches the app's logger, without content" to ::logging,
        "background sync delivers with no calls from the app" to ::backgroundSync,
        "safety numbers match on both sides; verifying marks every device" to ::safetyNumbers,
        "a linked second device receives too and shows what the first sent" to ::linkedDevices,
        "an urgent alert comes back acknowledged; the audit trail verifies" to ::urgentAlert,
        "a forged push notice gets no prompt and is audited" to ::forgedNotice,
        "a file goes through the relay with progress; quota is a typed error" to ::attachments,
        "an encrypted export verifies; a changed byte or a card number is refused" to ::exports,
        "a single-threaded main dispatcher is never blocked by the core" to ::mainThread,
        "a subscriber that never reads blocks nobody and loses nothing critical" to ::slowSubscriber,
        "the native library matches these bindings" to ::nativeLibrary,
    ),
    timeout = 180.seconds,
)

suspend fun exchange(relay: Relay) {
    val (alice, a) = enrolled(relay, "alice")
    val (bob, b) = enrolled(relay, "bob")
    alice.use {
        bob.use {
            val id = alice.sendText(directTo(b), "hello from kotlin", 600.seconds)
            expectEqual(1u, alice.flush().sent, "sent")
            val r = bob.receive(0u)
            expectEqual(listOf(id), r.received.map { it.messageId }, "received ids")
            expectEqual(0, r.rejected, "rejected")
            val dm = bob.threads().single()
            expectEqual(a, dm.title, "direct thread title")
            expectEqual(listOf("hello from kotlin"), bob.messages(dm.id, 50u).map { it.text }, "texts")
            expectEqual(a, bob.messages(dm.id, 50u).single().sender, "sender")

            val ops = bob.newThreadId()
            bob.sendText(thread(ops, a), "thread hello", 600.seconds)
            val s = bob.sync()
            expectEqual(1u, s.sent, "thread sent")
            check(s.sendError == null) { "send error ${s.sendError}" }
            alice.sync()
            expectEqual(listOf("thread hello"), alice.messages(ops, 50u).map { it.text }, "thread texts")
            expectEqual(listOf(a, b).sorted(), alice.threadMembers(ops), "members")
        }
    }
}

suspend fun events(relay: Relay) {
    val (alice, _) = enrolled(relay, "alice")
    val (bob, b) = enrolled(relay, "bob")
    alice.use {
        bob.use {
            // Through a listener object.
            val seen = CopyOnWriteArrayList<ClientEvent>()
            bob.setListener(object : EventListener {
                override fun onEvent(event: ClientEvent) {
                    seen.add(event)
                }
            })
            val first = alice.sendText(directTo(b), "one", 600.seconds)
            alice.flush()
            bob.receive(0u)
            // Events reach listeners on a core thread of their own.
            eventually { seen.any { it is ClientEvent.MessagesReceived && it.messages.any { m -> m.messageId == first } } }
            bob.setListener(null)

            // Through the Flow.
            coroutineScope {
                val next = async {
                    bob.events().filterIsInstance<ClientEvent.MessagesReceived>().first()
                }
                delay(200) // the collector installs its listener
                val second = alice.sendText(directTo(b), "two", 600.seconds)
                alice.flush()
                bob.receive(0u)
                expectEqual(listOf(second), next.await().messages.map { it.messageId }, "flow event")
            }
        }
    }
}

suspend fun ttlExpiry(relay: Relay) {
    val (alice, _) = enrolled(relay, "alice")
    val (bob, b) = enrolled(relay, "bob")
    alice.use {
        bob.use {
            val id = alice.sendText(directTo(b), "brief", 1.seconds)
            alice.flush()
            bob.receive(0u)
            val dm = bob.threads().single().id
            expectEqual("brief", bob.message(id).text, "before expiry")
            delay(1_500)
            expectThrows<OccException.Expired> { bob.message(id) }
            check(bob.messages(dm, 50u).isEmpty()) { "an expired message was listed" }
            expectEqual(listOf(id), bob.purge().expiredIds, "purged")
            expectThrows<OccException.NotFound> { bob.message(id) }
        }
    }
}

suspend fun keepPeriod(relay: Relay) {
    val (alice, _) = enrolled(relay, "alice")
    val (bob, b) = enrolled(relay, "bob")
    alice.use {
        bob.use {
            bob.setKeepPeriodSecs(1u)
            expectEqual(1uL, bob.settings().keepPeriodSecs, "keep period")
            alice.sendText(directTo(b), "long ttl, short keep", 3_600.seconds)
            alice.flush()
            bob.receive(0u)
            val dm = bob.threads().single().id
            expectEqual(1, bob.messages(dm, 50u).size, "kept at first")
            delay(1_500)
            check(bob.messages(dm, 50u).isEmpty()) { "kept past the keep period" }
            expectEqual(1, bob.purge().keptTooLongIds.size, "purged as kept too long")
            expectEqual(1, alice.messages(dm, 50u).size, "the sender's 30-day default still keeps it")
        }
    }
}

suspend fun wrongPin(relay: Relay) {
    val user = uniqueUser("pinless")
    Client.create(tempDir(user).path, newKey()).use { client ->
        val wrong = "sha256/" + "A".repeat(43) + "="
        val e = expectThrows<OccException.PinMismatch> {
            client.enrol(enrolOptions(relay.settings(listOf(wrong)), user))
        }
        expectEqual("localhost", e.host, "host")
        check(relay.pin in e.presented) { "presented ${e.presented} lacks ${relay.pin}" }
        check(client.securityEvents().any { it.kind == SecurityEventKind.PIN_FAILURE }) { "no security event" }
    }
}

suspend fun wrongKey(relay: Relay) {
    val dir = tempDir("keyed")
    Client.create(dir.path, newKey()).use { }
    expectThrows<OccException.WrongKey> { Client.open(dir.path, newKey()) }
    expectThrows<OccException.InvalidInput> { Client.open(dir.path, ByteArray(31)) }
}

suspend fun cancelLongPoll(relay: Relay) {
    val (alice, _) = enrolled(relay, "alice")
    val (bob, b) = enrolled(relay, "bob")
    alice.use {
        bob.use {
            coroutineScope {
                val poll = launch(Dispatchers.IO) { bob.receive(25_000u) }
                delay(500) // the long-poll is waiting on the relay
                val started = System.nanoTime()
                poll.cancelAndJoin()
                val ms = (System.nanoTime() - started) / 1_000_000
                check(ms < 1_000) { "cancelling took $ms ms" }
            }
            // Nothing was left half-done: the client answers and receives.
            check(bob.threads().isEmpty()) { "threads after cancel" }
            val id = alice.sendText(directTo(b), "after the cancel", 600.seconds)
            alice.flush()
            expectEqual(listOf(id), bob.receive(0u).received.map { it.messageId }, "received after cancel")
        }
    }
}

suspend fun concurrentCalls(relay: Relay) {
    val (alice, _) = enrolled(relay, "alice")
    val (bob, b) = enrolled(relay, "bob")
    alice.use {
        bob.use {
            val ids = coroutineScope {
                (1..20).map { i ->
                    async(Dispatchers.IO) { alice.sendText(directTo(b), "m$i", 600.seconds) }
                }.awaitAll()
            }
            expectEqual(20, ids.toSet().size, "distinct ids")
            val dm = alice.threads().single().id
            coroutineScope {
                launch(Dispatchers.IO) { alice.flush() }
                repeat(50) {
                    launch(Dispatchers.IO) {
                        alice.threads()
                        check(alice.messages(dm, 50u).size == 20) { "reader saw a partial list" }
                        alice.settings()
                    }
                }
            }
            expectEqual(0uL, alice.outboxLen(), "outbox after flush")
            var got = 0
            eventually { got += bob.receive(0u).received.size; got == 20 }
        }
    }
}

suspend fun closedObjects(relay: Relay) {
    val (client, _) = enrolled(relay, "closer")
    val handle = client.startSync(defaultSyncOptions())
    client.closeProfile()
    check(client.isClosed()) { "not closed" }
    expectThrows<OccException.Closed> { client.threads() }
    expectThrows<OccException.Closed> { client.sync() }
    expectThrows<OccException.Closed> { client.startSync(defaultSyncOptions()) }
    eventually { !handle.isRunning() }
    handle.close()
    // Released objects refuse further use.
    client.close()
    expectThrows<IllegalStateException> { client.isClosed() }
}

suspend fun profiles(relay: Relay) {
    val root = tempDir("profiles")
    ProfileManager(root.path).use { profiles ->
        val aliceKey = newKey()
        val alice = profiles.create("alice", aliceKey)
        profiles.create("bob", newKey()).use { }
        expectEqual(listOf("alice", "bob"), profiles.list(), "profiles")
        expectThrows<OccException.InvalidInput> { profiles.open("alice", aliceKey) }
        expectThrows<OccException.InvalidInput> { profiles.create("../escape", newKey()) }
        profiles.wipe("alice")
        check(alice.isClosed()) { "wipe did not close the open client" }
        expectEqual(listOf("bob"), profiles.list(), "after wipe")
        check(!root.resolve("alice").exists()) { "files left behind" }
        alice.close()
    }
}

suspend fun logging(relay: Relay) {
    val lines = CopyOnWriteArrayList<Triple<LogLevel, String, String>>()
    val logger = object : Logger {
        override fun log(level: LogLevel, target: String, message: String) {
            lines.add(Triple(level, target, message))
        }
    }
    try {
        // Everything the core says while two devices talk: never the content.
        setLogger(logger, LogLevel.TRACE)
        val (alice, _) = enrolled(relay, "alice")
        val (bob, b) = enrolled(relay, "bob")
        val marker = "CONTENT-MARKER-${uniqueUser("m")}"
        alice.use { bob.use {
            alice.sendText(directTo(b), marker, 600.seconds)
            alice.sync()
            expectEqual(1, bob.sync().received.received.size, "received")
        } }
        check(lines.isNotEmpty()) { "the logger heard nothing at TRACE" }
        check(lines.none { marker in it.third }) { "a log line carried message content" }

        // At WARN: the pin failure, and nothing below WARN.
        setLogger(logger, LogLevel.WARN)
        delay(100) // lines already past the TRACE filter land first
        lines.clear()
        val user = uniqueUser("logged")
        Client.create(tempDir(user).path, newKey()).use { client ->
            expectThrows<OccException.PinMismatch> {
                client.enrol(enrolOptions(relay.settings(listOf("sha256/" + "C".repeat(42) + "A=")), user))
            }
        }
        check(lines.any { (level, target, text) -> level == LogLevel.WARN && target.startsWith("occ_core") && "pin_failure" in text }) {
            "logger saw $lines"
        }
        check(lines.all { it.first == LogLevel.WARN || it.first == LogLevel.ERROR }) { "below the chosen level: $lines" }
    } finally {
        setLogger(null, LogLevel.ERROR)
    }
}

suspend fun backgroundSync(relay: Relay) {
    val (alice, _) = enrolled(relay, "alice")
    val (bob, b) = enrolled(relay, "bob")
    alice.use {
        bob.use {
            coroutineScope {
                val arrived = async {
                    bob.events().filterIsInstance<ClientEvent.MessagesReceived>().first()
                }
                delay(200)
                bob.startSync(defaultSyncOptions()).use { handle ->
                    val id = alice.sendText(directTo(b), "pushed", 600.seconds)
                    alice.flush()
                    expectEqual(listOf(id), arrived.await().messages.map { it.messageId }, "arrived by itself")
                    check(handle.isRunning()) { "stopped early" }
                    handle.stop()
                    eventually { !handle.isRunning() }
                }
            }
        }
    }
}

suspend fun safetyNumbers(relay: Relay) {
    val (alice, a) = enrolled(relay, "alice")
    val (bob, b) = enrolled(relay, "bob")
    alice.use {
        bob.use {
            alice.sendText(directTo(b), "compare numbers?", 600.seconds)
            alice.flush()
            bob.receive(0u)
            val fromAlice = alice.contactIdentity(b)
            val fromBob = bob.contactIdentity(a)
            expectEqual(fromAlice.safetyNumber, fromBob.safetyNumber, "same number on both sides")
            expectEqual(12, fromAlice.safetyNumber.split(" ").size, "twelve groups")
            expectEqual(listOf(Trust.TRUSTED), fromAlice.devices.map { it.trust }, "trusted on first use")
            alice.acceptIdentity(b, true)
            expectEqual(listOf(Trust.VERIFIED), alice.contactIdentity(b).devices.map { it.trust }, "verified")
            try {
                alice.contactIdentity("nobody-$b")
                error("an unknown contact has no safety number")
            } catch (e: OccException.NotFound) {
                // expected
            }
        }
    }
}

suspend fun linkedDevices(relay: Relay) {
    val (alice, a) = enrolled(relay, "alice")
    val (bob, b) = enrolled(relay, "bob")
    val alice2 = Client.create(tempDir("$a-2").path, newKey())
    alice.use {
        bob.use {
            alice2.use {
                val link = alice.linkDevice(alice2.deviceId())
                alice2.enrol(enrolOptions(relay.settings(), a, link = link))
                expectEqual(alice.deviceId(), alice2.enrolment()?.linkedBy, "linked by")
                val team = alice.newThreadId()
                check(team.startsWith("g:$a:")) { "a thread id bound to its creator: $team" }
                alice.sendText(thread(team, b), "from the phone", 600.seconds)
                expectEqual(1u, alice.flush().sent, "sent")
                bob.receive(0u)
                alice2.receive(0u)
                expectEqual(listOf("from the phone"), bob.messages(team, 50u).map { it.text }, "bob")
                val copy = alice2.messages(team, 50u).single()
                expectEqual("from the phone" to true, copy.text to copy.outgoing, "alice's tablet")
                expectEqual(listOf(a, b).sorted(), alice2.threadMembers(team), "members on the tablet")
                // The tablet is lost: removed, it is out.
                alice.removeDevice(alice2.deviceId())
                try {
                    alice2.receive(0u)
                    error("a removed device still receives")
                } catch (e: OccException) {
                    // expected: the relay no longer knows it
                }
            }
        }
    }
}

suspend fun urgentAlert(relay: Relay) {
    val (alice, a) = enrolled(relay, "alice")
    val (bob, b) = enrolled(relay, "bob")
    alice.use {
        bob.use {
            val id = alice.sendUrgent(directTo(b), "gas leak, block C".toByteArray(), 600u, 300u)
            alice.flush()
            val got = bob.receive(0u).received.single()
            expectEqual(id, got.messageId, "the same id on both sides")
            check(bob.message(id).urgent) { "bob sees it as urgent" }
            bob.acknowledge(id, "evacuating")
            bob.flush()
            alice.sync()
            val r = alice.receipts(id).single()
            expectEqual(b, r.user, "recipient")
            check(r.deliveredMs != null && r.acknowledgedMs != null) { "receipts: $r" }
            expectEqual("evacuating", r.reply, "reply")
            expectEqual(0u, alice.checkAlerts(), "nothing to escalate before the deadline")
            val report = alice.auditVerify(true)
            check(report.broken == null) { "audit: $report" }
            check(report.checkedWithRelay && report.countersignedSeq == report.entries) { "countersigned: $report" }
            val kinds = alice.timeline(got.threadId).map { it.kind }
            check(kinds.containsAll(listOf("sent", "receipt"))) { "timeline: $kinds" }
            check(bob.auditEntries(0u, 1000u).none { it.detail.contains("gas leak") }) { "content in the trail" }
        }
    }
}

suspend fun forgedNotice(relay: Relay) {
    val user = uniqueUser("bob")
    val dir = tempDir(user).path
    val key = newKey()
    val bob = Client.create(dir, key)
    bob.use {
        bob.enrol(enrolOptions(relay.settings(), user))
        val me = bob.deviceId()
        val forged = """{"notice":{"message_id":"${"ab".repeat(16)}","recipient_device":"$me",""" +
            """"sender_device":"${"cd".repeat(32)}","thread":null,"size":100,"expires_ms":${Long.MAX_VALUE / 2},""" +
            """"class":"text","sent_ms":1,"urgent":false,"count":1},"signature":"${"A".repeat(86)}"}"""
        expectThrows<OccException.Untrusted> { verifyNotice(dir, key, forged.toByteArray()) }
        expectThrows<OccException.InvalidInput> { verifyNotice(dir, key, "not a notice".toByteArray()) }
        expectEqual(2, bob.auditEntries(0u, 100u).count { it.kind == "forged_notice" }, "audited")
    }
}

/** Records every progress report. */
class Progress : ProgressListener {
    val seen = CopyOnWriteArrayList<Pair<ULong, ULong>>()
    override fun onProgress(done: ULong, total: ULong) {
        seen.add(done to total)
    }
    fun check(what: String) {
        check(seen.isNotEmpty()) { "$what: no progress reported" }
        check(seen.zipWithNext().all { (a, b) -> a.first <= b.first || a.second != b.second }) { "$what: progress went back: $seen" }
        val (done, total) = seen.last()
        check(done == total && total > 0uL) { "$what: ended at $done of $total" }
    }
}

suspend fun attachments(relay: Relay) {
    val (alice, a) = enrolled(relay, "alice")
    val (bob, b) = enrolled(relay, "bob")
    alice.use {
        bob.use {
            val bytes = ByteArray(3 shl 20) { (it * 31 + 7).toByte() }
            val src = java.io.File(tempDir("att"), "scene.jpg").apply { writeBytes(bytes) }
            val up = Progress()
            val id = alice.sendFile(directTo(b), OutgoingFile(src.path, "image/jpeg", null, "thumb".toByteArray()),
                "scene".toByteArray(), 600u, up)
            up.check("upload")
            alice.flush()
            bob.receive(0u)
            val att = bob.attachments(id).single()
            expectEqual("scene.jpg", att.name, "name")
            expectEqual(bytes.size.toULong(), att.size, "size")
            check(!att.downloaded) { "not downloaded yet" }
            expectEqual("thumb", String(att.thumb), "thumbnail")
            // Over the quota: a typed error, nothing fetched.
            bob.setAttachmentQuota(1000u)
            val e = expectThrows<OccException.QuotaExceeded> { bob.downloadAttachment(att.id, null) }
            check(e.needed > 1000uL) { "needed: ${e.needed}" }
            check(!bob.attachments(id).single().downloaded) { "nothing downloaded" }
            bob.setAttachmentQuota(100uL shl 20)
            val down = Progress()
            bob.downloadAttachment(att.id, down)
            down.check("download")
            val dest = java.io.File(tempDir("saved"), "scene.jpg")
            expectEqual(bytes.size.toULong(), bob.saveAttachment(att.id, dest.path, null), "saved size")
            check(dest.readBytes().contentEquals(bytes)) { "the saved file is the sent file" }
            check(bob.attachmentQuota().used > bytes.size.toULong()) { "quota use counts the file" }
        }
    }
}

suspend fun exports(relay: Relay) {
    val (alice, a) = enrolled(relay, "alice")
    val (bob, b) = enrolled(relay, "bob")
    alice.use {
        bob.use {
            alice.send(directTo(b), "card 4111 1111 1111 1111".toByteArray(), 600u, null)
            alice.flush()
            val thread = bob.receive(0u).received.single().threadId
            val dir = java.io.File(tempDir("export"), "out")
            val progress = Progress()
            val report = bob.export(ExportScope.Thread(thread), dir.path,
                ExportOptions(ExportEncryption.Passphrase("correct horse battery"), null, false), progress)
            progress.check("export")
            expectEqual("passphrase", report.encryption, "encryption")
            val v = verifyExport(dir.path)
            expectEqual(bob.deviceId(), v.deviceId, "signed by bob's device")
            expectEqual(1uL, v.messages, "messages")
            val archive = java.io.File(dir, "export.tar.age")
            val raw = archive.readBytes()
            raw[raw.size - 5] = (raw[raw.size - 5].toInt() xor 1).toByte()
            archive.writeBytes(raw)
            expectThrows<OccException.Untrusted> { verifyExport(dir.path) }
            val blocked = java.io.File(tempDir("export"), "blocked")
            expectThrows<OccException.PolicyDenied> {
                bob.export(ExportScope.Thread(thread), blocked.path,
                    ExportOptions(ExportEncryption.None, DlpRules(true, listOf(), DlpAction.BLOCK), false), null)
            }
            check(!blocked.exists()) { "nothing written" }
            expectEqual(1, bob.auditEntries(0u, 1000u).count { it.kind == "exported" }, "audited once")
        }
    }
}

/**
 * A single thread standing in for Android's main thread: every task it runs
 * is timed, so the longest one is the longest the UI would have stalled.
 */
class TimedMainThread : java.util.concurrent.Executor, AutoCloseable {
    private val thread = java.util.concurrent.Executors.newSingleThreadExecutor { r -> Thread(r, "test-main") }
    val longestNs = java.util.concurrent.atomic.AtomicLong()
    val tasks = java.util.concurrent.atomic.AtomicLong()
    override fun execute(command: Runnable) {
        thread.execute {
            val t = System.nanoTime()
            command.run()
            val d = System.nanoTime() - t
            tasks.incrementAndGet()
            longestNs.accumulateAndGet(d) { a, b -> maxOf(a, b) }
        }
    }
    override fun close() = thread.shutdown()
}

suspend fun mainThread(relay: Relay) {
    val (alice, a) = enrolled(relay, "alice")
    val (bob, b) = enrolled(relay, "bob")
    alice.use {
        bob.use {
            // 10,000 messages in alice's profile that will all have expired
            // (queued, never sent: the purge removes messages and outbox rows).
            val tid = alice.newThreadId()
            val fill = System.nanoTime()
            coroutineScope {
                (0 until 4).map { part ->
                    launch(Dispatchers.IO) { repeat(2_500) { i -> alice.sendText(thread(tid, b), "m$part-$i", 2.seconds) } }
                }
            }
            println("   measured: 10,000 sends (local acceptance) in ${(System.nanoTime() - fill) / 1_000_000} ms")
            expectEqual(10_000uL, alice.outboxLen(), "queued")
            delay(2_200)
            bob.startSync(defaultSyncOptions()).use { _ ->
                TimedMainThread().use { mainThread ->
                    val main = mainThread.asCoroutineDispatcher()
                    val latencies = java.util.Collections.synchronizedList(mutableListOf<Long>())
                    coroutineScope {
                        val purge = async(Dispatchers.Default) { alice.purge() }
                        launch(main) {
                            delay(20) // the purge holds alice's profile now
                            repeat(200) { i ->
                                val t = System.nanoTime()
                                when (i % 4) {
                                    0 -> alice.messages(tid, 50u)
                                    1 -> alice.threads()
                                    2 -> bob.sendText(directTo(a), "from main $i", 600.seconds)
                                    else -> bob.purge()
                                }
                                latencies.add(System.nanoTime() - t)
                            }
                        }
                        val report = purge.await()
                        expectEqual(10_000, report.expiredIds.size, "purged")
                    }
                    val sorted = latencies.sorted()
                    val longestMs = mainThread.longestNs.get() / 1e6
                    println("   measured: main thread longest stall %.2f ms over %d tasks; call latency p50 %.1f ms, p99 %.1f ms, max %.1f ms (200 calls during a 10,000-message purge and background sync)"
                        .format(longestMs, mainThread.tasks.get(), sorted[sorted.size / 2] / 1e6, sorted[sorted.size * 99 / 100] / 1e6, sorted.last() / 1e6))
                    check(longestMs < 16.0) { "the main thread was blocked for $longestMs ms" }
                }
            }
        }
    }
}

/** A listener that blocks until [open] (a collector that stopped reading). */
class Stuck : EventListener {
    val gate = java.util.concurrent.CountDownLatch(1)
    val seen = CopyOnWriteArrayList<ClientEvent>()
    override fun onEvent(event: ClientEvent) {
        gate.await()
        seen.add(event)
    }
}

private fun critical(events: List<ClientEvent>) = events.filter {
    it is ClientEvent.SecurityAlert || it is ClientEvent.WithdrawNotifications || it is ClientEvent.ProfileClosed ||
        it is ClientEvent.ProfileWiped || it is ClientEvent.Locked
}

suspend fun slowSubscriber(relay: Relay) {
    val (alice, a) = enrolled(relay, "alice")
    suspend fun scenario(end: suspend (Client, ProfileManager) -> Unit, last: ClientEvent) {
        val root = tempDir("subscribers")
        ProfileManager(root.path).use { manager ->
            val bob = manager.create("bob", newKey())
            val user = uniqueUser("bob")
            bob.enrol(enrolOptions(relay.settings(), user))
            val stuck = Stuck()
            val stuckSub = bob.subscribe(stuck)
            val reader = CopyOnWriteArrayList<ClientEvent>()
            coroutineScope {
                val collecting = launch(Dispatchers.Default) { bob.events().collect { reader.add(it) } }
                delay(200)
                // Ordinary events: 150 sends acknowledged by the relay, and messages.
                val started = System.nanoTime()
                repeat(150) { bob.sendText(directTo(a), "out $it", 600.seconds) }
                bob.flush()
                repeat(5) { alice.sendText(directTo(user), "in $it", 600.seconds) }
                alice.flush()
                bob.receive(0u)
                // Critical events: three forged notices, then the end.
                val me = bob.deviceId()
                repeat(3) { i ->
                    val forged = """{"notice":{"message_id":"${"%032x".format(i)}","recipient_device":"$me",""" +
                        """"sender_device":"${"cd".repeat(32)}","thread":null,"size":100,"expires_ms":${Long.MAX_VALUE / 2},""" +
                        """"class":"text","sent_ms":1,"urgent":false,"count":1},"signature":"${"A".repeat(86)}"}"""
                    expectThrows<OccException.Untrusted> { bob.verifyNotice(forged.toByteArray()) }
                }
                end(bob, manager)
                val emittedMs = (System.nanoTime() - started) / 1_000_000
                check(stuckSub.pending() <= 64u + 8u) { "the stuck subscriber holds ${stuckSub.pending()} events" }
                println("   measured: 150 sends + 5 receives + 3 alerts + the end with one subscriber stuck: $emittedMs ms; its queue held ${stuckSub.pending()} events")
                // The reading subscriber got everything critical, in order.
                eventually { reader.lastOrNull() == last }
                collecting.join()
                stuck.gate.countDown()
                eventually { stuck.seen.lastOrNull() == last }
                val want = critical(reader)
                expectEqual(3, want.count { it is ClientEvent.SecurityAlert }, "three alerts")
                expectEqual(want, critical(stuck.seen), "the stuck subscriber's critical events, in order")
                check(stuck.seen.size < reader.size) { "coalesced: ${stuck.seen.size} vs ${reader.size}" }
                check(stuck.seen.any { it is ClientEvent.Coalesced || (it is ClientEvent.MessageSent) }) { "no ordinary event at all: ${stuck.seen}" }
                println("   measured: reader got ${reader.size} events, the stuck one ${stuck.seen.size} after it resumed")
            }
            stuckSub.close()
        }
    }
    alice.use {
        scenario({ bob, _ -> bob.closeProfile() }, ClientEvent.ProfileClosed)
        scenario({ _, manager -> manager.wipe("bob") }, ClientEvent.ProfileWiped)
    }
}

suspend fun nativeLibrary(@Suppress("UNUSED_PARAMETER") relay: Relay) {
    expectEqual(coreVersion(), ensureNativeLibrary(), "the library loads and its checksums match")
}
