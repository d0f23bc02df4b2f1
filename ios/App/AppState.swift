// The app's state: the device's profiles and the open one's session,
// observable by SwiftUI. All logic is in OccAppLogic.
import Foundation
import Occ
import OccAppLogic

final class LogForwarder: Logger, @unchecked Sendable {
    func log(level: LogLevel, target: String, message: String) {
        NSLog("occ %@ %@: %@", "\(level)", target, message)
    }
}

@MainActor
final class AppState: ObservableObject {
    let device: ProfileSwitcher
    @Published private(set) var session: ProfileSession?
    @Published var alert: String?
    @Published private(set) var connected: Bool?

    init() {
        setLogger(logger: LogForwarder(), level: .info)
        // The App Group container, shared with the notification extension
        // (which verifies push notices against the same profiles).
        let support = FileManager.default.containerURL(forSecurityApplicationGroupIdentifier: "group.org.occ")
            ?? FileManager.default.urls(for: .applicationSupportDirectory, in: .userDomainMask)[0]
        // A failure here leaves the app unable to store anything: show it.
        do {
            device = try ProfileSwitcher(root: support, wrapper: KeychainKeyWrapper(),
                                         keys: try WrappedKeyStore(dir: support.appendingPathComponent("keys")))
        } catch {
            fatalError("cannot open the profile store: \(error)")
        }
    }

    func open(_ name: String, create: Bool) {
        lock()
        do {
            let client = create ? try device.create(name: name) : try device.switchTo(name: name)
            UserDefaults(suiteName: "group.org.occ")?.set(name, forKey: "activeProfile")
            let session = ProfileSession(name: name, client: client)
            session.onAlert = { [weak self] alert in Task { @MainActor in self?.alert = "\(alert.kind): \(alert.detail)" } }
            session.onConnectionChange = { [weak self] up in Task { @MainActor in self?.connected = up } }
            self.session = session
        } catch {
            alert = "\(error)"
        }
    }

    func lock() {
        session?.close()
        session = nil
        device.lockProfile()
    }

    func wipe(_ name: String) {
        if session?.name == name { lock() }
        do { try device.wipe(name: name) } catch { alert = "\(error)" }
    }
}
