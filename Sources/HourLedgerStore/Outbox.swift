import Foundation
import GRDB
import HourLedgerCore

/// One write to the helpdesk (a task or note created, updated or deleted), kept until it is known to have landed.
public struct OutboxItem: Sendable, Equatable, Codable {
    public enum Action: String, Sendable, Codable { case create, update, delete }

    /// How a record ended.
    public enum Resolution: String, Sendable, Codable {
        /// The helpdesk answered the write.
        case delivered
        /// An earlier attempt whose answer was lost had landed: found by its marker, not written again.
        case found
        /// Its entry was deleted before anything reached the helpdesk: nothing to write or withdraw.
        case cancelled
        /// A manager gave it up.
        case discarded
    }

    public var id: Int64
    public var entryKey: String
    public var action: Action
    public var ticketID: Int
    public var payload: WriteBack
    public var attempts: Int
    /// Failures in a row since the last success: the backoff grows with these, not with attempts a crash cut short.
    public var failures: Int = 0
    public var nextAttemptAt: Date
    public var lastError: String?
    /// Set while an attempt's outcome is unknown (a crash, a timeout, a lost answer): when that attempt started.
    public var inDoubtSince: Date?
    /// Set when the helpdesk refused it for good (ticket gone, write refused); a manager retries or discards it.
    public var parkedAt: Date?
    public var createdAt: Date
    public var doneAt: Date?
    public var resolution: Resolution?

    enum CodingKeys: String, CodingKey {
        case id, action, attempts, failures, resolution
        case entryKey = "entry_key", ticketID = "ticket_id", nextAttemptAt = "next_attempt_at", lastError = "last_error"
        case inDoubtSince = "in_doubt_since", parkedAt = "parked_at", createdAt = "created_at", doneAt = "done_at"
        case payload
    }
}

public struct OutboxStats: Sendable, Codable, Equatable {
    /// Records not yet delivered, parked ones included.
    public var depth: Int
    /// Records the helpdesk refused for good, waiting for a manager.
    public var parked: Int = 0
    /// Records whose last attempt's outcome is unknown; each waits out the write fence before it is looked up.
    public var inDoubt: Int = 0
    public var oldestAgeSeconds: Int?
    public var lastError: String?
    enum CodingKeys: String, CodingKey {
        case depth, parked
        case inDoubt = "in_doubt", oldestAgeSeconds = "oldest_age_seconds", lastError = "last_error"
    }
}

