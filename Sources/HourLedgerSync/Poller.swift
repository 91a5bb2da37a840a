import CoreMetrics
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// When the main loop last showed it is alive. The systemd watchdog is fed only while this is recent, so a stuck
/// poller gets the daemon restarted.
public final class Heartbeat: Sendable {
    private let last = Mutex(ContinuousClock.now)

    public init() {}

    public func beat() { last.withLock { $0 = .now } }

    public var age: Duration { ContinuousClock.now - last.withLock { $0 } }
}

/// Polls the helpdesk every interval. Failures back off exponentially (capped), so an unreachable helpdesk is retried
/// without hammering it, and the daemon keeps serving its ledger meanwhile.
public actor Poller: Service {
    private let engine: SyncEngine
    private let interval: Duration
    private let maxBackoff: Duration
    private let logger: Logger
    private let heartbeat: Heartbeat
    private let succeeded: Counter
    private let failed: Counter

    public init(engine: SyncEngine, interval: Duration, maxBackoff: Duration = .seconds(600), heartbeat: Heartbeat = Heartbeat(),
                metrics: any MetricsFactory = NOOPMetricsHandler.instance, logger: Logger = Logger(label: "hourledger.poller")) {
        self.engine = engine
        self.interval = interval
        self.maxBackoff = maxBackoff
        self.heartbeat = heartbeat
        self.logger = logger
        succeeded = Counter(label: "hourledger_polls_total", dimensions: [("outcome", "ok")], factory: metrics)
        failed = Counter(label: "hourledger_polls_total", dimensions: [("outcome", "failed")], factory: metrics)
    }

    public func run() async throws {
        var failures = 0
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            heartbeat.beat()
            do {
                try await engine.syncOnce()
                succeeded.increment()
                failures = 0
            } catch {
                failed.increment()
                failures += 1
                logger.error("sync failed", metadata: ["error": "\(error)", "consecutive_failures": "\(failures)"])
            }
            let wait = failures == 0 ? interval : Self.backoff(failures: failures, base: .seconds(5), cap: maxBackoff)
            do {
                let healthy = failures == 0
                try await cancelWhenGracefulShutdown { try await self.sleep(wait, wakingOnHints: healthy) }
            } catch {
                break
            }
        }
        await engine.connector.close()
        logger.info("poller stopped")
    }

    /// Sleeps `duration`, or less once a webhook hint is waiting; hints arriving within the same quarter second
    /// are served by one sync.
    private func sleep(_ duration: Duration, wakingOnHints: Bool) async throws {
        let deadline = ContinuousClock.now + duration
        while ContinuousClock.now < deadline {
            try await Task.sleep(for: min(.milliseconds(250), deadline - ContinuousClock.now))
            heartbeat.beat()
            if wakingOnHints, await engine.hintsWaiting { return }
        }
    }

    /// base × 2^(failures-1), capped, with ±20 % jitter so many daemons don't retry in step.
    static func backoff(failures: Int, base: Duration, cap: Duration) -> Duration {
        let baseSeconds = max(1.0, Double(base.components.seconds))
        let raw = min(Double(cap.components.seconds), baseSeconds * pow(2, Double(min(failures - 1, 20))))
        let jittered = raw * Double.random(in: 0.8...1.2)
        return .milliseconds(Int(jittered * 1000))
    }
}
