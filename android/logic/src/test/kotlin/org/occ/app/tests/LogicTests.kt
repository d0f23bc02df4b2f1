// The app logic of the Android shell (and, mirrored, the iOS one), tested on
// the JVM against a real relay: key wrapping, the shared-device lock (PIN,
// back-off, wipe, platform user authentication, switching), the push path
// from the distributor's bytes to a posted notification and back from its
// actions, notification withdrawal, the conversation model with its TTL
// countdown, and event routing.
package org.occ.app.tests

import java.io.File
import java.util.concurrent.CopyOnWriteArrayList
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.async
import kotlinx.coroutines.cancel
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.first
import org.occ.LockOptions
import org.occ.OccException
import org.occ.Recipient
import org.occ.app.AppNotification
import org.occ.app.ActionOutcome
import org.occ.app.BackgroundWork
import org.occ.app.ContentFree
import org.occ.app.ConversationModel
import org.occ.app.DeviceProfiles
import org.occ.app.KeyWrapper
import org.occ.app.NotificationAction
import org.occ.app.NotificationCenter
import org.occ.app.NotificationChannel
import org.occ.app.NotificationPoster
import org.occ.app.ProfileSession
import org.occ.app.PushHandler
import org.occ.app.PushOutcome
import org.occ.app.SettingsModel
import org.occ.app.SoftwareKeyWrapper
import org.occ.app.ThreadsModel
import org.occ.app.UnlockResult
import org.occ.app.UserAuthenticationRequired
import org.occ.app.WorkResult
import org.occ.app.WrappedKeyStore
import org.occ.app.countdownLabel
import org.occ.app.noticeKey
import org.occ.app.promptView
import org.occ.app.replyTo
import org.occ.directTo
import org.occ.events
import org.occ.enrolOptions
import org.occ.received
import org.occ.sendText
import org.occ.tests.PushGateway
import org.occ.tests.Relay
import org.occ.tests.TestFailure
import org.occ.tests.check
import org.occ.tests.enrolled
import org.occ.tests.eventually
import org.occ.tests.expectEqual
import org.occ.tests.expectThrows
import org.occ.tests.runTests
import org.occ.tests.tempDir
import org.occ.tests.uniqueUser

fun main() = runTests(
    "app logic",
    listOf(
        "countdown labels" to ::countdowns,
        "keys are stored wrapped and bound to their profile" to ::wrapping,
        "a wrong PIN backs off, the right one opens, too many wipe; switching is timed" to ::pinLock,
        "platform user authentication unlocks only after the platform authenticated" to ::userAuth,
        "a push as delivered becomes a prompt; download, decline, acknowledge; forged and replayed post nothing" to ::pushPath,
        "a locked profile's notice shows no sender or title" to ::lockedPush,
        "expiry, a lapsed prompt, lock, switch and wipe withdraw their notifications" to ::withdrawals,
        "background work syncs and purges the open profile" to ::backgroundWork,
        "a notification begun before a lock is not posted after it" to ::staleAfterLock,
        "a conversation counts down and drops what expires" to ::conversation,
        "events refresh the screens and raise alerts" to ::routing,
        "a verified push notice becomes a prompt view; a forged one never does" to ::prompts,
    ),
    timeout = 120.seconds,
)

/** Records what the app would post and remove. */
class FakePoster : NotificationPoster {
    val posted = CopyOnWriteArrayList<AppNotification>()
    val cancelled = CopyOnWriteArrayList<Pair<String, String>>()
    override fun post(n: AppNotification) {
        posted.add(n)
    }
    override fun cancel(profile: String, key: String) {
        cancelled.add(profile to key)
    }
    fun last(key: String): AppNotification = posted.lastOrNull { it.key == key } ?: throw TestFailure("nothing posted under $key: $posted")
}

/** A key wrapper whose keys open only after the "platform" authenticated the user. */
class FakeUserAuth : KeyWrapper {
    private val inner = SoftwareKeyWrapper()
    @Volatile var authenticated = false
    override fun wrap(alias: String, key: ByteArray) = inner.wrap(alias, key)
    override fun unwrap(alias: String, wrapped: ByteArray): ByteArray {
        if (!authenticated) throw UserAuthenticationRequired()
        authenticated = false // one authentication, one use
        return inner.unwrap(alias, wrapped)
    }
    override fun forget(alias: String) = inner.forget(alias)
}

