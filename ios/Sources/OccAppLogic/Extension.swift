// What the iOS Notification Service Extension shows for one push: the
// decision is here, the extension only copies the result into the
// notification (and falls back to content-free text when its time runs
// out).
//
// - The notice names the device it is for; the core finds the profile of
//   that device without opening any (`profileForNotice`).
// - If the app left a key for that profile's unlocked session where the
//   extension can read it (the shared Keychain; written on unlock, deleted
//   on lock and at every app launch), the core verifies the notice with it
//   (`verifyNotice`) and the prompt shows sender, thread and the policy's
//   decision, with Download / Decline.
// - Otherwise the profile counts as locked: the core verifies the notice
//   without any key (`verifyNoticeLocked`) and the notification says only
//   that something arrived, with Unlock. A key that no longer opens the
//   profile is treated the same way. Nothing of a locked profile — no
//   sender, no thread title — is ever looked up.
// - A forged, replayed or expired notice, or one for no profile here, is
//   refused (the core records it); the extension cannot suppress the
//   notification, so it shows the content-free "could not be verified".
//
// Note: a profile created with a PIN or user authentication
// (`DeviceProfiles`) has a database key that only the core ever holds, and
// today's core API hands the app no key that `verifyNotice` accepts for
// it. Until it does, the app has nothing to leave for the extension and
// every push takes the locked, content-free path; the unlocked path works
// as soon as a key is provided through `SessionKeyReader`.
import Foundation
import Occ

/// Where the extension finds the key of a profile's unlocked session.
public protocol SessionKeyReader {
    /// The key `verifyNotice` opens `profile` with, while it is unlocked.
    func sessionKey(profile: String) -> Data?
}

/// What the extension shows.
public enum ExtensionOutcome: Equatable, Sendable {
    case show(AppNotification)
    case refused(reason: String)
}

/// The extension's decision for one push.
public struct NoticeExtension {
    private let manager: ProfileManager
    private let sessionKeys: SessionKeyReader

    public init(manager: ProfileManager, sessionKeys: SessionKeyReader) {
        self.manager = manager
        self.sessionKeys = sessionKeys
    }

    public func notification(for body: Data) async -> ExtensionOutcome {
        do {
            guard let profile = try await manager.profileForNotice(notice: body) else {
                return .refused(reason: "no profile on this device has that device")
            }
            let dir = try manager.profileDir(name: profile)
            if let key = sessionKeys.sessionKey(profile: profile) {
                do {
                    let prompt = try await verifyNotice(dir: dir, key: key, notice: body)
                    return .show(promptNotification(profile: profile, prompt: prompt))
                } catch OccError.WrongKey {
                    // A stale key: the profile is treated as locked.
                }
            }
            let notice = try await verifyNoticeLocked(dir: dir, notice: body)
            return .show(lockedNotification(profile: profile, notice: notice))
        } catch {
            return .refused(reason: "\(error)")
        }
    }
}
