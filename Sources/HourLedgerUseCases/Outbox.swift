import Foundation
import HourLedgerCore

// MARK: Managing write-backs

extension Ledger {
    public func outboxItem(id: Int64) throws -> OutboxItem? { try read { try $0.outboxItem(id: id) } }

    /// Records for people: pending ones (parked included) oldest first, or only the parked ones.
    public func outboxItems(parkedOnly: Bool = false, limit: Int = 1000) throws -> [OutboxItem] {
        try read { try $0.pendingOutboxItems(parkedOnly: parkedOnly, limit: limit) }
    }

    public func outboxStats(now: Date? = nil) throws -> OutboxStats {
        let now = now ?? clock.now()
        return try read { try $0.outboxStats(now: now) }
    }

    /// A manager asks for a parked record to be tried again (after granting a right, restoring a ticket).
    public func retryOutbox(id: Int64, actor: String, now: Date? = nil) async throws -> OutboxItem {
        let now = now ?? clock.now()
        let item = try await write { tx -> OutboxItem in
            var item = try Self.pendingOutbox(tx, id: id)
            guard item.parkedAt != nil else {
                throw LedgerError(code: .transition, field: "id", message: "write-back \(id) is not parked; it is retried by itself")
            }
            let was = item
            item.parkedAt = nil
            item.failures = 0
            item.nextAttemptAt = now
            try tx.updateOutboxItem(item)
            try Self.auditOutbox(tx, was, actor: actor, old: "parked: \(was.lastError ?? "")", new: "retry", reason: "", now: now)
            return item
        }
        outboxQueued.signal()
        return item
    }

    /// A manager gives a record up. A create that never landed takes its entry's later records with it, since they
    /// have nothing to act on; the entry stays in the ledger, and the audit says the helpdesk does not show it.
    /// A record whose last attempt may still land (inside the fence) cannot be discarded yet.
    public func discardOutbox(id: Int64, actor: String, reason: String, fenceSeconds: Int, now: Date? = nil) async throws -> [OutboxItem] {
        guard !reason.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw LedgerError(code: .invalid, field: "reason", message: "discarding a write-back needs a reason")
        }
        let now = now ?? clock.now()
        return try await write { tx in
            var item = try Self.pendingOutbox(tx, id: id)
            if let since = item.inDoubtSince, since.addingTimeInterval(TimeInterval(fenceSeconds)) > now {
                throw LedgerError(code: .transition, field: "id", message: "write-back \(id) was sent at \(ISO8601DateFormatter().string(from: since)) "
                                  + "and may still land; it can be discarded once its fence of \(fenceSeconds) s has passed")
            }
            let was = item
            if item.action == .create {
                try Self.cancel(tx, entryKey: item.entryKey, from: item.id, resolution: .discarded, now: now)
            } else {
                item.doneAt = now
                item.resolution = .discarded
                item.inDoubtSince = nil
                try tx.updateOutboxItem(item)
            }
            try Self.auditOutbox(tx, was, actor: actor, old: was.parkedAt != nil ? "parked: \(was.lastError ?? "")" : "pending",
                                 new: "discarded", reason: reason, now: now)
            let second = Int(now.timeIntervalSince1970)
            return try tx.outboxItems(entryKey: was.entryKey).filter {
                $0.resolution == .discarded && $0.doneAt.map { Int($0.timeIntervalSince1970) } == second
            }
        }
    }

    static func pendingOutbox(_ tx: any LedgerReader, id: Int64) throws -> OutboxItem {
        guard let item = try tx.outboxItem(id: id) else {
            throw LedgerError(code: .unknownEntry, field: "id", message: "no write-back \(id)")
        }
        guard item.isPending else {
            throw LedgerError(code: .transition, field: "id", message: "write-back \(id) is already \(item.resolution?.rawValue ?? "done")")
        }
        return item
    }

    static func auditOutbox(_ tx: any LedgerWriter, _ item: OutboxItem, actor: String, old: String, new: String, reason: String, now: Date) throws {
        try tx.insertAudit(AuditRecord(at: now, actor: actor, entryKey: item.entryKey, ticketID: item.ticketID,
                                       contractID: try tx.entry(key: item.entryKey)?.contractID,
                                       field: "write_back \(item.id) \(item.action.rawValue)", oldValue: old, newValue: new, reason: reason))
    }
}

