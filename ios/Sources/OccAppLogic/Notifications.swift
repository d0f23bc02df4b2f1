// What the phone shows in its notification list, and when it must go
// (mirrors the Android logic's Notifications.kt).
//
// The rules, in plain words:
// - A lock screen never shows content, a sender or a thread: every
//   notification's public text is content-free ("New occ message"), and its
//   title is always "occ".
// - A locked profile's notification says only that something arrived and
//   offers "Unlock"; nothing of that profile is looked up or shown.
// - Message text appears in a notification only when the organisation's
//   policy allows previews, and never on the lock screen.
// - A notification goes when its message expires or is purged, when its
//   push notice lapses, and — all of a profile's at once — when the profile
//   is locked, switched away from or wiped. The core says so
//   (`withdrawNotifications`); the shell also removes what passed its
//   `timeoutAtMs` when it next runs, as iOS has no timeout of its own.
import Foundation
import Occ

/// Content-free text for lock screens, locked profiles and the extension's
/// fallbacks.
public enum ContentFree {
    public static let title = "occ"
    public static let message = "New occ message"
    public static let urgent = "Urgent occ alert"
    public static let locked = "New occ message — unlock your profile to see it"
    public static let lockedUrgent = "Urgent occ alert — unlock your profile to see it"
    /// What the iOS extension shows for a push it could not verify (it
    /// cannot suppress the notification; it can keep it empty).
    public static let unverified = "An occ notification could not be verified"
}

/// The notification key of a push prompt for relay message `relayId`.
public func noticeKey(_ relayId: String) -> String { "notice:\(relayId)" }

/// The notification key of messages received in `threadId`.
public func threadKey(_ threadId: String) -> String { "thread:\(threadId)" }

/// A verified prompt of an open profile, as a notification.
public func promptNotification(profile: String, prompt: DownloadPrompt) -> AppNotification {
    let view = promptView(prompt)
    var actions: [NotificationAction] = []
    if view.canDownload {
        actions = [.download, .decline]
        if prompt.urgent { actions.append(.acknowledge) }
    }
    return AppNotification(
        profile: profile,
        key: noticeKey(prompt.relayMessageId),
        channel: prompt.urgent ? .urgent : .prompts,
        title: view.title,
        text: view.body,
        publicText: prompt.urgent ? ContentFree.urgent : ContentFree.message,
        actions: actions,
        timeoutAtMs: prompt.expiresMs,
        breakThrough: prompt.urgent
    )
}

/// A verified notice of a locked profile: nothing of the profile in it.
public func lockedNotification(profile: String, notice: LockedNotice) -> AppNotification {
    let text = notice.urgent ? ContentFree.lockedUrgent : ContentFree.locked
    return AppNotification(
        profile: profile,
        key: noticeKey(notice.relayMessageId),
        channel: notice.urgent ? .urgent : .prompts,
        title: ContentFree.title,
        text: text,
        publicText: text,
        actions: [.unlock],
        timeoutAtMs: notice.expiresMs,
        breakThrough: notice.urgent
    )
}

/// A stored message as a notification (after a download, or received while
/// the app runs): who and where; its text only with a preview (`text`).
public func messageNotification(
    profile: String,
    key: String,
    sender: String,
    threadTitle: String?,
    text: String?,
    urgent: Bool,
    deadlineMs: Int64,
    count: Int = 1
) -> AppNotification {
    var place = ""
    if let title = threadTitle, title != sender { place = " in \(title)" }
    let what = urgent ? "Urgent alert" : (count > 1 ? "\(count) messages" : "Message")
    let head = "\(what) from \(sender)\(place)"
    return AppNotification(
        profile: profile,
        key: key,
        channel: urgent ? .urgent : .messages,
        title: ContentFree.title,
        text: text.map { "\(head): \($0)" } ?? head,
        publicText: urgent ? ContentFree.urgent : ContentFree.message,
        actions: urgent ? [.acknowledge] : [],
        timeoutAtMs: deadlineMs,
        breakThrough: urgent
    )
}

