import CoreMetrics
import Foundation
import Logging
import ServiceLifecycle

/// Polls the helpdesk every interval, and early when a webhook hint arrives. Failures back off exponentially
/// (capped), so an unreachable helpdesk is retried without hammering it, and the daemon keeps serving its ledger
/// meanwhile.
public actor Poller: Service {
    private let engine: SyncEngine
    private let interval: Duration
    private let backoff: Backoff
    private let logger: Logger
    private let heartbeat: Heartbeat
    private let succeeded: Counter
    private let failed: Counter
    private var failures = 0

    public init(engine: SyncEngine, interval: Duration, maxBackoff: Duration = .seconds(600), heartbeat: Heartbeat = Heartbeat(),
                metrics: any MetricsFactory = NOOPMetricsHandler.instance, logger: Logger = Logger(label: "hourledger.poller")) {
        self.engine = engine
        self.interval = interval
        self.backoff = Backoff(base: .seconds(5), cap: maxBackoff)
        self.heartbeat = heartbeat
        self.logger = logger
        succeeded = Counter(label: "hourledger_polls_total", dimensions: [("outcome", "ok")], factory: metrics)
        failed = Counter(label: "hourledger_polls_total", dimensions: [("outcome", "failed")], factory: metrics)
    }

    public func run() async throws {
        let hints = engine.ledger.hintsArrived
        // A healthy poller wakes for hints; one backing off waits its backoff out whatever arrives.
        await WorkerLoop.runPausing(wakingOn: hints) {
            if hints.isPending {
                // Hints arriving within the same quarter second are served by one sync.
                try? await Task.sleep(for: .milliseconds(250))
            }
            heartbeat.beat()
            await poll()
            let wait = failures == 0 ? interval : backoff.delay(failures: failures)
            heartbeat.sleeping(for: wait)
            return WorkerLoop.Pause(wait, wakeable: failures == 0)
        }
        await engine.connector.close()
        logger.info("poller stopped")
    }

    private func poll() async {
        do {
            try await engine.syncOnce()
            succeeded.increment()
            failures = 0
        } catch {
            failed.increment()
            failures += 1
            logger.error("sync failed", metadata: ["error": "\(error)", "consecutive_failures": "\(failures)"])
        }
    }
}
