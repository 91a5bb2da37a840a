import Foundation
import ServiceLifecycle
import Synchronization

/// How long to wait after failures in a row: base × 2^(failures−1), capped, with ±20 % jitter so many daemons (or
/// many records) do not retry in step.
public struct Backoff: Sendable, Equatable {
    public var base: Duration
    public var cap: Duration

    public init(base: Duration, cap: Duration) {
        self.base = base
        self.cap = cap
    }

    /// Write-backs and alert deliveries: 5 s, doubling, at most an hour.
    public static let delivery = Backoff(base: .seconds(5), cap: .seconds(3600))

    public func delay(failures: Int, jitter: Double = Double.random(in: 0.8...1.2)) -> Duration {
        let base = max(1.0, seconds(self.base))
        let raw = min(seconds(cap), base * pow(2, Double(min(max(failures - 1, 0), 20))))
        return .milliseconds(Int(raw * jitter * 1000))
    }

    private func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}

extension Duration {
    public var timeInterval: TimeInterval { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// The loop of every background worker: work, then sleep until woken, or until the next tick as a safety net, until
/// the daemon shuts down.
public enum WorkerLoop {
    /// How long to sleep after one round of work, and whether a signal may end the sleep early.
    public struct Pause: Sendable {
        public var duration: Duration
        public var wakeable: Bool

        public init(_ duration: Duration, wakeable: Bool = true) {
            self.duration = duration
            self.wakeable = wakeable
        }
    }

    /// `work` returns how long to sleep at most.
    public static func run(isolation: isolated (any Actor)? = #isolation, wakingOn signal: WakeSignal? = nil,
                           _ work: () async -> Duration) async {
        await runPausing(isolation: isolation, wakingOn: signal) { Pause(await work()) }
    }

    /// `work` returns how long to sleep, and whether the signal may cut the sleep short.
    public static func runPausing(isolation: isolated (any Actor)? = #isolation, wakingOn signal: WakeSignal?,
                                  _ work: () async -> Pause) async {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let pause = await work()
            guard !Task.isCancelled && !Task.isShuttingDownGracefully else { return }
            do {
                try await cancelWhenGracefulShutdown {
                    if let signal, pause.wakeable {
                        await signal.wait(upTo: pause.duration)
                    } else {
                        try await Task.sleep(for: pause.duration)
                    }
                }
            } catch {
                return
            }
        }
    }
}

/// When the poller's loop last showed it is alive. The systemd watchdog is fed only while this is recent, so a stuck
/// poller gets the daemon restarted. A loop going to sleep says until when; a sleep is not being stuck.
public final class Heartbeat: Sendable {
    private let expected = Mutex(ContinuousClock.now)

    public init() {}

    public func beat() { expected.withLock { $0 = max($0, .now) } }

    /// The loop sleeps up to `duration` before its next beat.
    public func sleeping(for duration: Duration) { expected.withLock { $0 = max($0, .now + duration) } }

    /// How long the loop is overdue; zero while it works or sleeps as it said.
    public var age: Duration { max(.zero, ContinuousClock.now - expected.withLock { $0 }) }
}
