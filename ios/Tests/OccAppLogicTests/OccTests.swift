// The Swift mirror of the Kotlin tests (tests/kotlin and android/logic): the
// bindings against a real relay, then the app logic. They need a relay:
// start `occ-relay --dev` and set OCC_RELAY_URL, OCC_RELAY_PIN and
// OCC_RELAY_CA (its CA file), as scripts/test-kotlin.sh does; without them
// the relay tests are skipped.
import Foundation
import XCTest
import Occ
@testable import OccAppLogic

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

func uniqueUser(_ prefix: String) -> String {
    "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
}

func tempDir() throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("occ-swift-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

func enrolled(_ relay: TestRelay, _ prefix: String) async throws -> (Client, String) {
    let user = uniqueUser(prefix)
    let client = try Client.create(dir: try tempDir().path, key: try generateDatabaseKey())
    _ = try await client.enrol(options: EnrolOptions(relay: relay.settings(), user: user, pushEndpoint: nil, orgKey: nil, link: nil))
    return (client, user)
}

final class BindingTests: XCTestCase {
    func testTwoProfilesEnrolAndExchangeMessages() async throws {
        let relay = try TestRelay.fromEnvironment()
        let (alice, a) = try await enrolled(relay, "alice")
        let (bob, b) = try await enrolled(relay, "bob")
        let id = try await alice.sendText(to: .user(name: b), "hello from swift", ttl: 600)
        let v1 = try await alice.flush().sent
        XCTAssertEqual(v1, 1)
        let report = try await bob.receive(waitMs: 0)
        XCTAssertEqual(report.received.map(\.messageId), [id])
        let dm = try await bob.threads()[0]
        XCTAssertEqual(dm.title, a)
        let v2 = try await bob.messages(threadId: dm.id, limit: 50).map(\.text)
        XCTAssertEqual(v2, ["hello from swift"])
    }

    func testEventsArriveThroughTheStream() async throws {
        let relay = try TestRelay.fromEnvironment()
        let (alice, _) = try await enrolled(relay, "alice")
        let (bob, b) = try await enrolled(relay, "bob")
        let first = Task { () -> [ReceivedMessage] in
            for await event in bob.events() {
                if case let .messagesReceived(messages) = event { return messages }
            }
            return []
        }
        try await Task.sleep(nanoseconds: 200_000_000)
        let id = try await alice.sendText(to: .user(name: b), "streamed", ttl: 600)
        _ = try await alice.flush()
        _ = try await bob.receive(waitMs: 0)
        let v3 = await first.value.map(\.messageId)
        XCTAssertEqual(v3, [id])
    }

    func testTtlExpiryRemovesAMessage() async throws {
        let relay = try TestRelay.fromEnvironment()
        let (alice, _) = try await enrolled(relay, "alice")
        let (bob, b) = try await enrolled(relay, "bob")
        let id = try await alice.sendText(to: .user(name: b), "brief", ttl: 1)
        _ = try await alice.flush()
        _ = try await bob.receive(waitMs: 0)
        let v4 = try await bob.message(id: id).text
        XCTAssertEqual(v4, "brief")
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
        _ = try await alice.sendText(to: .user(name: b), "short keep", ttl: 3_600)
        _ = try await alice.flush()
        _ = try await bob.receive(waitMs: 0)
        let dm = try await bob.threads()[0].id
        let v5 = try await bob.messages(threadId: dm, limit: 50).count
        XCTAssertEqual(v5, 1)
        try await Task.sleep(nanoseconds: 1_500_000_000)
        let v6 = try await bob.messages(threadId: dm, limit: 50).count
        XCTAssertEqual(v6, 0)
    }

    func testWrongPinIsTypedAndCarriesThePresentedPins() async throws {
        let relay = try TestRelay.fromEnvironment()
        let client = try Client.create(dir: try tempDir().path, key: try generateDatabaseKey())
        let wrong = "sha256/" + String(repeating: "A", count: 43) + "="
        do {
            _ = try await client.enrol(options: EnrolOptions(relay: relay.settings(pins: [wrong]), user: uniqueUser("x"), pushEndpoint: nil, orgKey: nil, link: nil))
            XCTFail("a wrong pin was accepted")
        } catch let OccError.PinMismatch(host, presented) {
            XCTAssertEqual(host, "localhost")
            XCTAssertTrue(presented.contains(relay.pin))
        }
    }

    func testWrongDatabaseKeyIsItsOwnError() throws {
        let dir = try tempDir().path
        _ = try Client.create(dir: dir, key: try generateDatabaseKey())
        XCTAssertThrowsError(try Client.open(dir: dir, key: try generateDatabaseKey())) { error in
            XCTAssertEqual(error as? OccError, .WrongKey)
        }
    }

    func testCancellingALongPollReturnsPromptly() async throws {
        let relay = try TestRelay.fromEnvironment()
        let (bob, _) = try await enrolled(relay, "bob")
        let poll = Task { try await bob.receive(waitMs: 25_000) }
        try await Task.sleep(nanoseconds: 500_000_000)
        let started = Date()
        poll.cancel()
        _ = await poll.result
        XCTAssertLessThan(Date().timeIntervalSince(started), 1.0)
        let v7 = try await bob.threads().count
        XCTAssertEqual(v7, 0)
    }

    func testManyTasksCallOneClientAtOnce() async throws {
        let relay = try TestRelay.fromEnvironment()
        let (alice, _) = try await enrolled(relay, "alice")
        let (_, b) = try await enrolled(relay, "bob")
        let ids = try await withThrowingTaskGroup(of: String.self) { group in
            for i in 0..<20 { group.addTask { try await alice.sendText(to: .user(name: b), "m\(i)", ttl: 600) } }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        XCTAssertEqual(ids.count, 20)
        let dm = try await alice.threads()[0].id
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { _ = try await alice.flush() }
            for _ in 0..<50 { group.addTask { do { let v8 = try await alice.messages(threadId: dm, limit: 50).count; XCTAssertEqual(v8, 20) } } }
            try await group.waitForAll()
        }
    }

    func testClosedObjectsRaiseClosed() async throws {
        let relay = try TestRelay.fromEnvironment()
        let (client, _) = try await enrolled(relay, "closer")
        client.closeProfile()
        XCTAssertTrue(client.isClosed())
        do {
            _ = try await client.threads()
            XCTFail("a closed client answered")
        } catch OccError.Closed {}
    }
}

final class AppLogicTests: XCTestCase {
    func testCountdownLabels() {
        XCTAssertEqual(countdownLabel(remainingMs: 0), "expired")
        XCTAssertEqual(countdownLabel(remainingMs: 9_400), "expires in 9 s")
        XCTAssertEqual(countdownLabel(remainingMs: 245_000), "expires in 4 min 05 s")
        XCTAssertEqual(countdownLabel(remainingMs: (2 * 3600 + 3 * 60) * 1000), "expires in 2 h 3 min")
        XCTAssertEqual(countdownLabel(remainingMs: 30 * 86_400_000), "expires in 30 d 0 h")
    }

    func testKeysAreStoredWrappedAndBoundToTheirProfile() throws {
        let wrapper = SoftwareKeyWrapper()
        let key = Data((0..<32).map { UInt8($0) })
        let wrapped = try wrapper.wrap(alias: "occ-profile-a", key: key)
        XCTAssertNil(wrapped.range(of: key))
        XCTAssertEqual(try wrapper.unwrap(alias: "occ-profile-a", wrapped: wrapped), key)
        XCTAssertThrowsError(try wrapper.unwrap(alias: "occ-profile-b", wrapped: wrapped))
    }

    func testASharedDeviceSwitchesLocksAndWipes() async throws {
        let relay = try TestRelay.fromEnvironment()
        let root = try tempDir()
        let device = try ProfileSwitcher(root: root, wrapper: SoftwareKeyWrapper(),
                                         keys: try WrappedKeyStore(dir: root.appendingPathComponent("keys")))
        let alice = try device.create(name: "alice")
        _ = try await alice.enrol(options: EnrolOptions(relay: relay.settings(), user: uniqueUser("alice"), pushEndpoint: nil, orgKey: nil, link: nil))
        try await alice.setKeepPeriodSecs(secs: 3_600)
        let bob = try device.create(name: "bob")
        XCTAssertTrue(alice.isClosed())
        XCTAssertEqual(try device.profiles(), ["alice", "bob"])
        let again = try device.switchTo(name: "alice")
        XCTAssertTrue(bob.isClosed())
        let v9 = try await again.settings().keepPeriodSecs
        XCTAssertEqual(v9, 3_600)
        try device.wipe(name: "bob")
        XCTAssertEqual(try device.profiles(), ["alice"])
        XCTAssertThrowsError(try device.switchTo(name: "bob"))
    }

    func testAConversationCountsDownAndDropsWhatExpires() async throws {
        let relay = try TestRelay.fromEnvironment()
        let (alice, a) = try await enrolled(relay, "alice")
        let (bob, b) = try await enrolled(relay, "bob")
        _ = try await alice.sendText(to: .user(name: b), "short", ttl: 2)
        _ = try await alice.sendText(to: .user(name: b), "long", ttl: 3_600)
        _ = try await alice.flush()
        _ = try await bob.receive(waitMs: 0)
        let threads = ThreadsModel(client: bob)
        try await threads.refresh()
        let dm = threads.threads[0]
        XCTAssertEqual(dm.replyTo(), .user(name: a))
        let model = ConversationModel(client: bob, threadId: dm.id)
        let t0 = Int64(Date().timeIntervalSince1970 * 1000)
        try await model.refresh(screenNowMs: t0)
        XCTAssertEqual(model.items.map(\.text), ["long", "short"])
        model.tick(screenNowMs: t0 + 2_500)
        XCTAssertEqual(model.items.map(\.text), ["long"])
    }
}
