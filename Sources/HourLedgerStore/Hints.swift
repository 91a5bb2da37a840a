import Foundation
import GRDB

/// A helpdesk's "this ticket changed" webhook, kept until a sync has re-read the ticket through the API.
public struct TicketHint: Sendable, Equatable {
    public var ticketID: Int
    public var receivedAt: Date
    public var count: Int
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

    /// Records that the helpdesk said these tickets changed. Duplicates fold into one row per ticket.
    public func addHints(_ ticketIDs: [Int], now: Date = Date()) async throws {
        try await writer.write { db in
            for id in ticketIDs {
                try db.execute(sql: """
                    INSERT INTO ticket_hint(ticket_id, received_at, count) VALUES (?, ?, 1)
                    ON CONFLICT(ticket_id) DO UPDATE SET count = count + 1
                    """, arguments: [id, Int(now.timeIntervalSince1970)])
            }
        }
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
