// The idiomatic Swift layer over the generated bindings: events as an
// AsyncStream, text and time intervals where apps think in them. It adds no
// behaviour of its own; everything below it is the Rust core.
import Foundation

/// Hands the core's events to an AsyncStream.
final class EventForwarder: EventListener, @unchecked Sendable {
    private let continuation: AsyncStream<ClientEvent>.Continuation

    init(_ continuation: AsyncStream<ClientEvent>.Continuation) {
        self.continuation = continuation
    }

    func onEvent(event: ClientEvent) {
        continuation.yield(event)
    }
}

public extension Client {
    /// The client's events. The core has one listener slot per client:
    /// iterating installs this stream's listener (replacing any other) and
    /// ending the iteration removes it.
    func events() -> AsyncStream<ClientEvent> {
        AsyncStream(bufferingPolicy: .bufferingNewest(1024)) { continuation in
            self.setListener(listener: EventForwarder(continuation))
            continuation.onTermination = { @Sendable [weak self] _ in
                self?.setListener(listener: nil)
            }
        }
    }

    /// Sends UTF-8 text with a time to live (and optionally a read timer).
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

/// The relay, recognised by its SPKI pins (`sha256/…`) and, if private, its CA.
public func relaySettings(url: String, pins: [String], caPem: String? = nil) -> RelaySettings {
    RelaySettings(url: url, pins: pins, pinsExpireMs: nil, pinsLapseToChain: false, caPem: caPem)
}

public extension StoredMessage {
    /// The body as text.
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
