// The idiomatic Swift layer over the generated bindings (Generated/Occ.swift,
// put there by scripts/gen-swift.sh): events as an AsyncStream, text and time
// intervals where apps think in them, small builders, and a clear error when
// the native library does not match the bindings. It adds no behaviour of its
// own; everything below it is the Rust core. It mirrors the Kotlin layer
// (bindings/kotlin/org/occ/OccKotlin.kt).
//
// Threads: every call that touches the profile, the disk or the network is
// `async` and runs on the core's own threads, so awaiting it from the main
// actor never blocks the main thread. The synchronous ones (`closeProfile`,
// `isClosed`, `subscribePull`, `subscribe`, `setListener`, and the controls
// of subscriptions and sync handles) touch only memory and return at once.
import Foundation

/// The native library is not the one these bindings were generated from.
public struct OccBindingMismatch: Error, CustomStringConvertible {
    public let description: String
}

/// Checks that the linked native library (libocc_ffi, or OccFFI.xcframework
/// in an app) has exactly the API these bindings were generated for —
/// UniFFI's contract version and API checksums — and returns the core's
/// version. Call it once at start-up, before any other call: a stale library
/// then fails here with `OccBindingMismatch` instead of stopping the process
/// at its first call (the generated code's `fatalError`) or corrupting memory.
public func ensureNativeLibrary() throws -> String {
    // `initializationResult` is the generated code's own check, computed once
    // on first use (its checksums are compiled into Occ.swift). It is
    // `private` as generated; scripts/gen-swift.sh makes it module-internal
    // so that it can be read here rather than only through the generated
    // `uniffiEnsureOccFfiInitialized()`, which ends the process on a
    // mismatch.
    switch initializationResult {
    case .ok:
        uniffiEnsureOccFfiInitialized()
        return coreVersion()
    case .contractVersionMismatch:
        throw OccBindingMismatch(description:
            "the native library libocc_ffi speaks another UniFFI contract version than these Swift bindings " +
            "(built from another version of occ or of UniFFI): rebuild both with scripts/gen-bindings.sh " +
            "(scripts/gen-swift.sh for the Swift package, scripts/build-ios.sh for the XCFramework)")
    case .apiChecksumMismatch:
        throw OccBindingMismatch(description:
            "the native library libocc_ffi does not match these Swift bindings (API checksum mismatch: " +
            "built from another version of occ): rebuild both with scripts/gen-bindings.sh " +
            "(scripts/gen-swift.sh for the Swift package, scripts/build-ios.sh for the XCFramework)")
    }
}

public extension Client {
    /// The client's events, as a subscription of its own from this call on
    /// (any number may exist at once). It ends when the iterating task is
    /// cancelled, when the stream is released, or when the profile closes
    /// (after `profileClosed` / `profileWiped`). Nothing is dropped
    /// silently: the core keeps a bounded queue per subscription, and while
    /// this consumer is slow its ordinary events coalesce (it is then told
    /// with `coalesced`) and its critical ones — lock, wipe, security
    /// alerts, withdrawals, urgent messages — wait in order.
    func events() -> AsyncStream<ClientEvent> {
        let sub = subscribePull()
        return AsyncStream(unfolding: { await sub.next() }, onCancel: { sub.cancel() })
    }

    /// Sends UTF-8 text with a time to live (and optionally a read timer),
    /// whole seconds; returns the message id.
    @discardableResult
    func sendText(to: Recipient, _ text: String, ttl: TimeInterval, readTimer: TimeInterval? = nil) async throws -> String {
        try await send(
            to: to,
            text: Data(text.utf8),
            ttlSecs: UInt64(ttl),
            readTimerSecs: readTimer.map { UInt64($0) }
        )
    }
}

/// A direct conversation with `name`.
public func directTo(_ name: String) -> Recipient { .user(name: name) }

/// A thread, adding `members` (the sender is always one).
public func thread(id: String, members: [String] = []) -> Recipient { .thread(id: id, members: members) }

/// The relay, recognised by its SPKI pins (`sha256/…`) and, if private, its CA.
public func relaySettings(
    url: String,
    pins: [String],
    caPem: String? = nil,
    pinsExpireMs: Int64? = nil,
    pinsLapseToChain: Bool = false
) -> RelaySettings {
    RelaySettings(url: url, pins: pins, pinsExpireMs: pinsExpireMs, pinsLapseToChain: pinsLapseToChain, caPem: caPem)
}

/// Options to enrol as `user` with `relay`; `pushEndpoint` is where the
/// relay posts push notices (on iOS the push gateway's APNs endpoint for
/// this device); `orgKey` (hex) pins the organisation key; `link` (from
/// `linkDevice` on another device of `user`) enrols a further device.
public func enrolOptions(
    relay: RelaySettings,
    user: String,
    pushEndpoint: String? = nil,
    orgKey: String? = nil,
    link: Data? = nil
) -> EnrolOptions {
    EnrolOptions(relay: relay, user: user, pushEndpoint: pushEndpoint, orgKey: orgKey, link: link)
}

public extension StoredMessage {
    /// The body as text (occ carries bytes; apps that send text read it so).
    var text: String { String(decoding: body, as: UTF8.self) }

    /// Milliseconds until this message disappears, at trusted time `nowMs`.
    func remainingMs(nowMs: Int64) -> Int64 { max(0, deadlineMs - nowMs) }
}

public extension ReceiveReport {
    /// The new messages of this report.
    var received: [ReceivedMessage] {
        items.compactMap { if case let .stored(message) = $0.outcome { return message } else { return nil } }
    }

    /// How many items were refused.
    var rejected: Int {
        items.filter { if case .rejected = $0.outcome { return true } else { return false } }.count
    }
}
