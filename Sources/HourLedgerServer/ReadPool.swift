import Foundation
import Synchronization

/// Threads of their own for the reads that can take long (reports, statements, balances of every contract). SQLite
/// reads block their thread; on Swift's cooperative pool (one thread per core) a few of them would leave nothing to
/// answer `/healthz` or a webhook. Here they queue for `threads` threads, and beyond `maxWaiting` callers are told
/// to come back (503) instead of piling up.
public final class ReadPool: Sendable {
    private struct State {
        var jobs: [@Sendable () -> Void] = []
        var head = 0
        var waiting: Int { jobs.count - head }
    }
    private let state = Mutex(State())
    private let signal = DispatchSemaphore(value: 0)
    public let maxWaiting: Int

    public struct Busy: Error, CustomStringConvertible {
        public var description: String { "too many long reads at once; try again shortly" }
    }

    /// The daemon's pool: two threads, so two long reads run at once while the cooperative pool stays free.
    public static let shared = ReadPool()

    public init(threads: Int = 2, maxWaiting: Int = 32) {
        self.maxWaiting = maxWaiting
        for index in 0..<max(1, threads) {
            let thread = Thread { [self] in work() }
            thread.name = "hourledger-read-\(index)"
            thread.start()
        }
    }

    /// Runs `read` on one of the pool's threads.
    public func run<T: Sendable>(_ read: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let accepted = state.withLock { state -> Bool in
                guard state.waiting < maxWaiting else { return false }
                state.jobs.append { continuation.resume(with: Result { try read() }) }
                return true
            }
            if accepted { signal.signal() } else { continuation.resume(throwing: Busy()) }
        }
    }

    private func work() {
        while true {
            signal.wait()
            let job = state.withLock { state -> (@Sendable () -> Void)? in
                guard state.head < state.jobs.count else { return nil }
                let job = state.jobs[state.head]
                state.head += 1
                if state.head > 256, state.head * 2 > state.jobs.count {
                    state.jobs.removeFirst(state.head)
                    state.head = 0
                }
                return job
            }
            job?()
        }
    }
}
