import Foundation
import HourLedgerCore
import HourLedgerHelpdesk
import HourLedgerStore
import Logging
import ServiceLifecycle

/// Delivers the outbox to the helpdesk, oldest first, exactly once per entry. Before each attempt the store records it;
/// a record that was attempted before is first looked up in the helpdesk by its key, so a crash between "the helpdesk
/// created the task" and "we stored its id" never produces a second task.
public actor OutboxWorker: Service {
    private let store: LedgerStore
    private let connector: any HelpdeskConnector
    private let maxRunningTimerSeconds: Int?
    private let idle: Duration
    private let logger: Logger

    public init(store: LedgerStore, connector: any HelpdeskConnector, maxRunningTimerSeconds: Int?, idle: Duration = .seconds(1),
                logger: Logger = Logger(label: "hourledger.outbox")) {
        self.store = store
        self.connector = connector
        self.maxRunningTimerSeconds = maxRunningTimerSeconds
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

    /// Delivers due items in order until the outbox is empty, the head is not due yet, or a delivery fails.
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
        var delivered = 0
        while !Task.isShuttingDownGracefully {
            let next: (item: OutboxItem, due: Bool)?
            do { next = try store.nextOutboxItem(now: now()) } catch {
                logger.error("outbox read failed", metadata: ["error": "\(error)"])
                return delivered
            }
            guard let (item, due) = next, due else { return delivered }
            do {
                let taskID = try await deliver(item)
                try await store.completeOutbox(item, glpiTaskID: taskID, now: now())
                delivered += 1
                logger.info("write-back delivered", metadata: ["entry": "\(item.entryKey)", "action": "\(item.action.rawValue)",
                                                               "ticket": "\(item.ticketID)", "task": "\(taskID.map(String.init) ?? "-")"])
            } catch {
                let retryAt = now().addingTimeInterval(Self.backoff(attempts: item.attempts + 1))
                logger.warning("write-back failed, will retry", metadata: ["entry": "\(item.entryKey)", "error": "\(error)",
                                                                          "retry_at": "\(retryAt)"])
                try? await store.failOutbox(item.id, error: "\(error)", retryAt: retryAt)
                return delivered
            }
        }
        return delivered
    }

    private func deliver(_ item: OutboxItem) async throws -> Int? {
        guard let connector = connector as? any HelpdeskTaskWriter else { return try await deliverNote(item) }
        switch item.action {
        case .create:
            let marker = EntrySource.marker(item.entryKey)
            if item.attempts > 0, let existing = try await connector.findTask(ticketID: item.ticketID, containing: marker) {
                logger.info("write-back found already in the helpdesk", metadata: ["entry": "\(item.entryKey)", "task": "\(existing)"])
                return existing
            }
            try await store.markOutboxAttempt(item.id)
            return try await connector.createTask(NewHelpdeskTask(ticketID: item.ticketID, seconds: item.payload.seconds,
                                                                 content: item.payload.content, technician: item.payload.technician,
                                                                 date: item.payload.date, category: item.payload.category))
        case .update, .delete:
            try await store.markOutboxAttempt(item.id)
            // The create ahead of this record in the queue has stored the task id by now; fall back to the key.
            var taskID = try store.glpiTaskID(entryKey: item.entryKey) ?? item.payload.glpiTaskID
            if taskID == nil { taskID = try await connector.findTask(ticketID: item.ticketID, containing: EntrySource.marker(item.entryKey)) }
            guard let taskID else {
                if item.action == .delete { return nil }
                throw HelpdeskError(.notFound, operation: "update TicketTask", detail: "no task found for entry \(item.entryKey)")
            }
            if item.action == .delete {
                try await connector.deleteTask(id: taskID)
            } else {
                try await connector.updateTask(id: taskID, seconds: item.payload.seconds, content: item.payload.content)
            }
            return taskID
        }
    }

    /// On a helpdesk without editable time records (iTop), every outbox record appends one private note: the entry,
    /// then a correction or a withdrawal. Each note carries a marker of its own, so a retry after a crash finds it.
    private func deliverNote(_ item: OutboxItem) async throws -> Int? {
        let entryMarker = EntrySource.marker(item.entryKey)
        let marker = item.action == .create ? entryMarker : EntrySource.marker("\(item.entryKey) \(item.action.rawValue) \(item.id)")
        if item.attempts > 0, let found = try await connector.findFollowup(ticketID: item.ticketID, containing: marker) {
            logger.info("write-back found already in the helpdesk", metadata: ["entry": "\(item.entryKey)", "note": "\(found)"])
            return nil
        }
        let content: String
        switch item.action {
        case .create: content = item.payload.content
        case .update: content = item.payload.content.replacingOccurrences(of: entryMarker, with: marker + " corrected:")
        case .delete: content = "<p>\(marker) withdrawn: entry \(item.entryKey) no longer counts</p>"
        }
        try await store.markOutboxAttempt(item.id)
        _ = try await connector.createFollowup(ticketID: item.ticketID, content: content)
        return nil
    }

    /// 5 s × 2^(attempts−1), capped at an hour, with ±20 % jitter.
    static func backoff(attempts: Int) -> TimeInterval {
        min(3600, 5 * pow(2, Double(min(max(attempts - 1, 0), 20)))) * Double.random(in: 0.8...1.2)
    }
}
