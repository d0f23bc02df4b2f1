// The app logic over the real native library, without a relay (mirrors
// android/logic's tests of the same things): key wrapping, the
// shared-device lock (PIN, back-off, wipe, platform user authentication,
// switching), withdrawal of a profile's notifications when it is locked,
// switched away from or wiped, and the push path's refusals.
import Foundation
import XCTest
import Occ
@testable import OccAppLogic

final class KeyTests: XCTestCase {
    func testKeysAreStoredWrappedAndBoundToTheirProfile() throws {
        let wrapper = SoftwareKeyWrapper()
        let key = Data((0..<32).map { UInt8($0) })
        let wrapped = try wrapper.wrap(alias: "occ-profile-a", key: key)
        XCTAssertNil(wrapped.range(of: key), "key stored in the clear")
        XCTAssertEqual(try wrapper.unwrap(alias: "occ-profile-a", wrapped: wrapped), key)
        XCTAssertThrowsError(try wrapper.unwrap(alias: "occ-profile-b", wrapped: wrapped))
        var flipped = wrapped
        flipped[flipped.index(before: flipped.endIndex)] ^= 1
        XCTAssertThrowsError(try wrapper.unwrap(alias: "occ-profile-a", wrapped: flipped))
        wrapper.forget(alias: "occ-profile-a")
        XCTAssertThrowsError(try wrapper.unwrap(alias: "occ-profile-a", wrapped: wrapped), "a forgotten key still opened")

        let dir = try tempDir("keys")
        let store = try WrappedKeyStore(dir: dir)
        try store.put(profile: "a", wrapped: wrapped)
        XCTAssertEqual(store.get(profile: "a"), wrapped)
        let mode = try FileManager.default.attributesOfItem(atPath: dir.appendingPathComponent("a.key").path)[.posixPermissions] as? NSNumber
        XCTAssertEqual(mode?.intValue, 0o600)
        store.delete(profile: "a")
        XCTAssertNil(store.get(profile: "a"))
    }
}

final class DeviceProfileTests: XCTestCase {
    func testAWrongPinBacksOffTheRightOneOpensTooManyWipe() async throws {
        let root = try tempDir("device")
        let dev = try device(root)
        let alice = try await dev.createWithPin(name: "alice", pin: testPin)
        dev.lock()
        XCTAssertTrue(alice.isClosed(), "lock left alice open")
        XCTAssertNil(dev.current)
        do {
            _ = try await alice.threads()
            XCTFail("a locked profile answered")
        } catch OccError.Closed {}
        // Whoever holds the phone cannot reopen alice without her PIN.
        for attempt in 1...2 {
            let r = try await dev.unlock(name: "alice", pin: Data("000000".utf8))
            XCTAssertEqual(r, .wrongCredential(attemptsLeft: 10 - attempt, retryAfterMs: 0), "attempt \(attempt)")
        }
        let third = try await dev.unlock(name: "alice", pin: Data("000000".utf8))
        XCTAssertEqual(third, .wrongCredential(attemptsLeft: 7, retryAfterMs: 5_000))
        // Backing off: even the right PIN waits, and is not counted.
        let early = try await dev.unlock(name: "alice", pin: testPin)
        guard case let .tryLater(wait) = early, (1...5_000).contains(wait) else {
            return XCTFail("early: \(early)")
        }
        try await Task.sleep(nanoseconds: 5_100_000_000)
        let result1 = try await dev.unlock(name: "alice", pin: testPin)
        let again = try opened(result1)
        XCTAssertFalse(again.isClosed())
        XCTAssertEqual(dev.current?.name, "alice")
        let status = try await dev.manager.lockStatus(name: "alice")
        XCTAssertEqual(status.failures, 0, "a success resets the count")
        XCTAssertTrue(status.hasCredential)
        dev.close()

        // Too many failures wipe the profile: its files and its wrapped secrets.
        let strict = try device(root, options: LockOptions(maxFailures: 3, cost: 10))
        let carol = try await strict.createWithPin(name: "carol", pin: Data("carol-pass".utf8))
        strict.lock()
        XCTAssertTrue(carol.isClosed())
        for _ in 1...2 {
            let r = try await strict.unlock(name: "carol", pin: Data("wrong".utf8))
            guard case .wrongCredential = r else { return XCTFail("not counted: \(r)") }
        }
        let last = try await strict.unlock(name: "carol", pin: Data("wrong".utf8))
        XCTAssertEqual(last, .wiped, "the last failure wipes")
        XCTAssertFalse(FileManager.default.fileExists(atPath: root.appendingPathComponent("profiles/carol").path))
        XCTAssertFalse(files(in: root.appendingPathComponent("keys")).contains { $0.hasPrefix("carol.") }, "carol's wrapped secret survived")
        let listed = try await strict.profiles()
        XCTAssertEqual(listed, ["alice"])
        do {
            _ = try await strict.unlock(name: "carol", pin: Data("carol-pass".utf8))
            XCTFail("a wiped profile unlocked")
        } catch let error as ProfileError {
            XCTAssertEqual(error, .noSuchProfile("carol"))
        }
    }

