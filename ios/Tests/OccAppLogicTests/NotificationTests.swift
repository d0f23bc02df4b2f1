// The notification rules, without a relay or a profile (mirrors the parts
// of android/logic's tests that need neither): what each notification says
// and to whom, what a lock screen can see, what a withdrawal removes, how
// events become notifications, prompt views, countdown labels, and how a
// notification is presented on iOS.
import Foundation
import XCTest
import Occ
@testable import OccAppLogic

final class NotificationTextTests: XCTestCase {
    func testCountdownLabels() {
        XCTAssertEqual(countdownLabel(remainingMs: 0), "expired")
        XCTAssertEqual(countdownLabel(remainingMs: -5), "expired")
        XCTAssertEqual(countdownLabel(remainingMs: 9_400), "expires in 9 s")
        XCTAssertEqual(countdownLabel(remainingMs: 245_000), "expires in 4 min 05 s")
        XCTAssertEqual(countdownLabel(remainingMs: 615_000), "expires in 10 min 15 s")
        XCTAssertEqual(countdownLabel(remainingMs: (2 * 3600 + 3 * 60) * 1000), "expires in 2 h 3 min")
        XCTAssertEqual(countdownLabel(remainingMs: 30 * 86_400_000), "expires in 30 d 0 h")
    }

    func testAVerifiedNoticeBecomesAPromptView() {
        let prompt = downloadPrompt(
            senderVerified: false, messageClass: "alert", urgent: true, count: 3,
            decision: .confirm(reason: "the organisation asks you to unlock before downloading")
        )
        let v = promptView(prompt)
        XCTAssertTrue(v.canDownload && v.needsUnlock && v.urgent)
        XCTAssertTrue(v.body.hasPrefix("Do you want to download this OCC URGENT alert from alice (unverified) in Ops? (+2 more)"), v.body)
        var deniedPrompt = prompt
        deniedPrompt.decision = .deny(reason: "not on this device")
        deniedPrompt.urgent = false
        deniedPrompt.messageClass = "file"
        let denied = promptView(deniedPrompt)
        XCTAssertFalse(denied.canDownload)
        XCTAssertTrue(denied.body.contains("cannot be downloaded"), denied.body)
        XCTAssertTrue(denied.body.contains("file (900 bytes)"), denied.body)
        let unknown = promptView(downloadPrompt(threadTitle: nil, senderUser: nil))
        XCTAssertEqual(unknown.body, "Do you want to download this OCC message from an unknown sender?")
        XCTAssertEqual(promptNotification(profile: "p", prompt: prompt).key, noticeKey(String(repeating: "ab", count: 16)))
    }

    func testAPromptOffersDownloadAndDeclineAndShowsNothingOnTheLockScreen() {
        let n = promptNotification(profile: "bob", prompt: downloadPrompt(expiresMs: 42))
        XCTAssertEqual(n.profile, "bob")
        XCTAssertEqual(n.channel, .prompts)
        XCTAssertEqual(n.actions, [.download, .decline])
        XCTAssertEqual(n.title, ContentFree.title)
        XCTAssertTrue(n.text.hasPrefix("Do you want to download this OCC message from alice in Ops?"), n.text)
        XCTAssertEqual(n.publicText, ContentFree.message)
        XCTAssertEqual(n.timeoutAtMs, 42)
        XCTAssertFalse(n.breakThrough)
    }

    func testAnUrgentPromptBreaksThroughAndCanBeAcknowledged() {
        let n = promptNotification(profile: "bob", prompt: downloadPrompt(urgent: true))
        XCTAssertEqual(n.channel, .urgent)
        XCTAssertEqual(n.actions, [.download, .decline, .acknowledge])
        XCTAssertTrue(n.breakThrough)
        XCTAssertEqual(n.publicText, ContentFree.urgent)
    }

    func testADeniedPromptOffersNoAction() {
        let n = promptNotification(profile: "bob", prompt: downloadPrompt(decision: .deny(reason: "too large")))
        XCTAssertEqual(n.actions, [])
        XCTAssertEqual(NotificationCategory.of(n), .message)
    }