private val PIN = "482913".toByteArray()
private val fast = LockOptions(maxFailures = 10u, cost = 10u)

private fun device(root: File, options: LockOptions = fast, userAuth: KeyWrapper? = null) =
    DeviceProfiles(root, SoftwareKeyWrapper(), WrappedKeyStore(root.resolve("keys")), userAuth, options)

private fun opened(r: UnlockResult) = (r as? UnlockResult.Opened)?.client ?: throw TestFailure("not opened: $r")

suspend fun countdowns(@Suppress("UNUSED_PARAMETER") relay: Relay) {
    expectEqual("expired", countdownLabel(0), "zero")
    expectEqual("expires in 9 s", countdownLabel(9_400), "seconds")
    expectEqual("expires in 4 min 05 s", countdownLabel(245_000), "minutes")
    expectEqual("expires in 2 h 3 min", countdownLabel((2 * 3600 + 3 * 60) * 1000L), "hours")
    expectEqual("expires in 30 d 0 h", countdownLabel(30L * 86_400_000), "days")
}

suspend fun wrapping(@Suppress("UNUSED_PARAMETER") relay: Relay) {
    val wrapper = SoftwareKeyWrapper()
    val key = ByteArray(32) { it.toByte() }
    val wrapped = wrapper.wrap("occ-profile-a", key)
    check(wrapped.size > key.size && !wrapped.toList().windowed(32).contains(key.toList())) { "key stored in the clear" }
    expectEqual(key.toList(), wrapper.unwrap("occ-profile-a", wrapped).toList(), "round trip")
    expectThrows<javax.crypto.AEADBadTagException> { wrapper.unwrap("occ-profile-b", wrapped) }
    val flipped = wrapped.copyOf().also { it[it.size - 1] = (it[it.size - 1].toInt() xor 1).toByte() }
    expectThrows<javax.crypto.AEADBadTagException> { wrapper.unwrap("occ-profile-a", flipped) }
    val store = WrappedKeyStore(tempDir("keys"))
    store.put("a", wrapped)
    expectEqual(wrapped.toList(), store.get("a")?.toList(), "stored")
    store.delete("a")
    check(store.get("a") == null) { "not deleted" }
}

suspend fun pinLock(relay: Relay) {
    val root = tempDir("device")
    device(root).use { device ->
        val alice = device.createWithPin("alice", PIN)
        alice.enrol(enrolOptions(relay.settings(), uniqueUser("alice")))
        alice.setKeepPeriodSecs(3_600u)
        device.lock()
        check(alice.isClosed()) { "lock left alice open" }
        expectThrows<OccException.Closed> { alice.threads() }
        // Whoever holds the phone cannot reopen alice without her PIN.
        for (i in 1..2) {
            val r = device.unlock("alice", "000000".toByteArray())
            check(r is UnlockResult.WrongCredential && r.retryAfterMs == 0L) { "attempt $i: $r" }
        }
        val third = device.unlock("alice", "000000".toByteArray())
        check(third is UnlockResult.WrongCredential && third.retryAfterMs == 5_000L && third.attemptsLeft == 7) { "third: $third" }
        // Backing off: even the right PIN waits, and is not counted.
        val early = device.unlock("alice", PIN)
        check(early is UnlockResult.TryLater && early.retryAfterMs in 1..5_000) { "early: $early" }
        delay(5_100)
        val again = opened(device.unlock("alice", PIN))
        expectEqual(3_600uL, again.settings().keepPeriodSecs, "alice's own settings")
        expectEqual(0u, device.manager.lockStatus("alice").failures, "a success resets the count")
        // Whoever holds the phone cannot destroy alice's profile by creating
        // one with her name: refused before anything of hers is touched.
        device.lock()
        expectThrows<IllegalArgumentException> { device.createWithPin("alice", "mallory-pin".toByteArray()) }
        opened(device.unlock("alice", PIN)).close()
        device.createWithPin("bob", "bob-pass".toByteArray())
        device.lock()
    }
    device(root, LockOptions(maxFailures = 3u, cost = 10u)).use { device ->
        val strict = device.createWithPin("carol", "carol-pass".toByteArray())
        device.lock()
        check(strict.isClosed()) { "carol open" }
        repeat(2) { check(device.unlock("carol", "wrong".toByteArray()) is UnlockResult.WrongCredential) { "counted" } }
        expectEqual(UnlockResult.Wiped, device.unlock("carol", "wrong".toByteArray()), "the last failure wipes")
        check(!root.resolve("profiles/carol").exists()) { "carol's files survived" }
        check(root.resolve("keys").listFiles().orEmpty().none { it.name.startsWith("carol.") }) { "carol's wrapped secret survived" }
        check("carol" !in device.profiles()) { "carol listed" }
        expectThrows<IllegalArgumentException> { device.unlock("carol", "carol-pass".toByteArray()) }
    }
    // Switching users at shift change: lock one, unlock the other with its
    // credential (the default key-derivation cost, as on a phone).
    val switchRoot = tempDir("switch")
    device(switchRoot, org.occ.defaultLockOptions()).use { device ->
        device.createWithPin("day", "day-shift".toByteArray())
        device.createWithPin("night", "night-shift".toByteArray())
        val times = (1..10).map { i ->
            val (name, pin) = if (i % 2 == 0) "day" to "day-shift" else "night" to "night-shift"
            val t = System.nanoTime()
            opened(device.unlock(name, pin.toByteArray()))
            (System.nanoTime() - t) / 1e6
        }
        println("   measured: profile switch (lock + unlock with PIN, scrypt 2^15): " +
            "median %.0f ms, max %.0f ms over 10".format(times.sorted()[5], times.max()))
    }
}

