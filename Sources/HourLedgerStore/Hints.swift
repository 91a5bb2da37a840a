import Foundation
import GRDB

/// A helpdesk's "this ticket changed" webhook, kept until a sync has re-read the ticket through the API.
public struct TicketHint: Sendable, Equatable {
    public var ticketID: Int
    public var receivedAt: Date
    public var count: Int
}

/// One webhook delivery: the ticket it points at, and the signature that makes a replay recognisable (nil when the
/// helpdesk does not sign, as iTop).
public struct WebhookDelivery: Sendable, Equatable {
    public var ticketID: Int
    public var signature: String?

    public init(ticketID: Int, signature: String? = nil) {
        self.ticketID = ticketID
        self.signature = signature
    }
}

/// Gathers the webhook deliveries that arrive while a commit is running into the next commit. Each caller still
/// returns only after its own hint is on disk, but a thousand concurrent deliveries cost a few commits, not a thousand.
public actor DeliveryRecorder {
    private let store: LedgerStore
    private let replayWindow: @Sendable () -> Duration
    private let committed: @Sendable () async -> Void
    private var waiting: [(WebhookDelivery, CheckedContinuation<Bool, any Error>)] = []
    private var committing = false

    /// `replayWindow` is how long a signature is remembered: at least as long as a timestamp stays acceptable.
    /// `committed` runs after each commit that stored a new hint (to wake the poller), once per commit.
    public init(store: LedgerStore, replayWindow: @escaping @Sendable () -> Duration, committed: @escaping @Sendable () async -> Void = {}) {
        self.store = store
        self.replayWindow = replayWindow
        self.committed = committed
    }

    /// Returns once the delivery is durable: true if it was new, false if its signature was already recorded.
    public func record(_ delivery: WebhookDelivery) async throws -> Bool {
        try await withCheckedThrowingContinuation { continuation in
            waiting.append((delivery, continuation))
            if !committing {
                committing = true
                Task { await self.commitWaiting() }
            }
        }
    }

    private func commitWaiting() async {
        while !waiting.isEmpty {
            let batch = waiting
            waiting = []
            let now = Date()
            let forget = now.addingTimeInterval(-Double(replayWindow().components.seconds) * 2 - 60)
            do {
                let fresh = try await store.recordDeliveries(batch.map(\.0), now: now, forgetBefore: forget)
                if fresh.contains(true) { await committed() }
                for (index, item) in batch.enumerated() { item.1.resume(returning: fresh[index]) }
            } catch {
                for item in batch { item.1.resume(throwing: error) }
            }
        }
        committing = false
    }
}

extension LedgerStore {
    static func registerHints(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v5-itop-hints") { db in
            try db.execute(sql: """
                ALTER TABLE ticket ADD COLUMN service INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE ticket ADD COLUMN agent INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE ticket ADD COLUMN class TEXT NOT NULL DEFAULT '';
                ALTER TABLE ticket ADD COLUMN ref TEXT NOT NULL DEFAULT '';
                ALTER TABLE ticket ADD COLUMN query_matches TEXT NOT NULL DEFAULT '';
                CREATE TABLE ticket_hint (
                    ticket_id INTEGER PRIMARY KEY,
                    received_at INTEGER NOT NULL,
                    count INTEGER NOT NULL
                );
                """)
        }
    }

    static func registerWebhookDeliveries(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v6-webhook-deliveries") { db in
            try db.execute(sql: """
                CREATE TABLE webhook_delivery (
                    signature TEXT PRIMARY KEY,
                    received_at INTEGER NOT NULL
                );
                CREATE INDEX webhook_delivery_received_at ON webhook_delivery(received_at);
                """)
        }
    }

    /// Stores webhook hints in one transaction, so many concurrent deliveries share one commit. A delivery with a
    /// signature already seen is a replay: its hint is not stored again. Signatures older than `forgetBefore` are
    /// dropped, since their timestamps can no longer pass the freshness check. Returns, per delivery, whether it was new.
    public func recordDeliveries(_ deliveries: [WebhookDelivery], now: Date, forgetBefore: Date) async throws -> [Bool] {
        try await writer.write { db in
            try db.execute(sql: "DELETE FROM webhook_delivery WHERE received_at < ?", arguments: [Int(forgetBefore.timeIntervalSince1970)])
            let remember = try db.cachedStatement(sql: "INSERT INTO webhook_delivery(signature, received_at) VALUES (?, ?) ON CONFLICT DO NOTHING")
            let hint = try db.cachedStatement(sql: """
                INSERT INTO ticket_hint(ticket_id, received_at, count) VALUES (?, ?, 1)
                ON CONFLICT(ticket_id) DO UPDATE SET count = count + 1
                """)
            let seconds = Int(now.timeIntervalSince1970)
            var fresh: [Bool] = []
            fresh.reserveCapacity(deliveries.count)
            for delivery in deliveries {
                if let signature = delivery.signature {
                    try remember.execute(arguments: [signature, seconds])
                    guard db.changesCount == 1 else {
                        fresh.append(false)
                        continue
                    }
                }
                try hint.execute(arguments: [delivery.ticketID, seconds])
                fresh.append(true)
            }
            return fresh
        }
    }

    /// Records that the helpdesk said these tickets changed, without a signature to remember (as iTop sends them).
    public func addHints(_ ticketIDs: [Int], now: Date = Date()) async throws {
        _ = try await recordDeliveries(ticketIDs.map { WebhookDelivery(ticketID: $0) }, now: now, forgetBefore: .distantPast)
    }

    /// Hints waiting for a sync, oldest first.
    public func pendingHints(limit: Int = 10_000) throws -> [TicketHint] {
        try writer.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM ticket_hint ORDER BY received_at, ticket_id LIMIT ?", arguments: [limit]).map {
                TicketHint(ticketID: $0["ticket_id"], receivedAt: Date(timeIntervalSince1970: TimeInterval($0["received_at"] as Int)), count: $0["count"])
            }
        }
    }

    /// Drops the hints a sync has served. A hint that arrived again meanwhile (received later) stays for the next sync.
    public func clearHints(_ hints: [TicketHint]) async throws {
        try await writer.write { db in
            for hint in hints {
                try db.execute(sql: "DELETE FROM ticket_hint WHERE ticket_id = ? AND count = ?", arguments: [hint.ticketID, hint.count])
            }
        }
    }
}

