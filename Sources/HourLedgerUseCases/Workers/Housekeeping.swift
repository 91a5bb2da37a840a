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