suspend fun userAuth(@Suppress("UNUSED_PARAMETER") relay: Relay) {
    val root = tempDir("userauth")
    val auth = FakeUserAuth()
    device(root, userAuth = auth).use { device ->
        device.createWithUserAuth("dana")
        check(device.usesUserAuth("dana")) { "dana uses user authentication" }
        device.lock()
        expectEqual(UnlockResult.NeedsUserAuthentication, device.unlockWithUserAuth("dana"), "before the platform prompt")
        expectEqual(0u, device.manager.lockStatus("dana").failures, "nothing counted")
        auth.authenticated = true
        opened(device.unlockWithUserAuth("dana"))
        device.wipe("dana")
        check(root.resolve("keys").listFiles().orEmpty().none { it.name.startsWith("dana.") }) { "dana's wrapped keys survived" }
    }
}

/** Bob's device with a profile enrolled for push at [gateway], and its push handler. */
private class PushRig(relay: Relay, gateway: PushGateway, root: File) : AutoCloseable {
    val poster = FakePoster()
    val center = NotificationCenter(poster)
    val device = device(root)
    val handler = PushHandler(device, center)
    val user = uniqueUser("bob")
    lateinit var client: org.occ.Client
    private val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)
    lateinit var session: ProfileSession

    suspend fun start(relay: Relay, gateway: PushGateway): PushRig {
        client = device.createWithPin("bob", PIN)
        client.enrol(enrolOptions(relay.settings(), user, pushEndpoint = gateway.url))
        session = ProfileSession("bob", client, scope, center)
        return this
    }

    suspend fun reopen() {
        client = opened(device.unlock("bob", PIN))
        session = ProfileSession("bob", client, scope, center)
    }

    override fun close() {
        scope.cancel()
        device.close()
    }
}