    func testALockedProfilesNoticeSaysNothingOfTheProfile() {
        let notice = LockedNotice(relayMessageId: "r1", messageClass: "text", urgent: false, count: 1, expiresMs: 77)
        let n = lockedNotification(profile: "bob", notice: notice)
        XCTAssertEqual(n.title, ContentFree.title)
        XCTAssertEqual(n.text, ContentFree.locked)
        XCTAssertEqual(n.publicText, ContentFree.locked)
        XCTAssertEqual(n.actions, [.unlock])
        XCTAssertEqual(n.key, noticeKey("r1"))
        XCTAssertEqual(n.timeoutAtMs, 77)
        XCTAssertEqual(n.channel, .prompts)
        var urgentNotice = notice
        urgentNotice.urgent = true
        let urgent = lockedNotification(profile: "bob", notice: urgentNotice)
        XCTAssertEqual(urgent.text, ContentFree.lockedUrgent)
        XCTAssertEqual(urgent.publicText, ContentFree.lockedUrgent)
        XCTAssertEqual(urgent.channel, .urgent)
        XCTAssertTrue(urgent.breakThrough)
    }

    func testAMessageShowsItsTextOnlyWithAPreview() {
        let plain = messageNotification(profile: "bob", key: threadKey("t1"), sender: "alice", threadTitle: "Ops",
                                        text: nil, urgent: false, deadlineMs: 5)
        XCTAssertEqual(plain.text, "Message from alice in Ops")
        XCTAssertEqual(plain.publicText, ContentFree.message)
        XCTAssertEqual(plain.channel, .messages)
        XCTAssertEqual(plain.actions, [])
        XCTAssertEqual(plain.timeoutAtMs, 5)
        let preview = messageNotification(profile: "bob", key: threadKey("t1"), sender: "alice", threadTitle: "Ops",
                                          text: "hi", urgent: false, deadlineMs: 5)
        XCTAssertEqual(preview.text, "Message from alice in Ops: hi")
        XCTAssertEqual(preview.publicText, ContentFree.message, "never on the lock screen")
        let direct = messageNotification(profile: "bob", key: "k", sender: "alice", threadTitle: "alice",
                                         text: nil, urgent: false, deadlineMs: 5, count: 3)
        XCTAssertEqual(direct.text, "3 messages from alice")
        let urgent = messageNotification(profile: "bob", key: "k", sender: "alice", threadTitle: nil,
                                         text: nil, urgent: true, deadlineMs: 5)
        XCTAssertEqual(urgent.text, "Urgent alert from alice")
        XCTAssertEqual(urgent.actions, [.acknowledge])
        XCTAssertEqual(urgent.channel, .urgent)
        XCTAssertEqual(urgent.publicText, ContentFree.urgent)
        XCTAssertEqual(NotificationCategory.of(urgent), .alert)
    }
}

final class NotificationCenterTests: XCTestCase {
    private func note(_ profile: String, _ key: String) -> AppNotification {
        AppNotification(profile: profile, key: key, channel: .messages, title: ContentFree.title, text: "t",
                        publicText: ContentFree.message, actions: [], timeoutAtMs: nil)
    }

    func testWithdrawalsRemoveExactlyWhatTheyName() {
        let poster = FakePoster()
        let center = OccAppLogic.NotificationCenter(poster: poster)
        center.show(note("bob", noticeKey("r1")), relayId: "r1")
        center.show(note("bob", threadKey("t1")), messageIds: ["m1", "m2"])
        center.show(note("carol", threadKey("t9")), messageIds: ["m1"])
        XCTAssertEqual(poster.posted.count, 3)
        XCTAssertEqual(center.keys(profile: "bob"), [noticeKey("r1"), threadKey("t1")])

        // One of two messages expired: the thread notification stays, for the other.
        center.withdraw(profile: "bob", messageIds: ["m1"], relayMessageIds: [], all: false)
        XCTAssertTrue(poster.cancelled.isEmpty)
        XCTAssertEqual(center.messageOf(profile: "bob", key: threadKey("t1")), "m2")
        // The other one expired: it goes.
        center.withdraw(profile: "bob", messageIds: ["m2"], relayMessageIds: [], all: false)
        XCTAssertEqual(poster.cancelled, [Cancelled(profile: "bob", key: threadKey("t1"))])
        // The prompt's notice lapsed: it goes.
        center.withdraw(profile: "bob", messageIds: [], relayMessageIds: ["r1"], all: false)
        XCTAssertTrue(poster.wasCancelled("bob", noticeKey("r1")))
        XCTAssertTrue(center.keys(profile: "bob").isEmpty)
        // Another profile's notification is untouched by bob's withdrawals.
        XCTAssertFalse(poster.wasCancelled("carol", threadKey("t9")))
        XCTAssertEqual(center.keys(profile: "carol"), [threadKey("t9")])
    }

