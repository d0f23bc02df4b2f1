// Work the platform runs while the app is not on screen (iOS background app
// refresh, Android WorkManager; mirrors the Android logic's Background.kt):
// for the open profile, deliver what is queued, drain the inbox, purge what
// passed its deadline and escalate unacknowledged alerts, so expiry and
// receipts happen with the app in the background. A locked profile cannot
// be read or purged without its user; the core withholds anything past its
// deadline at read time anyway, and purges it at the next unlock.
import Foundation
import Occ

/// How one background run went (the task's success, or try again later).
public enum WorkResult: Equatable, Sendable {
    case success
    case retry
    case nothingOpen
}

/// One background run over the open profile of `profiles`.
public final class BackgroundWork: @unchecked Sendable {
    private let profiles: DeviceProfiles

    public init(profiles: DeviceProfiles) { self.profiles = profiles }

    /// Other errors than a closed profile or the network are thrown.
    public func run() async throws -> WorkResult {
        guard let client = profiles.current?.client else { return .nothingOpen }
        do {
            let report = try await client.sync()
            _ = try await client.purge()
            _ = try await client.checkAlerts()
            return report.sendError == nil ? .success : .retry
        } catch OccError.Closed {
            return .nothingOpen
        } catch OccError.Network {
            return .retry
        }
    }
}