/// The notifications shown, per profile, with the messages and push notices
/// each stands for, so that a withdrawal removes exactly what it must.
/// (Named like Foundation's NotificationCenter: outside this module write
/// `OccAppLogic.NotificationCenter`.)
public final class NotificationCenter: @unchecked Sendable {
    private struct Shown {
        var relayId: String?
        var messageIds: [String] // in the order they were added, no repeats
    }

    private struct ProfileShown {
        var order: [String] = []
        var byKey: [String: Shown] = [:]

        mutating func remove(_ key: String) {
            byKey[key] = nil
            order.removeAll { $0 == key }
        }
    }

    private let poster: NotificationPoster
    private let lock = NSLock()
    private var shown: [String: ProfileShown] = [:]
    private var generations: [String: Int64] = [:]

    public init(poster: NotificationPoster) { self.poster = poster }

    /// The profile's generation: `cancelAll` (a lock, a switch, a wipe)
    /// starts a new one. Work that began before it (a notice being
    /// verified, a message being downloaded or described when the user
    /// locked) must not post after it: it captures the generation first and
    /// passes it to `show`.
    public func generation(profile: String) -> Int64 {
        locked { generations[profile] ?? 0 }
    }

    /// Posts `n` (replacing its key), standing for `relayId` and
    /// `messageIds` — unless `generation` is given and the profile was
    /// locked since (it is no longer the profile's generation): then
    /// nothing is posted or recorded and it returns false.
    @discardableResult
    public func show(
        _ n: AppNotification,
        relayId: String? = nil,
        messageIds: Set<String> = [],
        generation: Int64? = nil
    ) -> Bool {
        locked { () -> Bool in
            if let generation, generation != (generations[n.profile] ?? 0) { return false }
            record(profile: n.profile, key: n.key, relayId: relayId, messageIds: messageIds)
            poster.post(n)
            return true
        }
    }

    /// Records a notification that is already shown without posting it (on
    /// iOS, one the notification extension posted while the app was not
    /// running), so that withdrawals find it.
    public func track(profile: String, key: String, relayId: String? = nil, messageIds: Set<String> = []) {
        locked { record(profile: profile, key: key, relayId: relayId, messageIds: messageIds) }
    }

    /// Removes one notification.
    public func cancel(profile: String, key: String) {
        locked { cancelLocked(profile: profile, key: key) }
    }

    /// Removes every notification of `profile` and starts its next
    /// generation (what began before is not posted after).
    public func cancelAll(profile: String) {
        locked { cancelAllLocked(profile: profile) }
    }

    /// Removes what a `withdrawNotifications` event names.
    public func withdraw(profile: String, messageIds: [String], relayMessageIds: [String], all: Bool) {
        locked {
            if all {
                cancelAllLocked(profile: profile)
                return
            }
            guard let current = shown[profile] else { return }
            let relay = Set(relayMessageIds)
            let messages = Set(messageIds)
            let doomed = current.order.filter { key in
                guard let s = current.byKey[key] else { return false }
                let lapsed = s.relayId.map { relay.contains($0) } ?? false
                let expired = !s.messageIds.isEmpty && s.messageIds.allSatisfy { messages.contains($0) }
                return lapsed || expired
            }
            for key in doomed { cancelLocked(profile: profile, key: key) }
            // A thread notification that still stands for live messages
            // keeps only those.
            if var left = shown[profile] {
                for key in left.order {
                    left.byKey[key]?.messageIds.removeAll { messages.contains($0) }
                }
                shown[profile] = left
            }
        }
    }

    /// Removes what `event` withdraws, if it is a `withdrawNotifications`.
    public func withdraw(profile: String, event: ClientEvent) {
        if case let .withdrawNotifications(messageIds, relayMessageIds, all, _) = event {
            withdraw(profile: profile, messageIds: messageIds, relayMessageIds: relayMessageIds, all: all)
        }
    }

