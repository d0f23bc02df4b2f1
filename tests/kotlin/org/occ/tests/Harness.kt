// A small test harness for the Kotlin bindings, run on the JVM against a real
// `occ-relay --dev` on loopback (started by scripts/test-kotlin.sh). Each test
// is a suspend function; the runner reports every failure and exits non-zero
// if any test failed.
package org.occ.tests

import java.io.File
import java.nio.file.Files
import java.util.concurrent.atomic.AtomicInteger
import kotlin.system.exitProcess
import kotlin.time.Duration
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.occ.Client
import org.occ.RelaySettings
import org.occ.relaySettings
import org.occ.enrolOptions

/** The relay under test, as scripts/test-kotlin.sh describes it. */
class Relay(val url: String, val pin: String, val caPem: String) {
    fun settings(pins: List<String> = listOf(pin)): RelaySettings = relaySettings(url, pins, caPem)

    companion object {
        fun fromEnvironment(): Relay {
            fun env(name: String) = System.getenv(name) ?: error("$name is not set (run scripts/test-kotlin.sh)")
            return Relay(env("OCC_RELAY_URL"), env("OCC_RELAY_PIN"), File(env("OCC_RELAY_CA")).readText())
        }
    }
}

private val counter = AtomicInteger()
private val run = System.nanoTime().toString(36).takeLast(6)

/** A user name no other test (or earlier run against the same relay) uses. */
fun uniqueUser(prefix: String): String = "$prefix-$run-${counter.incrementAndGet()}"

/** A fresh empty directory. */
fun tempDir(prefix: String): File = Files.createTempDirectory("occ-kt-$prefix").toFile().also { it.deleteOnExit() }

/** 32 random bytes. */
fun newKey(): ByteArray = org.occ.generateDatabaseKey()

/** A new profile, enrolled as a fresh user; returns the client and its user name. */
suspend fun enrolled(relay: Relay, prefix: String): Pair<Client, String> {
    val user = uniqueUser(prefix)
    val client = Client.create(tempDir(user).path, newKey())
    client.enrol(enrolOptions(relay.settings(), user))
    return client to user
}

/**
 * A push gateway on loopback HTTPS, standing in for a UnifiedPush
 * distributor's server: the relay POSTs its signed notices here, and what
 * arrives is exactly the `bytesMessage` the distributor hands the app. Its
 * certificate comes from scripts/test-kotlin.sh (`OCC_PUSH_P12`), whose CA the
 * relay trusts for push (`--push-ca`).
 */
class PushGateway : AutoCloseable {
    private val bodies = java.util.concurrent.LinkedBlockingQueue<ByteArray>()
    private val server: com.sun.net.httpserver.HttpsServer

    init {
        val p12 = System.getenv("OCC_PUSH_P12") ?: error("OCC_PUSH_P12 is not set (run scripts/test-kotlin.sh)")
        val password = "occtest".toCharArray()
        val store = java.security.KeyStore.getInstance("PKCS12").apply { File(p12).inputStream().use { load(it, password) } }
        val kmf = javax.net.ssl.KeyManagerFactory.getInstance(javax.net.ssl.KeyManagerFactory.getDefaultAlgorithm())
        kmf.init(store, password)
        val tls = javax.net.ssl.SSLContext.getInstance("TLS").apply { init(kmf.keyManagers, null, null) }
        server = com.sun.net.httpserver.HttpsServer.create(java.net.InetSocketAddress("127.0.0.1", 0), 16)
        server.httpsConfigurator = com.sun.net.httpserver.HttpsConfigurator(tls)
        server.createContext("/") { ex ->
            bodies.add(ex.requestBody.readBytes())
            ex.sendResponseHeaders(204, -1)
            ex.close()
        }
        server.start()
    }

    /** The endpoint to register for a profile. */
    val url: String get() = "https://localhost:${server.address.port}/push"

    /** The next body the relay POSTs (waits up to [timeout]). */
    fun next(timeout: Duration = 10.seconds): ByteArray =
        bodies.poll(timeout.inWholeMilliseconds, java.util.concurrent.TimeUnit.MILLISECONDS)
            ?: throw TestFailure("no push arrived within $timeout")

    override fun close() = server.stop(0)
}

/** Polls [check] until it holds or [timeout] passes. */
suspend fun eventually(timeout: Duration = 10.seconds, check: suspend () -> Boolean) {
    withTimeout(timeout) {
        while (!check()) delay(20)
    }
}

class TestFailure(message: String) : AssertionError(message)

fun check(condition: Boolean, message: () -> String) {
    if (!condition) throw TestFailure(message())
}

fun <T> expectEqual(expected: T, actual: T, what: String = "value") {
    if (expected != actual) throw TestFailure("$what: expected <$expected>, got <$actual>")
}

/** Runs [block] and returns what it threw, failing if it threw nothing. */
suspend inline fun <reified E : Throwable> expectThrows(block: suspend () -> Unit): E {
    try {
        block()
    } catch (e: Throwable) {
        if (e is E) return e
        throw TestFailure("expected ${E::class.simpleName}, got $e")
    }
    throw TestFailure("expected ${E::class.simpleName}, nothing was thrown")
}

typealias Test = suspend (Relay) -> Unit

/** Runs the named tests; exits 1 if any failed. */
fun runTests(suite: String, tests: List<Pair<String, Test>>, timeout: Duration = 60.seconds) {
    val relay = Relay.fromEnvironment()
    var failed = 0
    for ((name, test) in tests) {
        val started = System.nanoTime()
        try {
            runBlocking { withTimeout(timeout) { test(relay) } }
            println("ok     $suite: $name (${(System.nanoTime() - started) / 1_000_000} ms)")
        } catch (e: Throwable) {
            failed++
            println("FAILED $suite: $name: $e")
            e.printStackTrace(System.out)
        }
    }
    println("$suite: ${tests.size - failed} passed, $failed failed")
    if (failed > 0) exitProcess(1)
}
