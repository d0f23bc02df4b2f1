// FFI costs seen from Kotlin on the JVM, in one run (`scripts/test-kotlin.sh
// --bench`): a trivial call (blocking and suspend), listing 50 messages,
// receiving 1,000 messages through the event listener, and resident memory
// across 100,000 calls.
package org.occ.tests

import java.io.File
import java.util.concurrent.atomic.AtomicInteger
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.runBlocking
import org.occ.ClientEvent
import org.occ.EventListener
import org.occ.directTo
import org.occ.sendText

private fun rssKb(): Long =
    File("/proc/self/status").readLines().first { it.startsWith("VmRSS:") }
        .filter { it.isDigit() }.toLong()

private inline fun nsPer(n: Int, block: () -> Unit): Double {
    val t = System.nanoTime()
    repeat(n) { block() }
    return (System.nanoTime() - t).toDouble() / n
}

private fun median(xs: List<Double>): Double = xs.sorted()[xs.size / 2]

fun main() = runBlocking {
    val relay = Relay.fromEnvironment()
    val (alice, _) = enrolled(relay, "bench-a")
    val (bob, b) = enrolled(relay, "bench-b")

    // Warm up the JIT and JNA.
    repeat(20_000) { bob.isClosed() }
    repeat(2_000) { bob.nowMs() }
    val blocking = median((1..5).map { nsPer(100_000) { bob.isClosed() } })
    val suspending = median((1..5).map { nsPer(10_000) { runBlocking { bob.nowMs() } } })

    repeat(50) { alice.sendText(directTo(b), "message $it " + "x".repeat(100), 600.seconds) }
    alice.flush()
    bob.receive(0u)
    val dm = bob.threads().single().id
    repeat(200) { bob.messages(dm, 50u) }
    val list50 = median((1..5).map { nsPer(1_000) { runBlocking { check(bob.messages(dm, 50u).size == 50) { "list" } } } })

    // 1,000 messages through the listener: one event per inbox page.
    val events = AtomicInteger()
    val delivered = AtomicInteger()
    bob.setListener(object : EventListener {
        override fun onEvent(event: ClientEvent) {
            if (event is ClientEvent.MessagesReceived) {
                events.incrementAndGet()
                delivered.addAndGet(event.messages.size)
            }
        }
    })
    repeat(1_000) { alice.sendText(directTo(b), "burst $it", 600.seconds) }
    alice.flush()
    val t = System.nanoTime()
    var got = 0
    while (got < 1_000) got += bob.receive(0u).items.size
    val receiveMs = (System.nanoTime() - t) / 1e6
    eventually { delivered.get() == 1_000 }

    // Memory across 200,000 calls (heap capped at 64 MB by the script, so
    // RSS reflects native memory, not heap growth): one warm-up round, then
    // twenty measured rounds of 10,000 trivial calls and 1,000 listings.
    repeat(10_000) { bob.isClosed() }
    repeat(1_000) { bob.messages(dm, 50u) }
    System.gc()
    val rss0 = rssKb()
    val samples = mutableListOf<Long>()
    repeat(20) {
        repeat(10_000) { bob.isClosed() }
        repeat(1_000) { bob.messages(dm, 50u) }
        System.gc()
        samples.add(rssKb())
    }

    println()
    println("## occ FFI from Kotlin (JVM ${System.getProperty("java.version")}, one run)")
    println()
    println("| measurement | figure |")
    println("|---|---|")
    println("| trivial blocking call (`isClosed`), median of 5 × 100,000 | %.0f ns".format(blocking) + " |")
    println("| trivial suspend call (`nowMs`, incl. runBlocking), median of 5 × 10,000 | %.1f µs".format(suspending / 1e3) + " |")
    println("| list 50 messages (`messages(thread, 50)`), median of 5 × 1,000 | %.1f µs".format(list50 / 1e3) + " |")
    println("| receive 1,000 messages with a listener | %.0f ms (%.0f msg/s), %d listener calls".format(receiveMs, 1_000 / (receiveMs / 1e3), events.get()) + " |")
    val late = samples.takeLast(10)
    println("| RSS after warm-up / after 200,000 `isClosed` + 20,000 `messages(…, 50)` | $rss0 kB / ${samples.last()} kB; last 10 rounds within ${late.min()}–${late.max()} kB (all: ${samples.joinToString()}) |")
    alice.close()
    bob.close()
}