suspend fun pushPath(relay: Relay) {
    val (alice, a) = enrolled(relay, "alice")
    PushGateway().use { gateway ->
        PushRig(relay, gateway, tempDir("push")).use { rig ->
            rig.start(relay, gateway)
            alice.use {
                // 1. A plain message: the distributor's bytes become a prompt.
                alice.sendText(directTo(rig.user), "first", 600.seconds)
                alice.flush()
                val body = gateway.next()
                val outcome = rig.handler.onMessage(body)
                check(outcome is PushOutcome.Prompted) { "outcome $outcome" }
                val key = (outcome as PushOutcome.Prompted).key
                val prompt = rig.poster.last(key)
                expectEqual(NotificationChannel.PROMPTS, prompt.channel, "channel")
                expectEqual(listOf(NotificationAction.DOWNLOAD, NotificationAction.DECLINE), prompt.actions, "actions")
                check(prompt.text.startsWith("Do you want to download this OCC message")) { prompt.text }
                expectEqual(ContentFree.MESSAGE, prompt.publicText, "the lock screen shows nothing")
                check(prompt.timeoutAtMs != null && prompt.timeoutAtMs!! > System.currentTimeMillis()) { "timeout" }
                check(rig.client.threads().isEmpty()) { "nothing stored before consent" }
                // Download stores it and replaces the prompt.
                val done = rig.handler.onAction("bob", key, NotificationAction.DOWNLOAD)
                check(done is ActionOutcome.Downloaded && done.messageId != null) { "download: $done" }
                val replaced = rig.poster.last(key)
                expectEqual(NotificationChannel.MESSAGES, replaced.channel, "replaced by the message")
                check(replaced.text.startsWith("Message from $a") && "first" !in replaced.text) { "no preview without policy: ${replaced.text}" }
                expectEqual(1, rig.client.messages(rig.client.threads().single().id, 10u).size, "stored")
                // The same bytes again: a replay posts nothing and is audited.
                val before = rig.poster.posted.size
                check(rig.handler.onMessage(body) is PushOutcome.Refused) { "replay accepted" }
                // A forged notice (one field changed) posts nothing and is audited.
                val forged = String(body).replace("\"count\":1", "\"count\":2").toByteArray()
                check(rig.handler.onMessage(forged) is PushOutcome.Refused) { "forgery accepted" }
                expectEqual(before, rig.poster.posted.size, "nothing posted for a replay or a forgery")
                expectEqual(2, rig.client.auditEntries(0u, 1000u).count { it.kind == "forged_notice" }, "audited")

                // 2. Decline: never stored.
                alice.sendText(directTo(rig.user), "second", 600.seconds)
                alice.flush()
                val declined = rig.handler.onMessage(gateway.next()) as PushOutcome.Prompted
                expectEqual(ActionOutcome.Declined, rig.handler.onAction("bob", declined.key, NotificationAction.DECLINE), "declined")
                check(("bob" to declined.key) in rig.poster.cancelled) { "the prompt was removed" }
                rig.client.sync()
                expectEqual(1, rig.client.messages(rig.client.threads().single().id, 10u).size, "the declined message was not stored")

                // 3. An urgent alert: the urgent channel, Acknowledge reaches alice.
                val alertId = alice.sendUrgent(directTo(rig.user), "evacuate".toByteArray(), 600u, 300u)
                alice.flush()
                val urgent = rig.handler.onMessage(gateway.next()) as PushOutcome.Prompted
                val n = rig.poster.last(urgent.key)
                expectEqual(NotificationChannel.URGENT, n.channel, "urgent channel")
                check(n.breakThrough && NotificationAction.ACKNOWLEDGE in n.actions) { "urgent: $n" }
                expectEqual(ContentFree.URGENT, n.publicText, "content-free")
                val ack = rig.handler.onAction("bob", urgent.key, NotificationAction.ACKNOWLEDGE)
                check(ack is ActionOutcome.Acknowledged) { "ack: $ack" }
                rig.client.flush()
                eventually { alice.sync(); alice.receipts(alertId).single().acknowledgedMs != null }
            }
        }
    }
}

suspend fun lockedPush(relay: Relay) {
    val (alice, a) = enrolled(relay, "alice")
    PushGateway().use { gateway ->
        PushRig(relay, gateway, tempDir("locked")).use { rig ->
            rig.start(relay, gateway)
            alice.use {
                // Bob talks to alice once, so his device knows her and the thread.
                alice.sendText(directTo(rig.user), "hello", 600.seconds)
                alice.flush()
                rig.client.sync()
                gateway.next()
                rig.device.lock()
                alice.sendText(directTo(rig.user), "while you were away", 600.seconds)
                alice.flush()
                val outcome = rig.handler.onMessage(gateway.next())
                check(outcome is PushOutcome.PromptedLocked) { "outcome $outcome" }
                val n = rig.poster.last((outcome as PushOutcome.PromptedLocked).key)
                expectEqual(ContentFree.LOCKED, n.text, "content-free text")
                expectEqual(ContentFree.LOCKED, n.publicText, "content-free public text")
                expectEqual(ContentFree.TITLE, n.title, "no thread title")
                check(listOf(n.title, n.text, n.publicText).none { a in it || "away" in it }) { "sender or content shown: $n" }
                expectEqual(listOf(NotificationAction.UNLOCK), n.actions, "only unlock")
                expectEqual(ActionOutcome.NeedsUnlock, rig.handler.onAction("bob", n.key, NotificationAction.DOWNLOAD), "locked")
                // After the unlock the message arrives by sync.
                rig.reopen()
                expectEqual(1, rig.client.sync().received.received.size, "arrives after unlock")
            }
        }
    }
}