    func testWithdrawingAllRemovesEveryNotificationOfTheProfile() {
        let poster = FakePoster()
        let center = OccAppLogic.NotificationCenter(poster: poster)
        center.show(note("bob", "a"))
        center.show(note("bob", "b"), messageIds: ["m"])
        center.show(note("carol", "c"))
        center.withdraw(profile: "bob", event: .withdrawNotifications(messageIds: [], relayMessageIds: [], all: true, reason: .locked))
        XCTAssertEqual(poster.cancelled, [Cancelled(profile: "bob", key: "a"), Cancelled(profile: "bob", key: "b")])
        XCTAssertTrue(center.keys(profile: "bob").isEmpty)
        XCTAssertEqual(center.keys(profile: "carol"), ["c"])
        center.cancelAll(profile: "nobody")
        XCTAssertEqual(poster.cancelled.count, 2)
        // Any other event withdraws nothing.
        center.withdraw(profile: "carol", event: .policyChanged)
        XCTAssertEqual(center.keys(profile: "carol"), ["c"])
    }

    func testShowingAgainReplacesAndAccumulates() {
        let poster = FakePoster()
        let center = OccAppLogic.NotificationCenter(poster: poster)
        center.show(note("bob", "k"), relayId: "r", messageIds: ["m1"])
        center.show(note("bob", "k"), messageIds: ["m2"])
        XCTAssertEqual(poster.posted.count, 2)
        XCTAssertEqual(center.keys(profile: "bob"), ["k"])
        XCTAssertEqual(center.messageOf(profile: "bob", key: "k"), "m1")
        // Still stands for r (kept from the first show) and for m2.
        center.withdraw(profile: "bob", messageIds: ["m1"], relayMessageIds: [], all: false)
        XCTAssertTrue(poster.cancelled.isEmpty, "m2 is still live")
        center.withdraw(profile: "bob", messageIds: [], relayMessageIds: ["r"], all: false)
        XCTAssertEqual(poster.cancelled, [Cancelled(profile: "bob", key: "k")])
    }

    func testATrackedNotificationIsWithdrawnThoughNeverPostedHere() {
        let poster = FakePoster()
        let center = OccAppLogic.NotificationCenter(poster: poster)
        center.track(profile: "bob", key: noticeKey("r7"), relayId: "r7")
        XCTAssertTrue(poster.posted.isEmpty)
        center.withdraw(profile: "bob", messageIds: [], relayMessageIds: ["r7"], all: false)
        XCTAssertEqual(poster.cancelled, [Cancelled(profile: "bob", key: noticeKey("r7"))])
    }

