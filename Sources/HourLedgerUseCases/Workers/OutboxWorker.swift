import Foundation
import HourLedgerCore
import Logging
import ServiceLifecycle

/// Delivers the outbox to the helpdesk: in order per ticket, exactly once per record.
///
/// Exactly once rests on three rules. Each attempt is recorded on disk before it is sent, so a record whose answer
/// never came is known to be in doubt. A record in doubt is not sent again until the write fence has passed, the time
/// after which the earlier attempt can no longer land (the client's total timeout plus the helpdesk's own execution
/// limit, `helpdesk.write_grace_seconds`). After the fence it is looked up by the marker its text carries, and only
/// written if it is not there.
///
/// The worker sleeps until a commit queues a record, or the next record's backoff or fence ends; a tick of `idle`
/// is only the safety net.
public actor OutboxWorker: Service {
    private let ledger: Ledger
    private let helpdesk: any HelpdeskPort
    private let idle: Duration
    /// Seconds after an attempt during which it may still land.
    public nonisolated let fenceSeconds: Int
    private let logger: Logger
    /// After a failure that looks like the helpdesk's (down, slow, refusing our credentials) rather than one record's,
    /// nothing is sent until then, so an outage is not hammered one record after another.
    private var pausedUntil: Date?

    public init(ledger: Ledger, helpdesk: any HelpdeskPort, fenceSeconds: Int = 120, idle: Duration = .seconds(30),
                logger: Logger = Logger(label: "hourledger.outbox")) {
        self.ledger = ledger
        self.helpdesk = helpdesk
        self.fenceSeconds = fenceSeconds
        self.idle = idle
        self.logger = logger
    }

    public func run() async throws {
        await WorkerLoop.run(wakingOn: ledger.outboxQueued) {
            await drain()
            return nextWait()
        }
        logger.info("outbox worker stopped")
    }

    /// Until the next record is due (or the pause after a failure ends), at most `idle`.
    private func nextWait() -> Duration {
        let now = ledger.clock.now()
        var due = (try? ledger.nextOutboxWakeUp(fenceSeconds: fenceSeconds)) ?? nil
        if let pausedUntil { due = max(due ?? pausedUntil, pausedUntil) }
        guard let due else { return idle }
        return min(idle, .milliseconds(max(50, Int(due.timeIntervalSince(now) * 1000) + 50)))
    }

    /// What became of one record.
    enum Outcome {
        /// Written now; the helpdesk's id of the task, if it gives one.
        case written(Int?)
        /// An earlier attempt had landed.
        case found(Int?)
        /// Its entry was deleted before it ever reached the helpdesk.
        case cancelled
        /// It ended meanwhile (discarded, cancelled by a deletion); nothing was sent.
        case ended
    }

    /// Delivers due records until none is due, or the helpdesk itself fails. A record the helpdesk refuses for good
    /// is parked and the others go on. Returns how many records ended.
    @discardableResult
    public func drain(now: (@Sendable () -> Date)? = nil) async -> Int {
        let now = now ?? { [clock = ledger.clock] in clock.now() }
        if let pausedUntil, pausedUntil > now() { return 0 }
        pausedUntil = nil
        var ended = 0
        while !Task.isShuttingDownGracefully {
            let next: OutboxItem?
            do { next = try ledger.nextOutboxItem(now: now(), fenceSeconds: fenceSeconds) } catch {
                logger.error("outbox read failed", metadata: ["error": "\(error)"])
                return ended
            }
            guard let item = next else { return ended }
            do {
                switch try await deliver(item, now: now) {
                case .written(let taskID):
                    try await ledger.completeOutbox(item.id, remoteTaskID: taskID, now: now())
                    logger.info("write-back delivered", metadata: ["entry": "\(item.entryKey)", "action": "\(item.action.rawValue)",
                                                                   "ticket": "\(item.ticketID)", "task": "\(taskID.map(String.init) ?? "-")"])
                case .found(let taskID):
                    try await ledger.completeOutbox(item.id, remoteTaskID: taskID, resolution: .found, now: now())
                    logger.info("write-back found already in the helpdesk", metadata: ["entry": "\(item.entryKey)", "action": "\(item.action.rawValue)",
                                                                                       "ticket": "\(item.ticketID)", "task": "\(taskID.map(String.init) ?? "-")"])
                case .cancelled:
                    try await ledger.cancelOutbox(item, now: now())
                    logger.info("write-back cancelled: the entry was deleted before it reached the helpdesk", metadata: ["entry": "\(item.entryKey)"])
                case .ended:
                    break
                }
                ended += 1
            } catch let lost as LeadershipLost {
                // Another process leads now; it finds this record in doubt and waits its fence out before looking.
                logger.notice("write-back left to the new leader", metadata: ["outbox": "\(item.id)", "reason": "\(lost)"])
                return ended
            } catch let error as HelpdeskError where error.isPermanentRefusal {
                try? await ledger.parkOutbox(item.id, error: "\(error)", now: now())
                logger.warning("write-back refused by the helpdesk and parked; its ticket's later write-backs wait, the others go on",
                               metadata: ["outbox": "\(item.id)", "entry": "\(item.entryKey)", "ticket": "\(item.ticketID)", "error": "\(error)"])
            } catch {
                let delay = Backoff.delivery.delay(failures: item.failures + 1).timeInterval
                let retryAt = now().addingTimeInterval(delay)
                let sentNothing = (error as? HelpdeskError)?.certainlyNotApplied ?? false
                logger.warning("write-back failed, will retry", metadata: ["entry": "\(item.entryKey)", "error": "\(error)",
                                                                          "retry_at": "\(retryAt)", "in_doubt": "\(!sentNothing)"])
                try? await ledger.failOutbox(item.id, error: "\(error)", retryAt: retryAt, sentNothing: sentNothing)
                pausedUntil = now().addingTimeInterval(min(delay, 60))
                return ended
            }
        }
        return ended
    }

    private func deliver(_ item: OutboxItem, now: () -> Date) async throws -> Outcome {
        guard let helpdesk = helpdesk as? any HelpdeskTaskWriter else { return try await deliverNote(item, now: now) }
        let marker = EntrySource.marker(item.entryKey)
        switch item.action {
        case .create:
            // The poller may have linked the task already (it reads tasks and knows markers).
            if let linked = try ledger.remoteTaskID(entryKey: item.entryKey) { return .found(linked) }
            if item.inDoubtSince != nil, let existing = try await helpdesk.findTask(ticketID: item.ticketID, containing: marker) {
                return .found(existing)
            }
            guard try ledger.entryExists(key: item.entryKey) else { return .cancelled }
            guard try await ledger.markOutboxAttempt(item.id, now: now()) else { return .ended }
            try Ledger.fence?.checkSending()
            return .written(try await helpdesk.createTask(NewHelpdeskTask(ticketID: item.ticketID, seconds: item.payload.seconds,
                                                                         note: HelpdeskNote(marker: marker, text: item.payload.text),
                                                                         technician: item.payload.technician, date: item.payload.date,
                                                                         category: item.payload.category)))
        case .update, .delete:
            // The create ahead of this record in its ticket's queue has stored the task id by now; fall back to the key.
            var taskID = try ledger.remoteTaskID(entryKey: item.entryKey) ?? item.payload.remoteTaskID
            if taskID == nil { taskID = try await helpdesk.findTask(ticketID: item.ticketID, containing: marker) }
            guard let taskID else {
                if item.action == .delete { return .written(nil) }
                throw HelpdeskError(.notFound, operation: "update TicketTask", detail: "no task found for entry \(item.entryKey)")
            }
            // Both are idempotent: setting the same fields twice, or deleting a task already gone, changes nothing.
            guard try await ledger.markOutboxAttempt(item.id, now: now()) else { return .ended }
            try Ledger.fence?.checkSending()
            if item.action == .delete {
                try await helpdesk.deleteTask(id: taskID)
            } else {
                try await helpdesk.updateTask(id: taskID, seconds: item.payload.seconds, HelpdeskNote(marker: marker, text: item.payload.text))
            }
            return .written(taskID)
        }
    }

    /// On a helpdesk without editable time records (iTop), every outbox record appends one private note: the entry,
    /// then a correction or a withdrawal. Each note carries a marker of its own, so a retry finds it.
    private func deliverNote(_ item: OutboxItem, now: () -> Date) async throws -> Outcome {
        let marker = item.action == .create ? EntrySource.marker(item.entryKey)
            : EntrySource.marker("\(item.entryKey) \(item.action.rawValue) \(item.id)")
        if item.inDoubtSince != nil, try await helpdesk.findNote(ticketID: item.ticketID, containing: marker) != nil {
            return .found(nil)
        }
        if item.action == .create, try !ledger.entryExists(key: item.entryKey) { return .cancelled }
        // The log keeps every note, so a correction says what changed and why, and a withdrawal what it withdraws.
        let text: String
        switch item.action {
        case .create: text = item.payload.text
        case .update: text = "corrected: " + item.payload.text + item.payload.changeNote
        case .delete: text = "withdrawn: entry \(item.entryKey) no longer counts" + item.payload.changeNote
        }
        guard try await ledger.markOutboxAttempt(item.id, now: now()) else { return .ended }
        try Ledger.fence?.checkSending()
        _ = try await helpdesk.createNote(ticketID: item.ticketID, HelpdeskNote(marker: marker, text: text))
        return .written(nil)
    }
}