suspend fun withdrawals(relay: Relay) {
    val (alice, _) = enrolled(relay, "alice")
    PushGateway().use { gateway ->
        PushRig(relay, gateway, tempDir("withdraw")).use { rig ->
            rig.start(relay, gateway)
            alice.use {
                // A downloaded message's notification goes when it expires.
                alice.sendText(directTo(rig.user), "brief", 2.seconds)
                alice.flush()
                val brief = rig.handler.onMessage(gateway.next()) as PushOutcome.Prompted
                rig.handler.onAction("bob", brief.key, NotificationAction.DOWNLOAD)
                // A prompt nobody answers goes when its notice lapses.
                alice.sendText(directTo(rig.user), "unanswered", 2.seconds)
                alice.flush()
                val unanswered = rig.handler.onMessage(gateway.next()) as PushOutcome.Prompted
                delay(2_300)
                rig.client.purge()
                eventually { ("bob" to brief.key) in rig.poster.cancelled && ("bob" to unanswered.key) in rig.poster.cancelled }
                // A live one stays until the profile is locked: then everything goes.
                alice.sendText(directTo(rig.user), "live", 600.seconds)
                alice.flush()
                val live = rig.handler.onMessage(gateway.next()) as PushOutcome.Prompted
                check(("bob" to live.key) !in rig.poster.cancelled) { "withdrawn too early" }
                rig.device.lock()
                eventually { ("bob" to live.key) in rig.poster.cancelled }
                check(rig.center.keys("bob").isEmpty()) { "left: ${rig.center.keys("bob")}" }
                // Switching: the other user's profile opens, bob's notifications stay gone.
                rig.reopen()
                alice.sendText(directTo(rig.user), "before the switch", 600.seconds)
                alice.flush()
                val before = rig.handler.onMessage(gateway.next()) as PushOutcome.Prompted
                rig.device.createWithPin("relief", "relief-pin".toByteArray())
                eventually { ("bob" to before.key) in rig.poster.cancelled }
                // Wiping an open profile withdraws its notifications too.
                rig.reopen()
                alice.sendText(directTo(rig.user), "before the wipe", 600.seconds)
                alice.flush()
                val wiped = rig.handler.onMessage(gateway.next()) as PushOutcome.Prompted
                val subscription = rig.client.events()
                coroutineScope {
                    val end = async { subscription.first { it is org.occ.ClientEvent.ProfileWiped } }
                    delay(100)
                    rig.device.manager.wipe("bob")
                    end.await()
                }
                eventually { ("bob" to wiped.key) in rig.poster.cancelled }
            }
        }
    }
}

suspend fun staleAfterLock(@Suppress("UNUSED_PARAMETER") relay: Relay) {
    val poster = FakePoster()
    val center = NotificationCenter(poster)
    val n = AppNotification("bob", "notice:1", NotificationChannel.PROMPTS, "occ", "from alice in Ops", ContentFree.MESSAGE, emptyList(), null)
    val before = center.generation("bob")
    center.cancelAll("bob") // the user locks while the notice is being verified
    check(!center.show(n, generation = before)) { "posted after the lock" }
    check(poster.posted.isEmpty()) { "posted: ${poster.posted}" }
    check(center.show(n, generation = center.generation("bob"))) { "a fresh one is posted" }
    expectEqual(listOf(n), poster.posted.toList(), "posted once")
}

suspend fun backgroundWork(relay: Relay) {
    val (alice, _) = enrolled(relay, "alice")
    val root = tempDir("work")
    device(root).use { device ->
        val work = BackgroundWork(device)
        expectEqual(WorkResult.NOTHING_OPEN, work.run(), "nothing open")
        val bob = device.createWithPin("bob", PIN)
        val user = uniqueUser("bob")
        bob.enrol(enrolOptions(relay.settings(), user))
        alice.use {
            alice.sendText(directTo(user), "short-lived", 1.seconds)
            alice.flush()
            expectEqual(WorkResult.SUCCESS, work.run(), "synced")
            expectEqual(1, bob.threads().size, "received by the background run")
            delay(1_200)
            work.run()
            val dm = bob.threads().single().id
            check(bob.messages(dm, 10u).isEmpty()) { "purged by the background run" }
        }
    }
}

