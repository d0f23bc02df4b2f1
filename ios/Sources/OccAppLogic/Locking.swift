// The small concurrency tools the logic's classes share, in place of
// Kotlin's `synchronized`, Mutex and SharedFlow:
//
// - `Protected`: a value behind a lock. The lock is taken only inside the
//   synchronous `withLock`, so it is never held across an `await`.
// - `AsyncMutex`: a first-come-first-served lock for async code (one unlock
//   or profile creation at a time), which suspends instead of blocking a
//   thread while it waits.
// - `Broadcast`: hands each value to every current subscriber's AsyncStream.
import Foundation

/// A value behind a lock.
final class Protected<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()

    init(_ value: Value) { self.value = value }

    /// Runs `body` on the value with the lock held (never across a suspension).
    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }

    /// A copy of the value.
    func get() -> Value { withLock { $0 } }

    /// Replaces the value.
    func set(_ newValue: Value) { withLock { $0 = newValue } }
}

/// A lock for async code: callers of `withLock` run one at a time, in the
/// order they asked; waiting suspends the task, it blocks no thread.
final class AsyncMutex: @unchecked Sendable {
    private struct State {
        var held = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Protected(State())

    func withLock<T>(_ body: () async throws -> T) async rethrows -> T {
        await acquire()
        defer { release() }
        return try await body()
    }

    private func acquire() async {
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let now: Bool = state.withLock { s in
                if s.held {
                    s.waiters.append(waiter)
                    return false
                }
                s.held = true
                return true
            }
            if now { waiter.resume() }
        }
    }

    private func release() {
        // The lock passes straight to the next waiter (it stays held), so
        // nobody can overtake the queue.
        let next: CheckedContinuation<Void, Never>? = state.withLock { s in
            if s.waiters.isEmpty {
                s.held = false
                return nil
            }
            return s.waiters.removeFirst()
        }
        next?.resume()
    }
}

/// Every value sent reaches every subscriber that exists at that moment
/// (unbounded per subscriber: meant for rare values such as alerts).
final class Broadcast<Value>: @unchecked Sendable {
    private let subscribers = Protected<[UUID: AsyncStream<Value>.Continuation]>([:])

    /// A stream of the values sent from now on; it ends when the iterating
    /// task is cancelled or the stream is released.
    func subscribe() -> AsyncStream<Value> {
        AsyncStream { continuation in
            let id = UUID()
            subscribers.withLock { $0[id] = continuation }
            continuation.onTermination = { [weak self] _ in
                guard let self else { return }
                self.subscribers.withLock { $0[id] = nil }
            }
        }
    }

    func send(_ value: Value) {
        for continuation in subscribers.withLock({ Array($0.values) }) {
            continuation.yield(value)
        }
    }

    /// Ends every subscriber's stream.
    func finish() {
        for continuation in subscribers.withLock({ s -> [AsyncStream<Value>.Continuation] in
            let all = Array(s.values)
            s = [:]
            return all
        }) {
            continuation.finish()
        }
    }
}

/// Milliseconds since the epoch on the device clock.
public func deviceNowMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

/// `count` bytes from the system's cryptographically secure generator
/// (`SystemRandomNumberGenerator`, the default of `random(in:)`).
func randomBytes(_ count: Int) -> Data {
    Data((0..<count).map { _ in UInt8.random(in: UInt8.min...UInt8.max) })
}

/// Overwrites the bytes of `data` with zeros (best effort: copies made by
/// the callee are its own).
func wipeBytes(_ data: inout Data) {
    data.resetBytes(in: 0..<data.count)
}
