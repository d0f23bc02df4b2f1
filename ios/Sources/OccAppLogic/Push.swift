// The push path, from the bytes a push delivers to a notification and back
// from the user's answer (mirrors the Android logic's Push.kt):
//
// 1. APNs delivers the relay's signed notice exactly as the relay POSTed it
//    to the push gateway (the gateway puts it, as UTF-8 text, under the
//    payload's "notice" key). The handler finds the profile it is for (the
//    instance it was registered for, or the device the notice names).
// 2. Open profile: the core verifies it (`verifyNotice`: the relay's
//    signature, this device, not expired, not a replay; the sender and
//    thread looked up; the organisation's policy applied) and the prompt is
//    posted — "Do you want to download this OCC message?" with Download and
//    Decline (and Acknowledge for an urgent alert). If the profile was
//    locked while the notice was verified, nothing is posted (the
//    notification generation captured first is stale).
// 3. Locked profile: the core verifies it without the key
//    (`verifyNoticeLocked`) and a content-free notification with "Unlock"
//    is posted: no sender, no thread, nothing of the profile.
// 4. A forged, replayed or expired notice posts nothing; the core records
//    it (audited, or for a locked profile at its next unlock).
// 5. The answer: Download fetches, verifies and stores the one message and
//    replaces the prompt with the message's notification; Decline tells the
//    core (the message is never stored) and removes the prompt; Acknowledge
//    downloads if needed and acknowledges the urgent alert.
//
// On iOS the notification extension runs steps 1–3 while the app is not
// running (see Extension.swift); the app runs them itself for a push that
// arrives while it is in the foreground, and always runs step 5.
import Foundation
import Occ

/// What became of one push.
public enum PushOutcome: Equatable, Sendable {
    /// An open profile's prompt was posted under `key`.
    case prompted(profile: String, key: String)
    /// A locked profile's content-free notification was posted under `key`.
    case promptedLocked(profile: String, key: String)
    /// Refused (forged, replayed, expired, not for a profile here): nothing posted.
    case refused(reason: String)
}

/// What became of the user's answer to a notification.
public enum ActionOutcome: Equatable, Sendable {
    case downloaded(messageId: String?)
    case declined
    case acknowledged(messageId: String)
    /// The profile is locked: unlock it first (the shell shows its unlock screen).
    case needsUnlock
    /// The message can no longer be had (expired, denied).
    case gone(reason: String)
}

/// Turns pushes into notifications and notification actions into core calls.
public final class PushHandler: @unchecked Sendable {
    private let profiles: DeviceProfiles
    private let center: NotificationCenter
    /// Whether each prompt's policy allows a preview once downloaded, by relay id.
    private let previews = Protected<[String: Bool]>([:])

    public init(profiles: DeviceProfiles, center: NotificationCenter) {
        self.profiles = profiles
        self.center = center
    }

    /// One push's notice, as delivered; `instance` is the profile it was
    /// registered for, if known.
    public func onMessage(body: Data, instance: String? = nil) async -> PushOutcome {
        let profile: String
        do {
            if let instance {
                profile = instance
            } else if let found = try await profiles.manager.profileForNotice(notice: body) {
                profile = found
            } else {
                return .refused(reason: "no profile on this device has that device")
            }
        } catch {
            return .refused(reason: "\(error)")
        }
        // Captured first: if the user locks while the notice is verified,
        // the prompt (which names the sender) is not posted after the lock.
        let generation = center.generation(profile: profile)
        do {
            if let client = profiles.openClient(name: profile) {
                let prompt = try await client.verifyNotice(notice: body)
                let n = promptNotification(profile: profile, prompt: prompt)
                guard center.show(n, relayId: prompt.relayMessageId, generation: generation) else {
                    return .refused(reason: "the profile was locked meanwhile")
                }
                previews.withLock { $0[prompt.relayMessageId] = prompt.previews }
                return .prompted(profile: profile, key: n.key)
            } else {
                let dir = try profiles.dir(name: profile)
                let notice = try await verifyNoticeLocked(dir: dir, notice: body)
                let n = lockedNotification(profile: profile, notice: notice)
                center.show(n, relayId: notice.relayMessageId)
                return .promptedLocked(profile: profile, key: n.key)
            }
        } catch {
            return .refused(reason: "\(error)")
        }
    }

    /// The user's answer `action` to the notification `key` of `profile`.
    /// Errors other than expiry and a policy denial (the network, a profile
    /// closed meanwhile) are thrown.
    public func onAction(profile: String, key: String, action: NotificationAction) async throws -> ActionOutcome {
        // Captured first: nothing of this profile is posted after a lock
        // that comes while the message is downloaded or acknowledged.
        let generation = center.generation(profile: profile)
        guard let client = profiles.openClient(name: profile) else { return .needsUnlock }
        let relayId: String? = key.hasPrefix("notice:") ? String(key.dropFirst("notice:".count)) : nil
        do {
            switch action {
            case .unlock:
                return .needsUnlock
            case .decline:
                if let relayId {
                    try await client.decline(relayMessageId: relayId)
                    _ = previews.withLock { $0.removeValue(forKey: relayId) }
                }
                center.cancel(profile: profile, key: key)
                return .declined
            case .download:
                guard let relayId else { return .downloaded(messageId: center.messageOf(profile: profile, key: key)) }
                let report = try await client.download(relayMessageId: relayId)
                let messageId = try await download(
                    profile: profile, key: key, relayId: relayId, report: report, client: client, generation: generation
                )
                return .downloaded(messageId: messageId)
            case .acknowledge:
                var found = center.messageOf(profile: profile, key: key)
                if found == nil, let relayId {
                    let report = try await client.download(relayMessageId: relayId)
                    found = try await download(
                        profile: profile, key: key, relayId: relayId, report: report, client: client, generation: generation
                    )
                }
                guard let messageId = found else { return .gone(reason: "the alert is not on this device") }
                try await client.acknowledge(messageId: messageId, reply: nil)
                let deadline = try await client.message(id: messageId).deadlineMs
                center.show(
                    AppNotification(
                        profile: profile, key: key, channel: .messages, title: ContentFree.title,
                        text: "Acknowledged", publicText: ContentFree.message, actions: [], timeoutAtMs: deadline
                    ),
                    messageIds: [messageId],
                    generation: generation
                )
                return .acknowledged(messageId: messageId)
            }
        } catch OccError.Expired {
            center.cancel(profile: profile, key: key)
            return .gone(reason: "expired")
        } catch let OccError.PolicyDenied(reason) {
            center.cancel(profile: profile, key: key)
            return .gone(reason: reason)
        }
    }

    /// Replaces the prompt with the downloaded message's notification; its id.
    private func download(
        profile: String,
        key: String,
        relayId: String,
        report: ReceiveReport,
        client: Client,
        generation: Int64
    ) async throws -> String? {
        guard let got = report.received.first else {
            center.cancel(profile: profile, key: key)
            return nil
        }
        let stored = try await client.message(id: got.messageId)
        let title = try await client.threads().first(where: { $0.id == got.threadId })?.title
        let preview = previews.withLock { $0.removeValue(forKey: relayId) } == true
        center.show(
            messageNotification(
                profile: profile, key: key, sender: got.sender, threadTitle: title,
                text: preview ? stored.text : nil, urgent: got.urgent, deadlineMs: stored.deadlineMs
            ),
            relayId: relayId,
            messageIds: [got.messageId],
            generation: generation
        )
        return got.messageId
    }
}
