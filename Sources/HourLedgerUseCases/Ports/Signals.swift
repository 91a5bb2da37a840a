import Foundation
import Synchronization

/// The one clock of the daemon: which period is current, when a timer stopped, when a write-back is due. Tests set it.
public struct WallClock: Sendable {
    private let read: @Sendable () -> Date

    public init(_ read: @escaping @Sendable () -> Date) { self.read = read }

    public static let system = WallClock { Date() }

    public func now() -> Date { read() }
}

/// Wakes a sleeping worker when there is work: a commit that queued a write-back, a webhook hint. A signal given
/// while nobody waits is kept for the next wait, so none is lost between two checks.
public final class WakeSignal: Sendable {
    private struct State {
        var pending = false
        var waiters: [UInt64: CheckedContinuation<Bool, Never>] = [:]
        /// Waits whose time ran out (or were cancelled) before they were registered.
        var expired: Set<UInt64> = []
        var next: UInt64 = 0
    }
    private let state = Mutex(State())

    public init() {}

    public func signal() {
        let waiters = state.withLock { state -> [CheckedContinuation<Bool, Never>] in
            guard !state.waiters.isEmpty else {
                state.pending = true
                return []
            }
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume(returning: true) }
    }

    /// A signal is waiting for the next wait.
    public var isPending: Bool { state.withLock { $0.pending } }

    /// Forgets a waiting signal: its work was just done by someone else (a sync that read every hint).
    public func reset() { state.withLock { $0.pending = false } }

    /// Returns true when signalled (now or since the last wait), false after `timeout` or on cancellation.
    @discardableResult
    public func wait(upTo timeout: Duration) async -> Bool {
        let id = state.withLock { state -> UInt64 in
            state.next += 1
            return state.next
        }
        let timer = Task {
            try? await Task.sleep(for: timeout)
            self.resume(id, with: false)
        }
        defer {
            timer.cancel()
            state.withLock { _ = $0.expired.remove(id) }
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let now = state.withLock { state -> Bool? in
                    if state.pending {
                        state.pending = false
                        return true
                    }
                    if state.expired.remove(id) != nil || Task.isCancelled { return false }
                    state.waiters[id] = continuation
                    return nil
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            resume(id, with: false)
        }
    }

    private func resume(_ id: UInt64, with value: Bool) {
        let waiter = state.withLock { state -> CheckedContinuation<Bool, Never>? in
            guard let waiter = state.waiters.removeValue(forKey: id) else {
                state.expired.insert(id)
                return nil
            }
            return waiter
        }
        waiter?.resume(returning: value)
    }
}
