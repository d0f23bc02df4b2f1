// The Swift mirror of the Kotlin binding tests (tests/kotlin): the generated
// bindings and the thin layer, over the real native library. Some need only
// the library (the checksum check, typed errors, subscriptions, `Closed`);
// the others need a relay: start `occ-relay --dev` and set OCC_RELAY_URL,
// OCC_RELAY_PIN and OCC_RELAY_CA (its CA file), as scripts/test-kotlin.sh
// does. Without them those are skipped (XCTSkip).
import Foundation
import XCTest
import Occ

struct TestRelay {
    let url: String
    let pin: String
    let caPem: String

    static func fromEnvironment() throws -> TestRelay {
        let env = ProcessInfo.processInfo.environment
        guard let url = env["OCC_RELAY_URL"], let pin = env["OCC_RELAY_PIN"], let ca = env["OCC_RELAY_CA"] else {
            throw XCTSkip("set OCC_RELAY_URL, OCC_RELAY_PIN and OCC_RELAY_CA to run against a relay")
        }
        return TestRelay(url: url, pin: pin, caPem: try String(contentsOfFile: ca, encoding: .utf8))
    }

    func settings(pins: [String]? = nil) -> RelaySettings {
        relaySettings(url: url, pins: pins ?? [pin], caPem: caPem)
    }
}

struct TimedOut: Error {}

func uniqueUser(_ prefix: String) -> String {
    "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
}