    func testANotificationBegunBeforeALockIsNotPostedAfterIt() {
        let poster = FakePoster()
        let center = OccAppLogic.NotificationCenter(poster: poster)
        let n = AppNotification(profile: "bob", key: noticeKey("1"), channel: .prompts, title: ContentFree.title,
                                text: "from alice in Ops", publicText: ContentFree.message, actions: [], timeoutAtMs: nil)
        let before = center.generation(profile: "bob")
        center.cancelAll(profile: "bob") // the user locks while the notice is being verified
        XCTAssertFalse(center.show(n, relayId: "1", generation: before), "posted after the lock")
        XCTAssertTrue(poster.posted.isEmpty, "posted: \(poster.posted)")
        XCTAssertTrue(center.keys(profile: "bob").isEmpty, "a refused notification was recorded")
        // Another profile's generation is its own.
        XCTAssertEqual(center.generation(profile: "carol"), 0)
        // Begun after the lock (or without a generation): posted.
        XCTAssertTrue(center.show(n, generation: center.generation(profile: "bob")), "a fresh one is not posted")
        XCTAssertEqual(poster.posted, [n], "posted once")
        // A withdrawal of everything is a new generation too.
        let current = center.generation(profile: "bob")
        center.withdraw(profile: "bob", messageIds: [], relayMessageIds: [], all: true)
        XCTAssertFalse(center.show(n, generation: current))
        XCTAssertEqual(poster.posted.count, 1)
    }
}

final class NotificationRouterTests: XCTestCase {
    private func received(_ thread: String, _ id: String, _ sender: String, urgent: Bool = false) -> ReceivedMessage {
        ReceivedMessage(threadId: thread, messageId: id, sender: sender, urgent: urgent)
    }

    func testReceivedMessagesBecomeOneNotificationPerThread() async {
        let poster = FakePoster()
        let center = OccAppLogic.NotificationCenter(poster: poster)
        let router = NotificationRouter(profile: "bob", center: center) { thread, _ in
            NotificationRouter.Described(threadTitle: thread == "t1" ? "Ops" : "carol", text: nil, deadlineMs: 99)
        }
        await router.handle(.messagesReceived(messages: [
            received("t1", "m1", "alice"), received("t2", "m2", "carol"), received("t1", "m3", "dave"),
        ]))
        let ops = poster.last(threadKey("t1"))
        XCTAssertEqual(ops?.text, "2 messages from dave in Ops")
        XCTAssertEqual(ops?.timeoutAtMs, 99)
        XCTAssertEqual(ops?.publicText, ContentFree.message)
        XCTAssertEqual(poster.last(threadKey("t2"))?.text, "Message from carol")
        // Both of t1's messages expire: its notification goes; t2's stays.
        await router.handle(.withdrawNotifications(messageIds: ["m1", "m3"], relayMessageIds: [], all: false, reason: .expired))
        XCTAssertEqual(poster.cancelled, [Cancelled(profile: "bob", key: threadKey("t1"))])
        XCTAssertEqual(center.keys(profile: "bob"), [threadKey("t2")])
    }

    func testAnUrgentMessageAndAPreview() async {
        let poster = FakePoster()
        let center = OccAppLogic.NotificationCenter(poster: poster)
        let router = NotificationRouter(profile: "bob", center: center) { _, _ in
            NotificationRouter.Described(threadTitle: "Ops", text: "evacuate", deadlineMs: 1)
        }
        await router.handle(.messagesReceived(messages: [received("t1", "m1", "alice", urgent: true)]))
        let n = poster.last(threadKey("t1"))
        XCTAssertEqual(n?.text, "Urgent alert from alice in Ops: evacuate")
        XCTAssertEqual(n?.channel, .urgent)
        XCTAssertEqual(n?.actions, [.acknowledge])
        XCTAssertEqual(n?.breakThrough, true)
    }

    func testAMessageDescribedWhileTheProfileIsLockedIsNotShown() async {
        let poster = FakePoster()
        let center = OccAppLogic.NotificationCenter(poster: poster)
        let router = NotificationRouter(profile: "bob", center: center) { _, _ in
            center.cancelAll(profile: "bob") // the user locks while the message is looked up
            return NotificationRouter.Described(threadTitle: "Ops", text: "evacuate", deadlineMs: 1)
        }
        await router.handle(.messagesReceived(messages: [received("t1", "m1", "alice")]))
        XCTAssertTrue(poster.posted.isEmpty, "posted after the lock: \(poster.posted)")
        XCTAssertTrue(center.keys(profile: "bob").isEmpty)
    }

