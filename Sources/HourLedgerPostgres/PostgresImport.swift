import Foundation
import HourLedgerUseCases
import PostgresNIO

extension PostgresLedger {
    /// The columns SQLite keeps as 0 or 1 and PostgreSQL as a boolean.
    static let booleanColumns: Set<String> = ["entry.is_private"]

    /// Copies a whole ledger into this one, in one transaction under the write lock: all of it or none. Refused
    /// unless this ledger is empty, so a copy never mixes with what is here. Ids, balance revisions and counts come
    /// over as they are; each table's id sequence continues after the highest id copied.
    public func importTables(_ tables: [LedgerTable]) throws {
        try withWritingSession { session in
            try session.transaction("BEGIN") {
                try session.execute("SELECT pg_advisory_xact_lock(\(unescaped: String(Self.writeLockClass)), hashtext(current_schema()))")
                let used = try session.rows("""
                    SELECT (SELECT COUNT(*) FROM ticket) + (SELECT COUNT(*) FROM entry) + (SELECT COUNT(*) FROM book_record)
                        + (SELECT COUNT(*) FROM api_token) + (SELECT COUNT(*) FROM outbox) AS n
                    """).first.map { try $0["n"] as Int } ?? 0
                guard used == 0 else {
                    throw LedgerStoreError("the PostgreSQL ledger \(location.description) is not empty (\(used) tickets, entries, records, tokens "
                                           + "and write-backs): migrate into a new database or schema")
                }
                for table in tables {
                    // What the triggers counted while rows came in is replaced by the source's own figures.
                    if table.name == "balance_revision" || table.name == "ledger_count" { try session.execute(PostgresQuery(unsafeSQL: "DELETE FROM \(table.name)")) }
                    try insert(table, into: session)
                }
                for table in ["entry", "contract_move", "timer", "outbox", "audit", "api_token", "alert", "alert_delivery", "top_up", "book_record"] {
                    try session.execute(PostgresQuery(unsafeSQL: """
                        SELECT setval(pg_get_serial_sequence('\(table)', 'id'), COALESCE((SELECT MAX(id) FROM \(table)), 0) + 1, false)
                        """))
                }
                try session.execute("SELECT setval('balance_revision_seq', COALESCE((SELECT MAX(revision) FROM balance_revision), 0) + 1, false)")
            }
        }
    }

    private func insert(_ table: LedgerTable, into session: Session) throws {
        let columns = table.columns.map { "\"\($0)\"" }.joined(separator: ", ")
        let booleans = table.columns.map { Self.booleanColumns.contains("\(table.name).\($0)") }
        let perStatement = max(1, 1000 / max(1, table.columns.count))
        var start = 0
        while start < table.rows.count {
            let end = min(start + perStatement, table.rows.count)
            var binds = PostgresBindings(capacity: (end - start) * table.columns.count)
            var values: [String] = []
            for row in table.rows[start..<end] {
                guard row.count == table.columns.count else { throw LedgerStoreError("a row of \(table.name) has \(row.count) values") }
                let first = binds.count + 1
                values.append("(" + (first..<first + row.count).map { "$\($0)" }.joined(separator: ", ") + ")")
                for (index, value) in row.enumerated() {
                    switch value {
                    case .integer(let number) where booleans[index]: binds.append(number != 0)
                    case .integer(let number): binds.append(Int(number))
                    case .text(let text): binds.append(text)
                    case .real(let number): binds.append(number)
                    case .null: binds.appendNull()
                    }
                }
            }
            try session.execute(PostgresQuery(unsafeSQL: "INSERT INTO \(table.name) (\(columns)) VALUES \(values.joined(separator: ", "))",
                                              binds: binds))
            start = end
        }
    }

    /// The number of rows of each ledger table.
    public func tableCounts() throws -> [String: Int] {
        try withWritingSession { session in
            try Dictionary(uniqueKeysWithValues: LedgerTable.names.map { name in
                (name, try session.rows(PostgresQuery(unsafeSQL: "SELECT COUNT(*) AS n FROM \(name)")).first.map { try $0["n"] as Int } ?? 0)
            })
        }
    }
}