/// A ticket the helpdesk would not let the daemon read: kept, shown in /status, and read again at every poll until
/// it syncs.
public struct TicketFailureRecord: Sendable, Equatable, Codable {
    public var ticketID: Int
    public var error: String
    public var firstFailedAt: Date
    public var lastFailedAt: Date
    public var attempts: Int

    enum CodingKeys: String, CodingKey {
        case error, attempts
        case ticketID = "ticket_id", firstFailedAt = "first_failed_at", lastFailedAt = "last_failed_at"
    }
}

extension LedgerStore {
    static func registerTicketFailures(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v8-ticket-failures") { db in
            try db.execute(sql: """
                CREATE TABLE ticket_failure (
                    ticket_id INTEGER PRIMARY KEY,
                    error TEXT NOT NULL,
                    first_failed_at INTEGER NOT NULL,
                    last_failed_at INTEGER NOT NULL,
                    attempts INTEGER NOT NULL
                );
                """)
        }
    }

    /// Records this poll's failed tickets and forgets the ones that synced; returns the tickets that failed for the
    /// first time (for the log).
    @discardableResult
    public func recordTicketReads(failed: [(ticketID: Int, error: String)], synced: [Int], now: Date) async throws -> [Int] {
        guard !failed.isEmpty || !synced.isEmpty else { return [] }
        return try await writer.write { db in
            let stamp = Int(now.timeIntervalSince1970)
            var new: [Int] = []
            for failure in failed {
                let known = try Bool.fetchOne(db, sql: "SELECT 1 FROM ticket_failure WHERE ticket_id = ?", arguments: [failure.ticketID]) ?? false
                if !known { new.append(failure.ticketID) }
                try db.execute(sql: """
                    INSERT INTO ticket_failure(ticket_id, error, first_failed_at, last_failed_at, attempts) VALUES (?, ?, ?, ?, 1)
                    ON CONFLICT(ticket_id) DO UPDATE SET error = excluded.error, last_failed_at = excluded.last_failed_at, attempts = attempts + 1
                    """, arguments: [failure.ticketID, failure.error, stamp, stamp])
            }
            for chunk in stride(from: 0, to: synced.count, by: 500).map({ Array(synced[$0..<min($0 + 500, synced.count)]) }) {
                try db.execute(sql: "DELETE FROM ticket_failure WHERE ticket_id IN (\(databaseQuestionMarks(count: chunk.count)))",
                               arguments: StatementArguments(chunk))
            }
            return new
        }
    }

    public func ticketFailures(limit: Int = 10_000) throws -> [TicketFailureRecord] {
        try writer.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM ticket_failure ORDER BY first_failed_at, ticket_id LIMIT ?", arguments: [limit]).map {
                TicketFailureRecord(ticketID: $0["ticket_id"], error: $0["error"],
                                    firstFailedAt: Date(timeIntervalSince1970: TimeInterval($0["first_failed_at"] as Int)),
                                    lastFailedAt: Date(timeIntervalSince1970: TimeInterval($0["last_failed_at"] as Int)), attempts: $0["attempts"])
            }
        }
    }
}