    func testCreatingATakenNameIsRefusedAndLeavesThatProfileAlone() async throws {
        let root = try tempDir("taken")
        let auth = FakeUserAuth()
        let dev = try device(root, userAuth: auth)
        let store = try WrappedKeyStore(dir: root.appendingPathComponent("keys"))
        try await dev.createWithPin(name: "alice", pin: testPin)
        try await dev.createWithUserAuth(name: "dana")
        dev.lock()
        let aliceSecret = store.get(profile: "alice.secret")
        let danaSecret = store.get(profile: "dana.secret")
        let danaCredential = store.get(profile: "dana.credential")
        XCTAssertNotNil(aliceSecret)
        XCTAssertNotNil(danaCredential)
        // Whoever holds the phone cannot destroy alice's (or dana's)
        // profile by creating one with her name: refused before anything of
        // hers is touched.
        for name in ["alice", "dana"] {
            do {
                try await dev.createWithPin(name: name, pin: Data("mallory-pin".utf8))
                XCTFail("created a PIN profile over \(name)")
            } catch let error as ProfileError {
                XCTAssertEqual(error, .nameTaken(name))
            }
            do {
                try await dev.createWithUserAuth(name: name)
                XCTFail("created a user-auth profile over \(name)")
            } catch let error as ProfileError {
                XCTAssertEqual(error, .nameTaken(name))
            }
        }
        XCTAssertEqual(store.get(profile: "alice.secret"), aliceSecret, "alice's wrapped secret changed")
        XCTAssertEqual(store.get(profile: "dana.secret"), danaSecret, "dana's wrapped secret changed")
        XCTAssertEqual(store.get(profile: "dana.credential"), danaCredential, "dana's wrapped credential changed")
        XCTAssertFalse(dev.usesUserAuth(name: "alice"))
        let result1 = try await dev.unlock(name: "alice", pin: testPin)
        _ = try opened(result1)
        let status = try await dev.manager.lockStatus(name: "alice")
        XCTAssertEqual(status.failures, 0)
        auth.authenticated = true
        let result2 = try await dev.unlockWithUserAuth(name: "dana")
        _ = try opened(result2)
        let names = try await dev.profiles()
        XCTAssertEqual(names, ["alice", "dana"])
    }

    func testAProfileWhoseKeysCannotBeStoredIsRemovedAgain() async throws {
        let root = try tempDir("unstored")
        let dev = try device(root, userAuth: RefusingUserAuth())
        do {
            try await dev.createWithUserAuth(name: "gus")
            XCTFail("created without its wrapped credential")
        } catch is RefusingUserAuth.NoBiometrics {}
        XCTAssertNil(dev.current)
        let names = try await dev.profiles()
        XCTAssertEqual(names, [], "a half-made profile stayed")
        XCTAssertFalse(files(in: root.appendingPathComponent("keys")).contains { $0.hasPrefix("gus.") }, "gus's wrapped secret stayed")
        // Nothing half-made blocks the name.
        try await dev.createWithPin(name: "gus", pin: testPin)
        XCTAssertEqual(dev.current?.name, "gus")
    }