// MARK: Steps of a delivery

extension Ledger {
    /// The next record to deliver (see `LedgerReader.nextOutboxItem`).
    public func nextOutboxItem(now: Date? = nil, fenceSeconds: Int) throws -> OutboxItem? {
        let now = now ?? clock.now()
        return try read { try $0.nextOutboxItem(now: now, fenceSeconds: fenceSeconds) }
    }

    public func nextOutboxWakeUp(fenceSeconds: Int) throws -> Date? { try read { try $0.nextOutboxWakeUp(fenceSeconds: fenceSeconds) } }

    /// Recorded, and on disk, before each attempt is sent: from here until an answer arrives the write is in doubt,
    /// so after a crash or a timeout the retry waits out the fence and looks for it before writing again.
    /// Returns false when the record ended meanwhile (its entry was deleted, a manager discarded it): then nothing is sent.
    public func markOutboxAttempt(_ id: Int64, now: Date? = nil) async throws -> Bool {
        let now = now ?? clock.now()
        return try await write { tx in
            guard var item = try tx.outboxItem(id: id), item.isPending, item.parkedAt == nil else { return false }
            item.attempts += 1
            item.inDoubtSince = now
            try tx.updateOutboxItem(item)
            return true
        }
    }

    /// The record landed (or was found to have landed); a create links its entry to the task it made.
    public func completeOutbox(_ id: Int64, remoteTaskID: Int?, resolution: OutboxItem.Resolution = .delivered, now: Date? = nil) async throws {
        let now = now ?? clock.now()
        try await write { tx in
            guard var item = try tx.outboxItem(id: id) else { return }
            item.doneAt = now
            item.lastError = nil
            item.inDoubtSince = nil
            item.resolution = resolution
            try tx.updateOutboxItem(item)
            if item.action == .create, let remoteTaskID { try tx.setRemoteTaskID(remoteTaskID, entryKey: item.entryKey) }
        }
    }

    /// A failed attempt, retried at `retryAt`. `sentNothing` means the request certainly did not reach the helpdesk
    /// (no connection, no such host) or the helpdesk certainly refused it, so it is no longer in doubt.
    public func failOutbox(_ id: Int64, error: String, retryAt: Date, sentNothing: Bool) async throws {
        try await write { tx in
            guard var item = try tx.outboxItem(id: id) else { return }
            item.lastError = error
            item.nextAttemptAt = retryAt
            item.failures += 1
            if sentNothing { item.inDoubtSince = nil }
            try tx.updateOutboxItem(item)
        }
    }

    /// The helpdesk refused the record for good (the ticket is gone, the write is not allowed): it waits for a
    /// manager, and holds up nothing but later writes of its own ticket.
    public func parkOutbox(_ id: Int64, error: String, now: Date? = nil) async throws {
        let now = now ?? clock.now()
        try await write { tx in
            guard var item = try tx.outboxItem(id: id) else { return }
            item.parkedAt = now
            item.lastError = error
            item.inDoubtSince = nil
            try tx.updateOutboxItem(item)
        }
    }

    /// A create whose entry was deleted before it ever reached the helpdesk: it, and every later record of its entry,
    /// end as cancelled.
    public func cancelOutbox(_ item: OutboxItem, now: Date? = nil) async throws {
        let now = now ?? clock.now()
        try await write { tx in try Self.cancel(tx, entryKey: item.entryKey, from: item.id, resolution: .cancelled, now: now) }
    }

    /// The helpdesk task an entry's write-back made, as the outbox needs it when an update or delete is delivered.
    public func remoteTaskID(entryKey: String) throws -> Int? { try read { try $0.entry(key: entryKey)?.remoteTaskID } }

    /// True when the entry still exists (it may have been deleted while its create waited).
    public func entryExists(key: String) throws -> Bool { try read { try $0.entry(key: key) != nil } }
}
