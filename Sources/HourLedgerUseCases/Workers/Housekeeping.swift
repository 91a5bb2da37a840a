import Foundation
import HourLedgerCore
import Logging
import ServiceLifecycle

/// Rolls periods over by themselves: every tick settles all contracts, so carry-over and expiry lines appear after a
/// boundary even if nothing was logged, and a daemon that was down at midnight catches up when it starts.
public struct PeriodRollover: Service {
    let ledger: Ledger
    let interval: Duration
    let logger: Logger

    public init(ledger: Ledger, interval: Duration = .seconds(60), logger: Logger = Logger(label: "hourledger.rollover")) {
        self.ledger = ledger
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        await WorkerLoop.run {
            do { try await ledger.settle(all: true) } catch { logger.error("period rollover failed", metadata: ["error": "\(error)"]) }
            return interval
        }
    }
}

/// Pauses forgotten timers: one that has run longer than the cap in one stretch is paused and flagged for review, so
/// a timer left running over a weekend does not bill the weekend.
public struct TimerCap: Service {
    let ledger: Ledger
    let maxRunningSeconds: Int
    let interval: Duration
    let logger: Logger

    public init(ledger: Ledger, maxRunningSeconds: Int, interval: Duration = .seconds(60), logger: Logger = Logger(label: "hourledger.timers")) {
        self.ledger = ledger
        self.maxRunningSeconds = maxRunningSeconds
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        await WorkerLoop.run {
            await check()
            return interval
        }
    }

    func check() async {
        do {
            for timer in try await ledger.applyTimerCap(maxRunningSeconds: maxRunningSeconds) {
                logger.warning("timer paused at the running cap and flagged for review",
                               metadata: ["timer": "\(timer.id)", "ticket": "\(timer.ticketID)", "technician": "\(timer.technician)"])
            }
        } catch {
            logger.error("timer cap check failed", metadata: ["error": "\(error)"])
        }
    }
}

/// Compares the ledger with the helpdesk's own totals once per `everyHours` (nightly by default): due when the last
/// stored result is older than that, so a restart does not run it again, and only once a poll has succeeded, so it
/// never competes with a first sync.
public struct ScheduledReconciliation: Service {
    let engine: SyncEngine
    let everyHours: Int
    let logger: Logger

    public init(engine: SyncEngine, everyHours: Int, logger: Logger = Logger(label: "hourledger.reconciliation")) {
        self.engine = engine
        self.everyHours = everyHours
        self.logger = logger
    }

    public func run() async throws {
        guard everyHours > 0 else {
            // Off: wait for the shutdown, since a service that returns would end the whole group.
            try? await gracefulShutdown()
            return
        }
        await WorkerLoop.run {
            await runIfDue()
            return .seconds(min(600, everyHours * 3600))
        }
    }

    /// One check: reconciles if due. `run()` calls it every ten minutes.
    public func runIfDue() async {
        guard await engine.status.lastSuccess != nil else { return }
        do {
            let now = engine.ledger.clock.now()
            if let last = try engine.lastReconciliation(), now.timeIntervalSince(last.at) < Double(everyHours * 3600) { return }
            guard let result = try await engine.reconcile(now: now) else { return }
            let metadata: Logger.Metadata = [
                "tickets": "\(result.ticketsCompared)", "drifting": "\(result.drifts.count)", "requests": "\(result.requests)",
                "unexplained": "\(result.drifts.filter { $0.cause == .unexplained }.count)",
            ]
            if result.drifts.contains(where: { $0.cause == .unexplained }) {
                logger.warning("reconciliation: the helpdesk's totals differ from the ledger on some tickets; see /api/v1/reconciliation",
                               metadata: metadata)
            } else {
                logger.info("reconciliation done", metadata: metadata)
            }
        } catch {
            logger.error("reconciliation failed; it is tried again in 10 minutes", metadata: ["error": "\(error)"])
        }
    }
}
