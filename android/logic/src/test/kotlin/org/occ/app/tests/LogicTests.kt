// The app logic of the Android shell (and, mirrored, the iOS one), tested on
// the JVM against a real relay: key wrapping, profile switching on a shared
// device, the conversation model with its TTL countdown, and event routing.
package org.occ.app.tests

import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.async
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.first
import org.occ.OccException
import org.occ.app.ConversationModel
import org.occ.app.ProfileSession
import org.occ.app.ProfileSwitcher
import org.occ.app.SettingsModel
import org.occ.app.SoftwareKeyWrapper
import org.occ.app.ThreadsModel
import org.occ.app.WrappedKeyStore
import org.occ.app.countdownLabel
import org.occ.app.promptView
import org.occ.app.replyTo
import org.occ.Recipient
import org.occ.directTo
import org.occ.enrolOptions
import org.occ.sendText
import org.occ.tests.Relay
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
        "a shared device switches, locks and wipes profiles" to ::switching,
        "a conversation counts down and drops what expires" to ::conversation,
        "events refresh the screens and raise alerts" to ::routing,
        "a verified push notice becomes a prompt; a forged one never does" to ::prompts,
    ),
)

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
    // Another profile's wrapped key does not open this one, nor does a flipped byte.
    expectThrows<javax.crypto.AEADBadTagException> { wrapper.unwrap("occ-profile-b", wrapped) }
    val flipped = wrapped.copyOf().also { it[it.size - 1] = (it[it.size - 1].toInt() xor 1).toByte() }
    expectThrows<javax.crypto.AEADBadTagException> { wrapper.unwrap("occ-profile-a", flipped) }
    val store = WrappedKeyStore(tempDir("keys"))
    store.put("a", wrapped)
    expectEqual(wrapped.toList(), store.get("a")?.toList(), "stored")
    store.delete("a")
    check(store.get("a") == null) { "not deleted" }
}

suspend fun switching(relay: Relay) {
    val root = tempDir("device")
    val keyDir = root.resolve("keys")
    val wrapper = SoftwareKeyWrapper()
    ProfileSwitcher(root, wrapper, WrappedKeyStore(keyDir)).use { device ->
        val alice = device.create("alice")
        alice.enrol(enrolOptions(relay.settings(), uniqueUser("alice")))
        alice.setKeepPeriodSecs(3_600u)
        val bob = device.create("bob") // the shift changes: alice's profile is locked
        check(alice.isClosed()) { "alice's profile stayed open" }
        expectThrows<OccException.Closed> { alice.threads() }
        expectEqual("bob", device.current.value?.name, "current")
        expectEqual(listOf("alice", "bob"), device.profiles(), "profiles")
        // Back to alice: her settings are hers, bob's profile is locked.
        val again = device.switchTo("alice")
        check(bob.isClosed()) { "bob's profile stayed open" }
        expectEqual(3_600uL, again.settings().keepPeriodSecs, "alice's keep period")
        device.lock()
        check(device.current.value == null && again.isClosed()) { "lock left a profile open" }
        // Wiping bob: files, wrapped key and platform key are gone.
        device.wipe("bob")
        expectEqual(listOf("alice"), device.profiles(), "after wipe")
        check(!keyDir.resolve("bob.key").exists()) { "bob's wrapped key survived" }
        expectThrows<IllegalArgumentException> { device.switchTo("bob") }
        check(device.switchTo("alice").threads().isEmpty()) { "alice reopened" }
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
            // The screen's clock moves on: the short one disappears without a reload…
            model.tick(t0 + 2_500)
            expectEqual(listOf("long"), model.items.value.map { it.text }, "after the TTL")
            // …and the core agrees once it is asked.
            delay(2_100)
            model.refresh()
            expectEqual(listOf("long"), model.items.value.map { it.text }, "reloaded")
            // A reply from the conversation reaches alice.
            model.send(dm.replyTo(), "reply", 600.seconds)
            bob.flush() // background sync would; this test drives it by hand
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
    ProfileSwitcher(root, SoftwareKeyWrapper(), WrappedKeyStore(root.resolve("keys"))).use { device ->
        val client = device.create("bob")
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
                // A message arriving later refreshes the open conversation by itself.
                alice.sendText(directTo(b), "and again", 600.seconds)
                alice.flush()
                eventually { model.items.value.size == 2 }
            }
            // An undeliverable message becomes an alert.
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
        )
        val v = promptView(prompt)
        check(v.canDownload && v.needsUnlock && v.urgent) { "$v" }
        check(v.body.startsWith("Do you want to download this OCC URGENT alert from alice (unverified) in Ops? (+2 more)")) { v.body }
        val denied = promptView(prompt.copy(decision = org.occ.Decision.Deny("not on this device"), urgent = false, messageClass = "file"))
        check(!denied.canDownload && denied.body.contains("cannot be downloaded")) { "$denied" }
        // The real entry point refuses a notice the relay did not sign.
        expectThrows<OccException.InvalidInput> { org.occ.verifyNotice(dir, key, "{}".toByteArray()) }
    }
}
