import Foundation
import HourLedgerCore
import HourLedgerUseCases
import HourLedgerStore
import Logging
import ServiceLifecycle

/// Delivers the outbox to the helpdesk: in order per ticket, exactly once per record.
///
/// Exactly once rests on three rules. Each attempt is recorded on disk before it is sent, so a record whose answer
/// never came is known to be in doubt. A record in doubt is not sent again until the write fence has passed, the time
/// after which the earlier attempt can no longer land (the client's total timeout plus the helpdesk's own execution
/// limit, `helpdesk.write_grace_seconds`). After the fence it is looked up by the marker its text carries, and only
/// written if it is not there.
public actor OutboxWorker: Service {
    private let store: LedgerStore
    private let connector: any HelpdeskPort
    private let maxRunningTimerSeconds: Int?
    private let idle: Duration
    /// Seconds after an attempt during which it may still land.
    public nonisolated let fenceSeconds: Int
    private let logger: Logger
    /// After a failure that looks like the helpdesk's (down, slow, refusing our credentials) rather than one record's,
    /// nothing is sent until then, so an outage is not hammered one record after another.
    private var pausedUntil: Date?

    public init(store: LedgerStore, connector: any HelpdeskPort, maxRunningTimerSeconds: Int?, fenceSeconds: Int = 120,
                idle: Duration = .seconds(1), logger: Logger = Logger(label: "hourledger.outbox")) {
        self.store = store
        self.connector = connector
        self.maxRunningTimerSeconds = maxRunningTimerSeconds
        self.fenceSeconds = fenceSeconds
        self.idle = idle
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            await drain()
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: self.idle) }
            } catch {
                break
            }
        }
        logger.info("outbox worker stopped")
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
    public func drain(now: @Sendable () -> Date = { Date() }) async -> Int {
        if let cap = maxRunningTimerSeconds {
            do {
                for timer in try await store.applyTimerCap(maxRunningSeconds: cap, now: now()) {
                    logger.warning("timer paused at the running cap and flagged for review",
                                   metadata: ["timer": "\(timer.id)", "ticket": "\(timer.ticketID)", "technician": "\(timer.technician)"])
                }
            } catch {
                logger.error("timer cap check failed", metadata: ["error": "\(error)"])
            }
        }
        if let pausedUntil, pausedUntil > now() { return 0 }
        pausedUntil = nil
        var ended = 0
        while !Task.isShuttingDownGracefully {
            let next: OutboxItem?
            do { next = try store.nextOutboxItem(now: now(), fenceSeconds: fenceSeconds) } catch {
                logger.error("outbox read failed", metadata: ["error": "\(error)"])
                return ended
            }
            guard let item = next else { return ended }
            do {
                switch try await deliver(item, now: now) {
                case .written(let taskID):
                    try await store.completeOutbox(item, glpiTaskID: taskID, now: now())
                    logger.info("write-back delivered", metadata: ["entry": "\(item.entryKey)", "action": "\(item.action.rawValue)",
                                                                   "ticket": "\(item.ticketID)", "task": "\(taskID.map(String.init) ?? "-")"])
                case .found(let taskID):
                    try await store.completeOutbox(item, glpiTaskID: taskID, resolution: .found, now: now())
                    logger.info("write-back found already in the helpdesk", metadata: ["entry": "\(item.entryKey)", "action": "\(item.action.rawValue)",
                                                                                       "ticket": "\(item.ticketID)", "task": "\(taskID.map(String.init) ?? "-")"])
                case .cancelled:
                    try await store.cancelOutbox(item, now: now())
                    logger.info("write-back cancelled: the entry was deleted before it reached the helpdesk", metadata: ["entry": "\(item.entryKey)"])
                case .ended:
                    break
                }
                ended += 1
            } catch let error as HelpdeskError where error.isPermanentRefusal {
                try? await store.parkOutbox(item.id, error: "\(error)", now: now())
                logger.warning("write-back refused by the helpdesk and parked; its ticket's later write-backs wait, the others go on",
                               metadata: ["outbox": "\(item.id)", "entry": "\(item.entryKey)", "ticket": "\(item.ticketID)", "error": "\(error)"])
            } catch {
                let delay = Self.backoff(attempts: item.failures + 1)
                let retryAt = now().addingTimeInterval(delay)
                let sentNothing = (error as? HelpdeskError)?.certainlyNotApplied ?? false
                logger.warning("write-back failed, will retry", metadata: ["entry": "\(item.entryKey)", "error": "\(error)",
                                                                          "retry_at": "\(retryAt)", "in_doubt": "\(!sentNothing)"])
                try? await store.failOutbox(item.id, error: "\(error)", retryAt: retryAt, sentNothing: sentNothing)
                pausedUntil = now().addingTimeInterval(min(delay, 60))
                return ended
            }
        }
        return ended
    }

    private func deliver(_ item: OutboxItem, now: () -> Date) async throws -> Outcome {
        guard let connector = connector as? any HelpdeskTaskWriter else { return try await deliverNote(item, now: now) }
        let marker = EntrySource.marker(item.entryKey)
        switch item.action {
        case .create:
            // The poller may have linked the task already (it reads tasks and knows markers).
            if let linked = try store.glpiTaskID(entryKey: item.entryKey) { return .found(linked) }
            if item.inDoubtSince != nil, let existing = try await connector.findTask(ticketID: item.ticketID, containing: marker) {
                return .found(existing)
            }
            guard try store.entryExists(key: item.entryKey) else { return .cancelled }
            guard try await store.markOutboxAttempt(item.id, now: now()) else { return .ended }
            return .written(try await connector.createTask(NewHelpdeskTask(ticketID: item.ticketID, seconds: item.payload.seconds,
                                                                          content: item.payload.content, technician: item.payload.technician,
                                                                          date: item.payload.date, category: item.payload.category)))
        case .update, .delete:
            // The create ahead of this record in its ticket's queue has stored the task id by now; fall back to the key.
            var taskID = try store.glpiTaskID(entryKey: item.entryKey) ?? item.payload.glpiTaskID
            if taskID == nil { taskID = try await connector.findTask(ticketID: item.ticketID, containing: marker) }
            guard let taskID else {
                if item.action == .delete { return .written(nil) }
                throw HelpdeskError(.notFound, operation: "update TicketTask", detail: "no task found for entry \(item.entryKey)")
            }
            // Both are idempotent: setting the same fields twice, or deleting a task already gone, changes nothing.
            guard try await store.markOutboxAttempt(item.id, now: now()) else { return .ended }
            if item.action == .delete {
                try await connector.deleteTask(id: taskID)
            } else {
                try await connector.updateTask(id: taskID, seconds: item.payload.seconds, content: item.payload.content)
            }
            return .written(taskID)
        }
    }

    /// On a helpdesk without editable time records (iTop), every outbox record appends one private note: the entry,
    /// then a correction or a withdrawal. Each note carries a marker of its own, so a retry finds it.
    private func deliverNote(_ item: OutboxItem, now: () -> Date) async throws -> Outcome {
        let entryMarker = EntrySource.marker(item.entryKey)
        let marker = item.action == .create ? entryMarker : EntrySource.marker("\(item.entryKey) \(item.action.rawValue) \(item.id)")
        if item.inDoubtSince != nil, try await connector.findFollowup(ticketID: item.ticketID, containing: marker) != nil {
            return .found(nil)
        }
        if item.action == .create, try !store.entryExists(key: item.entryKey) { return .cancelled }
        let content: String
        switch item.action {
        case .create: content = item.payload.content
        case .update:
            // The log keeps every note, so a correction says what changed and why.
            let corrected = item.payload.content.replacingOccurrences(of: entryMarker, with: marker + " corrected:")
            content = corrected.hasSuffix("</p>") ? String(corrected.dropLast(4)) + HTMLText.escape(item.payload.changeNote) + "</p>" : corrected
        case .delete: content = "<p>\(marker) withdrawn: entry \(item.entryKey) no longer counts\(HTMLText.escape(item.payload.changeNote))</p>"
        }
        guard try await store.markOutboxAttempt(item.id, now: now()) else { return .ended }
        _ = try await connector.createFollowup(ticketID: item.ticketID, content: content)
        return .written(nil)
    }

    /// 5 s × 2^(attempts−1), capped at an hour, with ±20 % jitter.
    static func backoff(attempts: Int) -> TimeInterval {
        min(3600, 5 * pow(2, Double(min(max(attempts - 1, 0), 20)))) * Double.random(in: 0.8...1.2)
    }
}