func tempDir() throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("occ-swift-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

func newClient() async throws -> Client {
    try await Client.create(dir: try tempDir().path, key: try generateDatabaseKey())
}

func enrolled(_ relay: TestRelay, _ prefix: String) async throws -> (Client, String) {
    let user = uniqueUser(prefix)
    let client = try await newClient()
    _ = try await client.enrol(options: enrolOptions(relay: relay.settings(), user: user))
    return (client, user)
}

/// Every event of `stream` until it ends, described (the generated types are
/// not Sendable before Swift 6, so tasks hand back text); throws `TimedOut`
/// if it has not ended within `seconds`.
func drain(_ stream: AsyncStream<ClientEvent>, within seconds: Double = 10) async throws -> [String] {
    let collect = Task { () -> [String] in
        var seen: [String] = []
        for await event in stream { seen.append("\(event)") }
        return seen
    }
    let timer = Task { () -> Bool in
        do {
            try await Task.sleep(nanoseconds: UInt64(seconds * 1_000_000_000))
        } catch {
            return false // cancelled: the stream ended in time
        }
        collect.cancel()
        return true
    }
    let seen = await collect.value
    timer.cancel()
    if await timer.value { throw TimedOut() }
    return seen
}

final class BindingTests: XCTestCase {
    func testTheNativeLibraryMatchesTheBindings() throws {
        let version = try ensureNativeLibrary()
        XCTAssertFalse(version.isEmpty)
        XCTAssertEqual(version, coreVersion())
    }

    func testWrongDatabaseKeyIsItsOwnError() async throws {
        let dir = try tempDir().path
        let first = try await Client.create(dir: dir, key: try generateDatabaseKey())
        do {
            _ = try await Client.open(dir: dir, key: try generateDatabaseKey())
            XCTFail("a wrong key opened the profile")
        } catch let error as OccError {
            XCTAssertEqual(error, .WrongKey)
        }
        XCTAssertFalse(first.isClosed())
    }

    func testClosedObjectsRaiseClosed() async throws {
        let client = try await newClient()
        client.closeProfile()
        XCTAssertTrue(client.isClosed())
        do {
            _ = try await client.threads()
            XCTFail("a closed client answered")
        } catch OccError.Closed {}
    }

    func testEverySubscriptionSeesTheProfileCloseAndEnds() async throws {
        let client = try await newClient()
        let first = client.events()
        let second = client.events()
        client.closeProfile()
        for stream in [first, second] {
            let seen = try await drain(stream)
            XCTAssertEqual(seen.last, "\(ClientEvent.profileClosed)", "seen: \(seen)")
        }
    }

    func testCancellingTheIteratingTaskEndsItsSubscription() async throws {
        let client = try await newClient()
        let stream = client.events()
        let iterating = Task { () -> Int in
            var n = 0
            for await _ in stream { n += 1 }
            return n
        }
        try await Task.sleep(nanoseconds: 100_000_000)
        let started = Date()
        iterating.cancel()
        _ = await iterating.value
        XCTAssertLessThan(Date().timeIntervalSince(started), 1.0)
        XCTAssertFalse(client.isClosed(), "ending a subscription leaves the profile open")
    }

    func testTwoProfilesEnrolAndExchangeMessages() async throws {
        let relay = try TestRelay.fromEnvironment()
        let (alice, a) = try await enrolled(relay, "alice")
        let (bob, b) = try await enrolled(relay, "bob")
        let id = try await alice.sendText(to: directTo(b), "hello from swift", ttl: 600)
        let sent = try await alice.flush().sent
        XCTAssertEqual(sent, 1)
        let report = try await bob.receive(waitMs: 0)
        XCTAssertEqual(report.received.map(\.messageId), [id])
        let dm = try await bob.threads()[0]
        XCTAssertEqual(dm.title, a)
        let texts = try await bob.messages(threadId: dm.id, limit: 50).map(\.text)
        XCTAssertEqual(texts, ["hello from swift"])
    }

    func testEventsArriveThroughEveryStream() async throws {
        let relay = try TestRelay.fromEnvironment()
        let (alice, _) = try await enrolled(relay, "alice")
        let (bob, b) = try await enrolled(relay, "bob")
        func firstReceived(_ stream: AsyncStream<ClientEvent>) -> Task<[String], Never> {
            Task {
                for await event in stream {
                    if case let .messagesReceived(messages) = event { return messages.map(\.messageId) }
                }
                return []
            }
        }
        // Subscribed before anything happens: the streams subscribe when made.
        let one = firstReceived(bob.events())
        let two = firstReceived(bob.events())
        let id = try await alice.sendText(to: directTo(b), "streamed", ttl: 600)
        _ = try await alice.flush()
        _ = try await bob.receive(waitMs: 0)
        let v1 = await one.value
        let v2 = await two.value
        XCTAssertEqual(v1, [id])
        XCTAssertEqual(v2, [id])
    }

    func testTtlExpiryRemovesAMessage() async throws {
        let relay = try TestRelay.fromEnvironment()
        let (alice, _) = try await enrolled(relay, "alice")
        let (bob, b) = try await enrolled(relay, "bob")
        let id = try await alice.sendText(to: directTo(b), "brief", ttl: 1)
        _ = try await alice.flush()
        _ = try await bob.receive(waitMs: 0)
        let text = try await bob.message(id: id).text
        XCTAssertEqual(text, "brief")
        try await Task.sleep(nanoseconds: 1_500_000_000)
        do {
            _ = try await bob.message(id: id)
            XCTFail("an expired message was returned")
        } catch OccError.Expired {}
    }

    func testKeepPeriodApplies() async throws {
        let relay = try TestRelay.fromEnvironment()
        let (alice, _) = try await enrolled(relay, "alice")
        let (bob, b) = try await enrolled(relay, "bob")
        try await bob.setKeepPeriodSecs(secs: 1)
        _ = try await alice.sendText(to: directTo(b), "short keep", ttl: 3_600)
        _ = try await alice.flush()
        _ = try await bob.receive(waitMs: 0)
        let dm = try await bob.threads()[0].id
        let before = try await bob.messages(threadId: dm, limit: 50).count
        XCTAssertEqual(before, 1)
        try await Task.sleep(nanoseconds: 1_500_000_000)
        let after = try await bob.messages(threadId: dm, limit: 50).count
        XCTAssertEqual(after, 0)
    }

    func testWrongPinIsTypedAndCarriesThePresentedPins() async throws {
        let relay = try TestRelay.fromEnvironment()
        let client = try await newClient()
        let wrong = "sha256/" + String(repeating: "A", count: 43) + "="
        do {
            _ = try await client.enrol(options: enrolOptions(relay: relay.settings(pins: [wrong]), user: uniqueUser("x")))
            XCTFail("a wrong pin was accepted")
        } catch let OccError.PinMismatch(host, presented) {
            XCTAssertEqual(host, "localhost")
            XCTAssertTrue(presented.contains(relay.pin))
        }
    }

    func testThePushEndpointCanBeReplaced() async throws {
        let relay = try TestRelay.fromEnvironment()
        let (bob, _) = try await enrolled(relay, "bob")
        let before = try await bob.enrolment()?.pushEndpoint
        XCTAssertNil(before)
        let endpoint = "https://localhost:9/apns/00ff00ff"
        try await bob.setPushEndpoint(endpoint: endpoint)
        let after = try await bob.enrolment()?.pushEndpoint
        XCTAssertEqual(after, endpoint)
        try await bob.setPushEndpoint(endpoint: nil)
        let stopped = try await bob.enrolment()?.pushEndpoint
        XCTAssertNil(stopped)
    }

    // UniFFI's Swift bindings do not cancel a core call when its task is
    // cancelled (the call runs to its end on the core's threads; only the
    // event stream has its own cancel). What matters on a phone is that a
    // long poll holds up nothing else.
    func testALongPollHoldsUpNoOtherCall() async throws {
        let relay = try TestRelay.fromEnvironment()
        let (bob, _) = try await enrolled(relay, "bob")
        let poll = Task { () -> Int in (try? await bob.receive(waitMs: 3_000))?.items.count ?? -1 }
        try await Task.sleep(nanoseconds: 300_000_000)
        let started = Date()
        let threads = try await bob.threads().count
        XCTAssertLessThan(Date().timeIntervalSince(started), 1.0)
        XCTAssertEqual(threads, 0)
        let received = await poll.value
        XCTAssertEqual(received, 0)
    }

    func testManyTasksCallOneClientAtOnce() async throws {
        let relay = try TestRelay.fromEnvironment()
        let (alice, _) = try await enrolled(relay, "alice")
        let (_, b) = try await enrolled(relay, "bob")
        let ids = try await withThrowingTaskGroup(of: String.self) { group in
            for i in 0..<20 { group.addTask { try await alice.sendText(to: directTo(b), "m\(i)", ttl: 600) } }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        XCTAssertEqual(ids.count, 20)
        let dm = try await alice.threads()[0].id
        let counts = try await withThrowingTaskGroup(of: Int.self) { group in
            group.addTask { _ = try await alice.flush(); return 20 }
            for _ in 0..<50 { group.addTask { try await alice.messages(threadId: dm, limit: 50).count } }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        XCTAssertEqual(counts, Array(repeating: 20, count: 51))
    }
}