    /// The keys shown for `profile`.
    public func keys(profile: String) -> Set<String> {
        locked { Set(shown[profile]?.order ?? []) }
    }

    /// The message a notification stands for, if it stands for one.
    public func messageOf(profile: String, key: String) -> String? {
        locked { shown[profile]?.byKey[key]?.messageIds.first }
    }

    private func locked<R>(_ body: () throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    private func record(profile: String, key: String, relayId: String?, messageIds: Set<String>) {
        var p = shown[profile] ?? ProfileShown()
        let previous = p.byKey[key]
        var ids = previous?.messageIds ?? []
        for id in messageIds.sorted() where !ids.contains(id) { ids.append(id) }
        if previous == nil { p.order.append(key) }
        p.byKey[key] = Shown(relayId: relayId ?? previous?.relayId, messageIds: ids)
        shown[profile] = p
    }

    private func cancelLocked(profile: String, key: String) {
        shown[profile]?.remove(key)
        poster.cancel(profile: profile, key: key)
    }

    private func cancelAllLocked(profile: String) {
        generations[profile] = (generations[profile] ?? 0) + 1
        guard let p = shown.removeValue(forKey: profile) else { return }
        for key in p.order { poster.cancel(profile: profile, key: key) }
    }
}

/// Routes one open profile's events to the notification list: withdrawals,
/// the end of the profile (closed, wiped, locked by the organisation), and
/// messages that arrived while the app runs (content only with the policy's
/// previews, which `describe` applies).
public final class NotificationRouter: @unchecked Sendable {
    /// What a received message looks like in a notification.
    public struct Described: Equatable, Sendable {
        public let threadTitle: String?
        public let text: String?
        public let deadlineMs: Int64

        public init(threadTitle: String?, text: String?, deadlineMs: Int64) {
            self.threadTitle = threadTitle
            self.text = text
            self.deadlineMs = deadlineMs
        }
    }

    private let profile: String
    private let center: NotificationCenter
    private let describe: (_ threadId: String, _ messageId: String) async -> Described?

    public init(
        profile: String,
        center: NotificationCenter,
        describe: @escaping (_ threadId: String, _ messageId: String) async -> Described?
    ) {
        self.profile = profile
        self.center = center
        self.describe = describe
    }

    public func handle(_ event: ClientEvent) async {
        switch event {
        case let .withdrawNotifications(messageIds, relayMessageIds, all, _):
            center.withdraw(profile: profile, messageIds: messageIds, relayMessageIds: relayMessageIds, all: all)
        case .profileClosed, .profileWiped:
            center.cancelAll(profile: profile)
        case let .locked(isLocked):
            if isLocked { center.cancelAll(profile: profile) }
        case let .messagesReceived(messages):
            for (threadId, batch) in groupedByThread(messages) {
                // Captured before describing: if the profile is locked
                // meanwhile, the notification (which names the sender) is
                // not posted after the lock.
                let generation = center.generation(profile: profile)
                guard let newest = batch.last,
                      let d = await describe(threadId, newest.messageId) else { continue }
                let key = threadKey(threadId)
                let count = batch.count + (center.keys(profile: profile).contains(key) ? 1 : 0)
                center.show(
                    messageNotification(
                        profile: profile, key: key, sender: newest.sender, threadTitle: d.threadTitle,
                        text: d.text, urgent: batch.contains { $0.urgent }, deadlineMs: d.deadlineMs, count: count
                    ),
                    messageIds: Set(batch.map { $0.messageId }),
                    generation: generation
                )
            }
        default:
            break
        }
    }

    /// The messages per thread, threads in the order they first appear.
    private func groupedByThread(_ messages: [ReceivedMessage]) -> [(String, [ReceivedMessage])] {
        var order: [String] = []
        var byThread: [String: [ReceivedMessage]] = [:]
        for m in messages {
            if byThread[m.threadId] == nil { order.append(m.threadId) }
            byThread[m.threadId, default: []].append(m)
        }
        return order.map { ($0, byThread[$0] ?? []) }
    }
}