suspend fun conversation(relay: Relay) {
    val (alice, a) = enrolled(relay, "alice")
    val (bob, b) = enrolled(relay, "bob")
    alice.use {
        bob.use {
            alice.sendText(directTo(b), "short", 2.seconds)
            alice.sendText(directTo(b), "long", 3_600.seconds)
            alice.flush()
            bob.receive(0u)
            val threads = ThreadsModel(bob).also { it.refresh() }
            val dm = threads.threads.value.single()
            expectEqual(Recipient.User(a), dm.replyTo(), "a direct reply goes to the other user")
            val model = ConversationModel(bob, dm.id)
            val t0 = System.currentTimeMillis()
            model.refresh(t0)
            expectEqual(listOf("long", "short"), model.items.value.map { it.text }, "newest first")
            check(model.items.value.last().countdown.matches(Regex("expires in [12] s"))) {
                "countdown ${model.items.value.last().countdown}"
            }
            check(model.items.value.first().countdown.startsWith("expires in 59 min")) {
                "countdown ${model.items.value.first().countdown}"
            }
            model.tick(t0 + 2_500)
            expectEqual(listOf("long"), model.items.value.map { it.text }, "after the TTL")
            delay(2_100)
            model.refresh()
            expectEqual(listOf("long"), model.items.value.map { it.text }, "reloaded")
            model.send(dm.replyTo(), "reply", 600.seconds)
            bob.flush()
            alice.sync()
            expectEqual(listOf("reply"), alice.messages(dm.id, 10u).filter { !it.outgoing }.map { it.body.decodeToString() }, "reply")
            val settings = SettingsModel(bob)
            settings.setKeepPeriod(1u)
            expectEqual(1uL, settings.keepPeriodSecs.value, "keep period")
            delay(1_200)
            model.refresh()
            check(model.items.value.isEmpty()) { "kept past the keep period" }
        }
    }
}

suspend fun routing(relay: Relay) {
    val (alice, _) = enrolled(relay, "alice")
    val root = tempDir("session")
    device(root).use { device ->
        val client = device.createWithPin("bob", PIN)
        coroutineScope {
            val session = ProfileSession("bob", client, this)
            check(!session.isEnrolled()) { "enrolled too early" }
            val b = uniqueUser("bob")
            session.enrol(relay.url, relay.pin, b, relay.caPem)
            check(session.isEnrolled()) { "not enrolled" }
            session.startSync()
            eventually { session.events.connected.value == true }
            alice.use {
                alice.sendText(directTo(b), "routed", 600.seconds)
                alice.flush()
                eventually { session.threads.threads.value.size == 1 }
                val model = session.conversation(session.threads.threads.value.single().id)
                model.refresh()
                expectEqual(listOf("routed"), model.items.value.map { it.text }, "conversation")
                alice.sendText(directTo(b), "and again", 600.seconds)
                alice.flush()
                eventually { model.items.value.size == 2 }
            }
            val alert = async { session.events.alerts.first() }
            delay(100)
            client.sendText(directTo("nobody-${uniqueUser("x")}"), "lost", 600.seconds)
            expectEqual("undelivered", alert.await().kind, "alert kind")
            session.close()
        }
    }
}

suspend fun prompts(relay: Relay) {
    val user = uniqueUser("bob")
    val dir = tempDir(user).path
    val key = org.occ.generateDatabaseKey()
    val bob = org.occ.Client.create(dir, key)
    bob.use {
        bob.enrol(enrolOptions(relay.settings(), user))
        val prompt = org.occ.DownloadPrompt(
            relayMessageId = "ab".repeat(16), threadId = null, threadTitle = "Ops", senderUser = "alice",
            senderDevice = "cd".repeat(32), senderVerified = false, messageClass = "alert", size = 900u,
            expiresMs = 0, urgent = true, count = 3u,
            decision = org.occ.Decision.Confirm("the organisation asks you to unlock before downloading"),
            previews = false,
        )
        val v = promptView(prompt)
        check(v.canDownload && v.needsUnlock && v.urgent) { "$v" }
        check(v.body.startsWith("Do you want to download this OCC URGENT alert from alice (unverified) in Ops? (+2 more)")) { v.body }
        val denied = promptView(prompt.copy(decision = org.occ.Decision.Deny("not on this device"), urgent = false, messageClass = "file"))
        check(!denied.canDownload && denied.body.contains("cannot be downloaded")) { "$denied" }
        expectEqual(noticeKey("ab".repeat(16)), org.occ.app.promptNotification("p", prompt).key, "key")
        expectThrows<OccException.InvalidInput> { org.occ.verifyNotice(dir, key, "{}".toByteArray()) }
    }
}