    func testAMessageThatCannotBeDescribedIsNotShown() async {
        let poster = FakePoster()
        let router = NotificationRouter(profile: "bob", center: OccAppLogic.NotificationCenter(poster: poster)) { _, _ in nil }
        await router.handle(.messagesReceived(messages: [received("t1", "m1", "alice")]))
        XCTAssertTrue(poster.posted.isEmpty)
    }

    func testTheEndOfTheProfileRemovesEverything() async {
        for end in [ClientEvent.profileClosed, .profileWiped, .locked(locked: true)] {
            let poster = FakePoster()
            let center = OccAppLogic.NotificationCenter(poster: poster)
            let router = NotificationRouter(profile: "bob", center: center) { _, _ in nil }
            center.show(AppNotification(profile: "bob", key: "k", channel: .messages, title: ContentFree.title,
                                        text: "t", publicText: ContentFree.message, actions: [], timeoutAtMs: nil))
            await router.handle(.locked(locked: false))
            await router.handle(.connectionChanged(connected: true, reason: "ok"))
            XCTAssertTrue(poster.cancelled.isEmpty, "\(end)")
            await router.handle(end)
            XCTAssertEqual(poster.cancelled, [Cancelled(profile: "bob", key: "k")], "\(end)")
        }
    }
}

final class EventRouterTests: XCTestCase {
    func testAlertsAndTheConnectionReachTheScreens() async throws {
        // A client without a native object: these events never call it.
        let client = Client(noHandle: Client.NoHandle())
        let router = EventRouter(client: client, threads: ThreadsModel(client: client), conversations: { return [] })
        let alerts = router.alerts()
        let connection = router.connectionChanges()
        XCTAssertNil(router.connected)
        await router.handle(.deliveryFailed(messageId: "m", reason: "no such user"))
        await router.handle(.securityAlert(kind: .forgedNotice, detail: "bad signature"))
        await router.handle(.alertEscalated(messageId: "m", threadId: "t", unacknowledged: ["alice", "bob"]))
        await router.handle(.volumeAlert(count: 30, minutes: 5))
        await router.handle(.locked(locked: true))
        await router.handle(.profileWiped)
        await router.handle(.connectionChanged(connected: true, reason: "synced"))
        XCTAssertEqual(router.connected, true)
        let got = await firstValues(alerts, count: 6)
        XCTAssertEqual(got, [
            OccAppLogic.Alert(kind: "undelivered", detail: "no such user"),
            OccAppLogic.Alert(kind: "forged_notice", detail: "bad signature"),
            OccAppLogic.Alert(kind: "escalation", detail: "not acknowledged by alice, bob"),
            OccAppLogic.Alert(kind: "volume_alert", detail: "30 downloads within 5 minutes"),
            OccAppLogic.Alert(kind: "locked", detail: "locked by your organisation"),
            OccAppLogic.Alert(kind: "wiped", detail: "this profile was wiped by your organisation"),
        ])
        let changes = await firstValues(connection, count: 1)
        XCTAssertEqual(changes, [true])
    }
}

final class ApplePresentationTests: XCTestCase {
    func testEachSetOfActionsHasItsCategory() {
        XCTAssertEqual(NotificationCategory.of(promptNotification(profile: "b", prompt: downloadPrompt())), .prompt)
        XCTAssertEqual(NotificationCategory.of(promptNotification(profile: "b", prompt: downloadPrompt(urgent: true))), .urgent)
        let locked = lockedNotification(profile: "b", notice: LockedNotice(relayMessageId: "r", messageClass: "text", urgent: true, count: 1, expiresMs: 1))
        XCTAssertEqual(NotificationCategory.of(locked), .locked)
        XCTAssertEqual(NotificationCategory.prompt.identifier, "OCC_PROMPT")
        XCTAssertEqual(NotificationCategory.urgent.identifier, "OCC_URGENT")
        XCTAssertEqual(NotificationCategory.locked.identifier, "OCC_LOCKED")
        for category in NotificationCategory.allCases {
            XCTAssertTrue([ContentFree.message, ContentFree.urgent, ContentFree.locked].contains(category.hiddenPreviewsPlaceholder))
        }
    }

