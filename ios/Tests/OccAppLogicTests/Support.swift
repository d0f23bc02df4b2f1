// What the app logic tests share: a notification poster that records what
// the app would post and remove, a user-authentication key wrapper whose
// "platform" the test controls, a session-key reader, temporary
// directories, polling, and the relay settings from the environment
// (OCC_RELAY_URL, OCC_RELAY_PIN, OCC_RELAY_CA; tests that need a relay are
// skipped without them).
import Foundation
import XCTest
import Occ
@testable import OccAppLogic

/// One removal the poster was asked for.
struct Cancelled: Equatable {
    let profile: String
    let key: String
}

/// Records what the app would post and remove.
final class FakePoster: NotificationPoster, @unchecked Sendable {
    private let lock = NSLock()
    private var postedList: [AppNotification] = []
    private var cancelledList: [Cancelled] = []

    func post(_ n: AppNotification) {
        lock.lock()
        postedList.append(n)
        lock.unlock()
    }

    func cancel(profile: String, key: String) {
        lock.lock()
        cancelledList.append(Cancelled(profile: profile, key: key))
        lock.unlock()
    }

    var posted: [AppNotification] {
        lock.lock()
        defer { lock.unlock() }
        return postedList
    }

    var cancelled: [Cancelled] {
        lock.lock()
        defer { lock.unlock() }
        return cancelledList
    }

    func wasCancelled(_ profile: String, _ key: String) -> Bool {
        cancelled.contains(Cancelled(profile: profile, key: key))
    }

    /// The last notification posted under `key`.
    func last(_ key: String) -> AppNotification? { posted.last(where: { $0.key == key }) }
}

/// A key wrapper whose keys open only after the "platform" authenticated
/// the user: one authentication, one use.
final class FakeUserAuth: KeyWrapper, @unchecked Sendable {
    private let inner = SoftwareKeyWrapper()
    private let lock = NSLock()
    private var authenticatedFlag = false

    var authenticated: Bool {
        get { lock.lock(); defer { lock.unlock() }; return authenticatedFlag }
        set { lock.lock(); authenticatedFlag = newValue; lock.unlock() }
    }

    func wrap(alias: String, key: Data) throws -> Data { try inner.wrap(alias: alias, key: key) }

    func unwrap(alias: String, wrapped: Data) throws -> Data {
        lock.lock()
        let ok = authenticatedFlag
        authenticatedFlag = false
        lock.unlock()
        guard ok else { throw UserAuthenticationRequired() }
        return try inner.unwrap(alias: alias, wrapped: wrapped)
    }

    func forget(alias: String) { inner.forget(alias: alias) }
}

/// A user-authentication wrapper whose platform makes no keys (a phone
/// with no face or finger enrolled).
final class RefusingUserAuth: KeyWrapper, @unchecked Sendable {
    struct NoBiometrics: Error {}

    func wrap(alias: String, key: Data) throws -> Data { throw NoBiometrics() }

    func unwrap(alias: String, wrapped: Data) throws -> Data { throw NoBiometrics() }

    func forget(alias: String) {}
}

/// Session keys the extension would find (none unless a test puts one).
final class FakeSessionKeys: SessionKeyReader {
    var keys: [String: Data] = [:]
    func sessionKey(profile: String) -> Data? { keys[profile] }
}

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

    func settings() -> RelaySettings { relaySettings(url: url, pins: [pin], caPem: caPem) }
}

struct TimedOut: Error {}

let testPin = Data("482913".utf8)
let fastLock = LockOptions(maxFailures: 10, cost: 10)

func uniqueUser(_ prefix: String) -> String {
    "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
}

func tempDir(_ prefix: String = "occ-swift") throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

func device(_ root: URL, options: LockOptions = fastLock, userAuth: KeyWrapper? = nil) throws -> DeviceProfiles {
    try DeviceProfiles(
        root: root,
        secrets: SoftwareKeyWrapper(),
        keys: try WrappedKeyStore(dir: root.appendingPathComponent("keys")),
        userAuth: userAuth,
        lockOptions: options
    )
}

func enrolled(_ relay: TestRelay, _ prefix: String) async throws -> (Client, String) {
    let user = uniqueUser(prefix)
    let client = try await Client.create(dir: try tempDir().path, key: try generateDatabaseKey())
    _ = try await client.enrol(options: enrolOptions(relay: relay.settings(), user: user))
    return (client, user)
}

func opened(_ result: UnlockResult, file: StaticString = #filePath, line: UInt = #line) throws -> Client {
    guard case let .opened(client) = result else {
        XCTFail("not opened: \(result)", file: file, line: line)
        throw TimedOut()
    }
    return client
}

/// Polls `check` until it holds; fails after `timeout` seconds.
func eventually(
    timeout: TimeInterval = 10,
    file: StaticString = #filePath,
    line: UInt = #line,
    _ check: () async throws -> Bool
) async throws {
    let deadline = Date().addingTimeInterval(timeout)
    while true {
        if try await check() { return }
        if Date() > deadline {
            XCTFail("not within \(timeout) s", file: file, line: line)
            throw TimedOut()
        }
        try await Task.sleep(nanoseconds: 20_000_000)
    }
}

/// The first `count` values of `stream` (fewer if it ends or `seconds` pass).
func firstValues<T: Sendable>(_ stream: AsyncStream<T>, count: Int, within seconds: Double = 10) async -> [T] {
    let collect = Task { () -> [T] in
        var got: [T] = []
        for await value in stream {
            got.append(value)
            if got.count == count { break }
        }
        return got
    }
    let timer = Task {
        try? await Task.sleep(nanoseconds: UInt64(seconds * 1_000_000_000))
        collect.cancel()
    }
    let got = await collect.value
    timer.cancel()
    return got
}

/// The names of the files in `dir`.
func files(in dir: URL) -> [String] {
    (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
}

func downloadPrompt(
    relayMessageId: String = String(repeating: "ab", count: 16),
    threadTitle: String? = "Ops",
    senderUser: String? = "alice",
    senderVerified: Bool = true,
    messageClass: String = "text",
    size: UInt64 = 900,
    expiresMs: Int64 = 1_000_000,
    urgent: Bool = false,
    count: UInt32 = 1,
    decision: Decision = .allow,
    previews: Bool = false
) -> DownloadPrompt {
    DownloadPrompt(
        relayMessageId: relayMessageId, threadId: nil, threadTitle: threadTitle, senderUser: senderUser,
        senderDevice: String(repeating: "cd", count: 32), senderVerified: senderVerified, messageClass: messageClass,
        size: size, expiresMs: expiresMs, urgent: urgent, count: count, decision: decision, previews: previews
    )
}