    func testSwitchingLocksOneAndUnlocksTheOther() async throws {
        let root = try tempDir("switch")
        let dev = try device(root)
        let day = try await dev.createWithPin(name: "day", pin: Data("day-shift".utf8))
        let night = try await dev.createWithPin(name: "night", pin: Data("night-shift".utf8))
        XCTAssertTrue(day.isClosed(), "creating another profile locks the open one")
        XCTAssertEqual(dev.current?.name, "night")
        XCTAssertNil(dev.openClient(name: "day"))
        XCTAssertTrue(dev.openClient(name: "night") === night)
        let result2 = try await dev.unlock(name: "day", pin: Data("day-shift".utf8))
        let back = try opened(result2)
        XCTAssertTrue(night.isClosed())
        XCTAssertTrue(dev.openClient(name: "day") === back)
        let names = try await dev.profiles()
        XCTAssertEqual(names, ["day", "night"])
        try await dev.wipe(name: "day")
        XCTAssertTrue(back.isClosed())
        XCTAssertNil(dev.current)
        let left = try await dev.profiles()
        XCTAssertEqual(left, ["night"])
    }

    func testUserAuthenticationUnlocksOnlyAfterThePlatformAuthenticated() async throws {
        let root = try tempDir("userauth")
        let auth = FakeUserAuth()
        let dev = try device(root, userAuth: auth)
        try await dev.createWithUserAuth(name: "dana")
        XCTAssertTrue(dev.usesUserAuth(name: "dana"))
        dev.lock()
        let before = try await dev.unlockWithUserAuth(name: "dana")
        XCTAssertEqual(before, .needsUserAuthentication, "before the platform prompt")
        let status = try await dev.manager.lockStatus(name: "dana")
        XCTAssertEqual(status.failures, 0, "nothing counted")
        auth.authenticated = true
        let result3 = try await dev.unlockWithUserAuth(name: "dana")
        _ = try opened(result3)
        try await dev.wipe(name: "dana")
        XCTAssertFalse(files(in: root.appendingPathComponent("keys")).contains { $0.hasPrefix("dana.") }, "dana's wrapped keys survived")
        // A PIN profile does not unlock with user authentication, and a
        // device without it cannot create such profiles.
        try await dev.createWithPin(name: "erin", pin: testPin)
        XCTAssertFalse(dev.usesUserAuth(name: "erin"))
        do {
            _ = try await dev.unlockWithUserAuth(name: "erin")
            XCTFail("a PIN profile unlocked with user authentication")
        } catch let error as ProfileError {
            XCTAssertEqual(error, .notUsingUserAuthentication("erin"))
        }
        let plain = try device(try tempDir("plain"))
        do {
            try await plain.createWithUserAuth(name: "fay")
            XCTFail("created without user authentication")
        } catch let error as ProfileError {
            XCTAssertEqual(error, .noUserAuthentication)
        }
    }

