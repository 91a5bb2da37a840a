import Foundation
import GRDB
import HourLedgerCore

extension LedgerStore {
    static func registerTicketRemoval(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v9-ticket-removal") { db in
            try db.execute(sql: """
                ALTER TABLE ticket ADD COLUMN removed TEXT;
                ALTER TABLE ticket ADD COLUMN removed_at INTEGER;
                """)
        }
    }

    /// Marks tickets that left the helpdesk: each loses its contract, its entries leave the balances, and the move is
    /// recorded with why. Tickets not in the ledger, or already marked, are left alone. Returns the ids marked.
    @discardableResult
    public func markRemoved(_ ids: [Int], as removal: TicketRemoval, now: Date) async throws -> [Int] {
        guard !ids.isEmpty else { return [] }
        return try await writer.write { db in
            var marked: [Int] = []
            let stamp = Int(now.timeIntervalSince1970)
            for id in Set(ids).sorted() {
                guard let ticket = try Row.fetchOne(db, sql: "SELECT contract_id FROM ticket WHERE id = ? AND removed IS NULL", arguments: [id]) else {
                    continue
                }
                let previous: String? = ticket["contract_id"]
                try db.execute(sql: "UPDATE ticket SET removed = ?, removed_at = ?, contract_id = NULL, match_reason = ? WHERE id = ?",
                               arguments: [removal.rawValue, stamp, removal.reason, id])
                var deltas = BalanceDeltas()
                var moved = 0
                for row in try Row.fetchAll(db, sql: "SELECT * FROM entry WHERE ticket_id = ?", arguments: [id]) {
                    deltas.remove(row)
                    moved += row["raw_seconds"] as Int
                    try db.execute(sql: """
                        UPDATE entry SET contract_id = NULL, period_key = NULL, billed_seconds = raw_seconds, rounding = ?, updated_at = ? WHERE id = ?
                        """, arguments: [RoundingPolicy.none.description, stamp, row["id"] as Int64])
                }
                try deltas.apply(db)
                try db.execute(sql: "INSERT INTO contract_move(ticket_id, from_contract, to_contract, raw_seconds, at, reason) VALUES (?, ?, NULL, ?, ?, ?)",
                               arguments: [id, previous, moved, stamp, removal.reason])
                marked.append(id)
            }
            return marked
        }
    }

    /// The ids of the tickets that are still in the helpdesk, as far as the ledger knows.
    public func liveTicketIDs() throws -> Set<Int> {
        try writer.read { db in Set(try Int.fetchAll(db, sql: "SELECT id FROM ticket WHERE removed IS NULL")) }
    }

    /// Why a ticket cannot take new time: nil while it is in the helpdesk.
    static func removal(_ db: Database, ticket: Int) throws -> TicketRemoval? {
        try String.fetchOne(db, sql: "SELECT removed FROM ticket WHERE id = ?", arguments: [ticket]).flatMap(TicketRemoval.init)
    }
}