extension LedgerStore {
    static func registerOutboxFence(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v7-outbox-fence-parking") { db in
            try db.execute(sql: """
                ALTER TABLE outbox ADD COLUMN in_doubt_since INTEGER;
                ALTER TABLE outbox ADD COLUMN parked_at INTEGER;
                ALTER TABLE outbox ADD COLUMN resolution TEXT;
                ALTER TABLE outbox ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
                CREATE INDEX outbox_ticket_pending ON outbox(ticket_id, id) WHERE done_at IS NULL;
                -- A record attempted before this version may have landed: it waits out the fence from now, then is looked up.
                UPDATE outbox SET in_doubt_since = CAST(strftime('%s', 'now') AS INTEGER) WHERE done_at IS NULL AND attempts > 0;
                UPDATE outbox SET resolution = 'delivered' WHERE done_at IS NOT NULL;
                ALTER TABLE alert_delivery ADD COLUMN in_doubt_since INTEGER;
                UPDATE alert_delivery SET in_doubt_since = CAST(strftime('%s', 'now') AS INTEGER)
                    WHERE done_at IS NULL AND failed_at IS NULL AND attempts > 0;
                """)
        }
    }

    static func outboxItem(_ row: Row) throws -> OutboxItem {
        func date(_ column: String) -> Date? { (row[column] as Int?).map { Date(timeIntervalSince1970: TimeInterval($0)) } }
        return OutboxItem(id: row["id"], entryKey: row["entry_key"], action: OutboxItem.Action(rawValue: row["action"]) ?? .create,
                          ticketID: row["ticket_id"], payload: try JSONDecoder().decode(WriteBack.self, from: Data((row["payload"] as String).utf8)),
                          attempts: row["attempts"], failures: row["failures"], nextAttemptAt: date("next_attempt_at") ?? .distantPast,
                          lastError: row["last_error"],
                          inDoubtSince: date("in_doubt_since"), parkedAt: date("parked_at"), createdAt: date("created_at") ?? .distantPast,
                          doneAt: date("done_at"), resolution: (row["resolution"] as String?).flatMap(OutboxItem.Resolution.init))
    }

    // MARK: Delivering

    /// The next record to deliver: the oldest pending record of each ticket is that ticket's head, and of the heads
    /// that are not parked, not backing off and not inside the write fence, the oldest. So writes stay in order per
    /// ticket, and one ticket's refused or doubtful write holds up only that ticket.
    ///
    /// `fenceSeconds` is how long after an attempt whose outcome is unknown that attempt could still land (the
    /// client's total timeout plus the helpdesk's own execution limit); only after it is the record looked up again.
    public func nextOutboxItem(now: Date, fenceSeconds: Int) throws -> OutboxItem? {
        let seconds = Int(now.timeIntervalSince1970)
        return try writer.read { db in
            try Row.fetchOne(db, sql: """
                SELECT o.* FROM outbox o
                WHERE o.done_at IS NULL AND o.parked_at IS NULL AND o.next_attempt_at <= ?
                  AND (o.in_doubt_since IS NULL OR o.in_doubt_since <= ?)
                  AND o.id = (SELECT MIN(p.id) FROM outbox p WHERE p.ticket_id = o.ticket_id AND p.done_at IS NULL)
                ORDER BY o.id LIMIT 1
                """, arguments: [seconds, seconds - fenceSeconds]).map(Self.outboxItem)
        }
    }

    /// When the next record becomes due (its backoff or its fence ends), for a worker deciding how long to sleep.
    public func nextOutboxWakeUp(fenceSeconds: Int) throws -> Date? {
        try writer.read { db in
            try Int.fetchOne(db, sql: """
                SELECT MIN(MAX(o.next_attempt_at, COALESCE(o.in_doubt_since + ?, 0))) FROM outbox o
                WHERE o.done_at IS NULL AND o.parked_at IS NULL
                  AND o.id = (SELECT MIN(p.id) FROM outbox p WHERE p.ticket_id = o.ticket_id AND p.done_at IS NULL)
                """, arguments: [fenceSeconds]).map { Date(timeIntervalSince1970: TimeInterval($0)) }
        }
    }

    /// Recorded, and on disk, before each attempt is sent: from here until an answer arrives the write is in doubt,
    /// so after a crash or a timeout the retry waits out the fence and looks for it before writing again.
    /// Returns false when the record ended meanwhile (its entry was deleted, a manager discarded it): then nothing is sent.
    public func markOutboxAttempt(_ id: Int64, now: Date) async throws -> Bool {
        try await writer.write { db in
            try db.execute(sql: "UPDATE outbox SET attempts = attempts + 1, in_doubt_since = ? WHERE id = ? AND done_at IS NULL AND parked_at IS NULL",
                           arguments: [Int(now.timeIntervalSince1970), id])
            return db.changesCount == 1
        }
    }

    public func completeOutbox(_ item: OutboxItem, glpiTaskID: Int?, resolution: OutboxItem.Resolution = .delivered, now: Date) async throws {
        try await writer.write { db in
            try db.execute(sql: "UPDATE outbox SET done_at = ?, last_error = NULL, in_doubt_since = NULL, resolution = ? WHERE id = ?",
                           arguments: [Int(now.timeIntervalSince1970), resolution.rawValue, item.id])
            if item.action == .create, let glpiTaskID {
                try db.execute(sql: "UPDATE entry SET glpi_task_id = ? WHERE entry_key = ?", arguments: [glpiTaskID, item.entryKey])
            }
        }
    }

    /// A failed attempt, retried at `retryAt`. `sentNothing` means the request certainly did not reach the helpdesk
    /// (no connection, no such host) or the helpdesk certainly refused it, so it is no longer in doubt.
    public func failOutbox(_ id: Int64, error: String, retryAt: Date, sentNothing: Bool) async throws {
        try await writer.write { db in
            try db.execute(sql: """
                UPDATE outbox SET last_error = ?, next_attempt_at = ?, failures = failures + 1,
                    in_doubt_since = CASE WHEN ? THEN NULL ELSE in_doubt_since END WHERE id = ?
                """, arguments: [error, Int(retryAt.timeIntervalSince1970), sentNothing, id])
        }
    }

    /// The helpdesk refused the record for good (the ticket is gone, the write is not allowed): it waits for a
    /// manager, and holds up nothing but later writes of its own ticket.
    public func parkOutbox(_ id: Int64, error: String, now: Date) async throws {
        try await writer.write { db in
            try db.execute(sql: "UPDATE outbox SET parked_at = ?, last_error = ?, in_doubt_since = NULL WHERE id = ?",
                           arguments: [Int(now.timeIntervalSince1970), error, id])
        }
    }

    /// A create whose entry was deleted before it ever reached the helpdesk: it, and every later record of its
    /// entry, end as cancelled, since there is nothing to write, correct or withdraw.
    public func cancelOutbox(_ item: OutboxItem, now: Date) async throws {
        try await writer.write { db in try Self.cancel(db, entryKey: item.entryKey, from: item.id, resolution: .cancelled, now: now) }
    }

    static func cancel(_ db: Database, entryKey: String, from id: Int64, resolution: OutboxItem.Resolution, now: Date) throws {
        try db.execute(sql: """
            UPDATE outbox SET done_at = ?, resolution = ?, in_doubt_since = NULL WHERE entry_key = ? AND id >= ? AND done_at IS NULL
            """, arguments: [Int(now.timeIntervalSince1970), resolution.rawValue, entryKey, id])
    }

    /// True when the entry still exists (it may have been deleted while its create waited).
    public func entryExists(key: String) throws -> Bool {
        try writer.read { db in try Bool.fetchOne(db, sql: "SELECT 1 FROM entry WHERE entry_key = ?", arguments: [key]) ?? false }
    }

    // MARK: Managing

    public func outboxItem(id: Int64) throws -> OutboxItem? {
        try writer.read { db in try Row.fetchOne(db, sql: "SELECT * FROM outbox WHERE id = ?", arguments: [id]).map(Self.outboxItem) }
    }

    /// Records for people: pending ones (parked included) oldest first, or only the parked ones.
    public func outboxItems(parkedOnly: Bool = false, limit: Int = 1000) throws -> [OutboxItem] {
        try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT * FROM outbox WHERE done_at IS NULL AND (? = 0 OR parked_at IS NOT NULL) ORDER BY id LIMIT ?
                """, arguments: [parkedOnly, limit]).map(Self.outboxItem)
        }
    }

    /// A manager asks for a parked record to be tried again (after granting a right, restoring a ticket).
    public func retryOutbox(id: Int64, actor: String, now: Date) async throws -> OutboxItem {
        try await writer.write { db in
            let item = try Self.pendingOutbox(db, id: id)
            guard item.parkedAt != nil else {
                throw WorkLogError(code: .transition, field: "id", message: "write-back \(id) is not parked; it is retried by itself")
            }
            try db.execute(sql: "UPDATE outbox SET parked_at = NULL, failures = 0, next_attempt_at = ? WHERE id = ?", arguments: [Int(now.timeIntervalSince1970), id])
            try Self.auditOutbox(db, item, actor: actor, old: "parked: \(item.lastError ?? "")", new: "retry", reason: "", now: now)
            return try Self.pendingOutbox(db, id: id)
        }
    }

    /// A manager gives a record up. A create that never landed takes its entry's later records with it, since they
    /// have nothing to act on; the entry stays in the ledger, and the audit says the helpdesk does not show it.
    /// A record whose last attempt may still land (inside the fence) cannot be discarded yet.
    public func discardOutbox(id: Int64, actor: String, reason: String, fenceSeconds: Int, now: Date) async throws -> [OutboxItem] {
        guard !reason.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw WorkLogError(code: .invalid, field: "reason", message: "discarding a write-back needs a reason")
        }
        return try await writer.write { db in
            let item = try Self.pendingOutbox(db, id: id)
            if let since = item.inDoubtSince, since.addingTimeInterval(TimeInterval(fenceSeconds)) > now {
                throw WorkLogError(code: .transition, field: "id", message: "write-back \(id) was sent at \(ISO8601DateFormatter().string(from: since)) "
                                   + "and may still land; it can be discarded once its fence of \(fenceSeconds) s has passed")
            }
            if item.action == .create {
                try Self.cancel(db, entryKey: item.entryKey, from: item.id, resolution: .discarded, now: now)
            } else {
                try db.execute(sql: "UPDATE outbox SET done_at = ?, resolution = 'discarded', in_doubt_since = NULL WHERE id = ?",
                               arguments: [Int(now.timeIntervalSince1970), id])
            }
            try Self.auditOutbox(db, item, actor: actor, old: item.parkedAt != nil ? "parked: \(item.lastError ?? "")" : "pending",
                                 new: "discarded", reason: reason, now: now)
            return try Row.fetchAll(db, sql: "SELECT * FROM outbox WHERE entry_key = ? AND resolution = 'discarded' AND done_at = ? ORDER BY id",
                                    arguments: [item.entryKey, Int(now.timeIntervalSince1970)]).map(Self.outboxItem)
        }
    }

    static func pendingOutbox(_ db: Database, id: Int64) throws -> OutboxItem {
        guard let item = try Row.fetchOne(db, sql: "SELECT * FROM outbox WHERE id = ?", arguments: [id]).map(Self.outboxItem) else {
            throw WorkLogError(code: .unknownEntry, field: "id", message: "no write-back \(id)")
        }
        guard item.doneAt == nil else {
            throw WorkLogError(code: .transition, field: "id", message: "write-back \(id) is already \(item.resolution?.rawValue ?? "done")")
        }
        return item
    }

    static func auditOutbox(_ db: Database, _ item: OutboxItem, actor: String, old: String, new: String, reason: String, now: Date) throws {
        let contract = try String.fetchOne(db, sql: "SELECT contract_id FROM entry WHERE entry_key = ?", arguments: [item.entryKey])
        try db.execute(sql: """
            INSERT INTO audit(at, actor, entry_key, ticket_id, contract_id, field, old_value, new_value, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [Int(now.timeIntervalSince1970), actor, item.entryKey, item.ticketID, contract, "write_back \(item.id) \(item.action.rawValue)",
                             old, new, reason])
    }

    public func outboxStats(now: Date) throws -> OutboxStats {
        try writer.read { db in
            let row = try Row.fetchOne(db, sql: """
                SELECT COUNT(*) AS n, MIN(created_at) AS oldest, SUM(parked_at IS NOT NULL) AS parked, SUM(in_doubt_since IS NOT NULL) AS doubt,
                       (SELECT last_error FROM outbox WHERE done_at IS NULL AND last_error IS NOT NULL ORDER BY id LIMIT 1) AS error
                FROM outbox WHERE done_at IS NULL
                """)
            let oldest: Int? = row?["oldest"]
            return OutboxStats(depth: row?["n"] ?? 0, parked: row?["parked"] ?? 0, inDoubt: row?["doubt"] ?? 0,
                               oldestAgeSeconds: oldest.map { Int(now.timeIntervalSince1970) - $0 }, lastError: row?["error"])
        }
    }
}