    func testActionIdentifiersRoundTrip() {
        for action in NotificationAction.allCases {
            XCTAssertEqual(NotificationAction(identifier: action.identifier), action)
        }
        XCTAssertEqual(NotificationAction.download.identifier, "OCC_DOWNLOAD")
        XCTAssertNil(NotificationAction(identifier: "com.apple.UNNotificationDefaultActionIdentifier"))
        XCTAssertEqual(NotificationAction.tap, .unlock)
        XCTAssertTrue(NotificationAction.decline.destructive)
        XCTAssertFalse(NotificationAction.download.destructive)
    }

    func testOnlyUrgentAlertsInterruptAndCriticalOnlyWhereAllowed() {
        let plain = promptNotification(profile: "b", prompt: downloadPrompt())
        let urgent = promptNotification(profile: "b", prompt: downloadPrompt(urgent: true))
        XCTAssertEqual(interruptionLevel(of: plain, criticalAlertsAllowed: true), .active)
        XCTAssertEqual(interruptionLevel(of: urgent, criticalAlertsAllowed: false), .timeSensitive)
        XCTAssertEqual(interruptionLevel(of: urgent, criticalAlertsAllowed: true), .critical)
    }

    func testTheBodyIsContentFreeWhenPreviewsShowOnTheLockScreen() {
        let n = promptNotification(profile: "b", prompt: downloadPrompt())
        XCTAssertEqual(visibleBody(of: n, previewsHiddenWhenLocked: true), n.text)
        XCTAssertEqual(visibleBody(of: n, previewsHiddenWhenLocked: false), ContentFree.message)
        XCTAssertFalse(visibleBody(of: n, previewsHiddenWhenLocked: false).contains("alice"))
    }

    func testUserInfoNamesTheNotificationAndItsDeadline() {
        let n = promptNotification(profile: "bob", prompt: downloadPrompt(relayMessageId: "r5", expiresMs: 1_000))
        var info: [AnyHashable: Any] = [:]
        for (k, v) in notificationUserInfo(n) { info[k] = v }
        XCTAssertEqual(notificationRef(userInfo: info)?.profile, "bob")
        XCTAssertEqual(notificationRef(userInfo: info)?.key, noticeKey("r5"))
        XCTAssertEqual(notificationRelayId(userInfo: info), "r5")
        XCTAssertFalse(isLapsed(userInfo: info, nowMs: 999))
        XCTAssertTrue(isLapsed(userInfo: info, nowMs: 1_000))
        XCTAssertNil(notificationRef(userInfo: ["aps": ["alert": "x"]]))
        XCTAssertFalse(isLapsed(userInfo: [:], nowMs: 1))
        XCTAssertEqual(notificationIdentifier(profile: "bob", key: noticeKey("r5")), "occ/bob/notice:r5")
        XCTAssertEqual(noticeBody(userInfo: [NotificationInfoKey.notice: "{\"a\":1}"]), Data("{\"a\":1}".utf8))
        XCTAssertNil(noticeBody(userInfo: [:]))
    }

    func testTheApnsEndpoint() {
        let token = Data([0x00, 0xff, 0x10, 0xab])
        XCTAssertEqual(apnsEndpoint(gateway: "push.example.org", deviceToken: token), "https://push.example.org/apns/00ff10ab")
        XCTAssertEqual(apnsEndpoint(gateway: "https://push.example.org/", deviceToken: token), "https://push.example.org/apns/00ff10ab")
    }

    func testUnlockMessages() {
        XCTAssertNil(UnlockResult.opened(Client(noHandle: Client.NoHandle())).message(profile: "bob"))
        XCTAssertEqual(UnlockResult.wrongCredential(attemptsLeft: 7, retryAfterMs: 5_000).message(profile: "bob"),
                       "Wrong PIN. 7 more wrong attempts wipe this profile. Try again in 5 s.")
        XCTAssertEqual(UnlockResult.tryLater(retryAfterMs: 1_200).message(profile: "bob"),
                       "Too many wrong attempts: try again in 2 s.")
        XCTAssertEqual(UnlockResult.wiped.message(profile: "bob"), "Too many wrong attempts: the profile bob was wiped.")
    }
}