    func testLockSwitchAndWipeWithdrawTheProfilesNotifications() async throws {
        let root = try tempDir("withdraw")
        let dev = try device(root)
        let poster = FakePoster()
        let center = OccAppLogic.NotificationCenter(poster: poster)
        func shown(_ key: String) -> AppNotification {
            messageNotification(profile: "bob", key: key, sender: "alice", threadTitle: nil, text: nil, urgent: false, deadlineMs: Int64.max)
        }

        // Locked: everything goes.
        let bob = try await dev.createWithPin(name: "bob", pin: testPin)
        var session = ProfileSession(name: "bob", client: bob, notifications: center)
        center.show(shown("a"))
        center.show(shown("b"))
        dev.lock()
        try await eventually { poster.wasCancelled("bob", "a") && poster.wasCancelled("bob", "b") }
        XCTAssertTrue(center.keys(profile: "bob").isEmpty)
        session.close()

        // Switched away from: bob's go when the other profile opens.
        let result4 = try await dev.unlock(name: "bob", pin: testPin)
        let again = try opened(result4)
        session = ProfileSession(name: "bob", client: again, notifications: center)
        center.show(shown("c"))
        try await dev.createWithPin(name: "relief", pin: Data("relief-pin".utf8))
        try await eventually { poster.wasCancelled("bob", "c") }
        session.close()

        // Wiped while open: they go too.
        let result5 = try await dev.unlock(name: "bob", pin: testPin)
        let last = try opened(result5)
        session = ProfileSession(name: "bob", client: last, notifications: center)
        center.show(shown("d"))
        try await dev.manager.wipe(name: "bob")
        try await eventually { poster.wasCancelled("bob", "d") }
        session.close()
    }

    func testBackgroundWorkWithNothingOpen() async throws {
        let dev = try device(try tempDir("work"))
        let result = try await BackgroundWork(profiles: dev).run()
        XCTAssertEqual(result, .nothingOpen)
    }
}

final class PushRefusalTests: XCTestCase {
    func testWhatIsNotANoticePostsNothing() async throws {
        let root = try tempDir("push")
        let dev = try device(root)
        let poster = FakePoster()
        let handler = PushHandler(profiles: dev, center: OccAppLogic.NotificationCenter(poster: poster))
        try await dev.createWithPin(name: "bob", pin: testPin)
        for body in [Data("{}".utf8), Data("not json".utf8), Data()] {
            let outcome = await handler.onMessage(body: body)
            guard case .refused = outcome else { return XCTFail("accepted: \(outcome)") }
        }
        // Not even for a named profile, open or locked.
        let open = await handler.onMessage(body: Data("{}".utf8), instance: "bob")
        guard case .refused = open else { return XCTFail("accepted for the open profile: \(open)") }
        dev.lock()
        let locked = await handler.onMessage(body: Data("{}".utf8), instance: "bob")
        guard case .refused = locked else { return XCTFail("accepted for the locked profile: \(locked)") }
        XCTAssertTrue(poster.posted.isEmpty)
    }

    func testAnAnswerForALockedProfileAsksForItsUnlock() async throws {
        let dev = try device(try tempDir("answer"))
        let poster = FakePoster()
        let handler = PushHandler(profiles: dev, center: OccAppLogic.NotificationCenter(poster: poster))
        try await dev.createWithPin(name: "bob", pin: testPin)
        dev.lock()
        for action in NotificationAction.allCases {
            let outcome = try await handler.onAction(profile: "bob", key: noticeKey("ab"), action: action)
            XCTAssertEqual(outcome, .needsUnlock, "\(action)")
        }
        // Unlock is always "show the unlock screen", open or not.
        try await dev.createWithPin(name: "carol", pin: testPin)
        let unlock = try await handler.onAction(profile: "carol", key: noticeKey("ab"), action: .unlock)
        XCTAssertEqual(unlock, .needsUnlock)
        XCTAssertTrue(poster.posted.isEmpty)
    }

    func testTheExtensionRefusesWhatIsNotANotice() async throws {
        let dev = try device(try tempDir("extension"))
        try await dev.createWithPin(name: "bob", pin: testPin)
        dev.lock()
        let decider = NoticeExtension(manager: dev.manager, sessionKeys: FakeSessionKeys())
        let outcome = await decider.notification(for: Data("{}".utf8))
        guard case .refused = outcome else { return XCTFail("accepted: \(outcome)") }
        do {
            _ = try await verifyNoticeLocked(dir: try dev.dir(name: "bob"), notice: Data("{}".utf8))
            XCTFail("a malformed notice was verified")
        } catch is OccError {}
    }
}
