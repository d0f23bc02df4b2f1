// The app logic against a real relay (mirrors android/logic's tests that
// need one): a conversation counting down and dropping what expires, events
// refreshing the screens and raising alerts, background work, the push
// endpoint, and a malformed notice for an enrolled profile. Skipped unless
// OCC_RELAY_URL, OCC_RELAY_PIN and OCC_RELAY_CA are set. (The push path
// from a real notice to a notification and back needs a push gateway the
// relay posts to; the Kotlin tests cover it against the same core.)
import Foundation
import XCTest
import Occ
@testable import OccAppLogic

final class RelayLogicTests: XCTestCase {
    func testAConversationCountsDownAndDropsWhatExpires() async throws {
        let relay = try TestRelay.fromEnvironment()
        let (alice, a) = try await enrolled(relay, "alice")
        let (bob, b) = try await enrolled(relay, "bob")
        try await alice.sendText(to: directTo(b), "short", ttl: 2)
        try await alice.sendText(to: directTo(b), "long", ttl: 3_600)
        _ = try await alice.flush()
        _ = try await bob.receive(waitMs: 0)
        let threads = ThreadsModel(client: bob)
        try await threads.refresh()
        XCTAssertEqual(threads.threads.count, 1)
        let dm = threads.threads[0]
        XCTAssertEqual(dm.replyTo(), directTo(a), "a direct reply goes to the other user")
        let model = ConversationModel(client: bob, threadId: dm.id)
        let t0 = deviceNowMs()
        try await model.refresh(screenNowMs: t0)
        XCTAssertEqual(model.items.map(\.text), ["long", "short"], "newest first")
        let short = model.items.last?.countdown ?? ""
        XCTAssertTrue(short == "expires in 1 s" || short == "expires in 2 s", short)
        XCTAssertTrue(model.items.first?.countdown.hasPrefix("expires in 59 min") == true, model.items.first?.countdown ?? "")
        model.tick(screenNowMs: t0 + 2_500)
        XCTAssertEqual(model.items.map(\.text), ["long"], "after the TTL")
        try await Task.sleep(nanoseconds: 2_100_000_000)
        try await model.refresh()
        XCTAssertEqual(model.items.map(\.text), ["long"], "reloaded")
        try await model.send(to: dm.replyTo(), "reply", ttl: 600)
        _ = try await bob.flush()
        _ = try await alice.sync()
        let replies = try await alice.messages(threadId: dm.id, limit: 10).filter { !$0.outgoing }.map(\.text)
        XCTAssertEqual(replies, ["reply"])
        let settings = SettingsModel(client: bob)
        try await settings.setKeepPeriod(secs: 1)
        XCTAssertEqual(settings.keepPeriodSecs, 1)
        try await Task.sleep(nanoseconds: 1_200_000_000)
        try await model.refresh()
        XCTAssertTrue(model.items.isEmpty, "kept past the keep period")
    }

    func testEventsRefreshTheScreensAndRaiseAlerts() async throws {
        let relay = try TestRelay.fromEnvironment()
        let (alice, _) = try await enrolled(relay, "alice")
        let dev = try device(try tempDir("session"))
        let client = try await dev.createWithPin(name: "bob", pin: testPin)
        let session = ProfileSession(name: "bob", client: client)
        defer { session.close() }
        let enrolledBefore = try await session.isEnrolled()
        XCTAssertFalse(enrolledBefore, "enrolled too early")
        let b = uniqueUser("bob")
        try await session.enrol(url: relay.url, pin: relay.pin, user: b, caPem: relay.caPem)
        let enrolledAfter = try await session.isEnrolled()
        XCTAssertTrue(enrolledAfter)
        try await session.startSync()
        try await session.startSync() // idempotent
        try await eventually { session.events.connected == true }
        try await alice.sendText(to: directTo(b), "routed", ttl: 600)
        _ = try await alice.flush()
        try await eventually { session.threads.threads.count == 1 }
        let model = session.conversation(threadId: session.threads.threads[0].id)
        try await model.refresh()
        XCTAssertEqual(model.items.map(\.text), ["routed"])
        try await alice.sendText(to: directTo(b), "and again", ttl: 600)
        _ = try await alice.flush()
        try await eventually { model.items.count == 2 }
        session.release(model)

        let alerts = session.events.alerts()
        try await client.sendText(to: directTo("nobody-\(uniqueUser("x"))"), "lost", ttl: 600)
        let first = await firstValues(alerts, count: 1)
        XCTAssertEqual(first.map(\.kind), ["undelivered"])
    }

    func testBackgroundWorkSyncsAndPurgesTheOpenProfile() async throws {
        let relay = try TestRelay.fromEnvironment()
        let (alice, _) = try await enrolled(relay, "alice")
        let dev = try device(try tempDir("work"))
        let work = BackgroundWork(profiles: dev)
        let nothing = try await work.run()
        XCTAssertEqual(nothing, .nothingOpen)
        let bob = try await dev.createWithPin(name: "bob", pin: testPin)
        let user = uniqueUser("bob")
        _ = try await bob.enrol(options: enrolOptions(relay: relay.settings(), user: user))
        try await alice.sendText(to: directTo(user), "short-lived", ttl: 1)
        _ = try await alice.flush()
        let synced = try await work.run()
        XCTAssertEqual(synced, .success)
        let threads = try await bob.threads()
        XCTAssertEqual(threads.count, 1, "received by the background run")
        try await Task.sleep(nanoseconds: 1_200_000_000)
        _ = try await work.run()
        let left = try await bob.messages(threadId: threads[0].id, limit: 10)
        XCTAssertTrue(left.isEmpty, "purged by the background run")
        dev.lock()
        let closed = try await work.run()
        XCTAssertEqual(closed, .nothingOpen)
    }

    func testANewPushEndpointReachesTheRelayOnce() async throws {
        let relay = try TestRelay.fromEnvironment()
        let dev = try device(try tempDir("endpoint"))
        let client = try await dev.createWithPin(name: "bob", pin: testPin)
        let session = ProfileSession(name: "bob", client: client)
        defer { session.close() }
        let first = apnsEndpoint(gateway: "localhost:9", deviceToken: Data([1, 2, 3]))
        let enrolment = try await session.enrol(url: relay.url, pin: relay.pin, user: uniqueUser("bob"),
                                                caPem: relay.caPem, pushEndpoint: first)
        XCTAssertEqual(enrolment.pushEndpoint, first)
        try await session.onNewPushEndpoint(first) // unchanged: nothing to tell
        let second = apnsEndpoint(gateway: "localhost:9", deviceToken: Data([4, 5, 6]))
        try await session.onNewPushEndpoint(second)
        let now = try await client.enrolment()?.pushEndpoint
        XCTAssertEqual(now, second)
        try await session.onNewPushEndpoint(nil)
        let stopped = try await client.enrolment()?.pushEndpoint
        XCTAssertNil(stopped)
    }

    func testAMalformedNoticeIsInvalidInput() async throws {
        let relay = try TestRelay.fromEnvironment()
        let dir = try tempDir("notice").path
        let key = try generateDatabaseKey()
        let bob = try await Client.create(dir: dir, key: key)
        _ = try await bob.enrol(options: enrolOptions(relay: relay.settings(), user: uniqueUser("bob")))
        do {
            _ = try await verifyNotice(dir: dir, key: key, notice: Data("{}".utf8))
            XCTFail("a malformed notice was verified")
        } catch OccError.InvalidInput {}
    }
}
