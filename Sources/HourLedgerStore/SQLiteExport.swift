import Foundation
import GRDB
import HourLedgerUseCases

extension SQLiteLedger {
    /// Every row of every ledger table, read in one snapshot, for a copy to another store.
    public func exportTables() throws -> [LedgerTable] {
        try writer.read { db in
            try LedgerTable.names.map { name in
                let columns = try db.columns(in: name).map(\.name)
                let rows = try Row.fetchAll(db, sql: "SELECT * FROM \(name) ORDER BY rowid").map { row in
                    Array(row.databaseValues).map { value -> LedgerTable.Value in
                        switch value.storage {
                        case .int64(let number): .integer(number)
                        case .string(let text): .text(text)
                        case .double(let number): .real(number)
                        case .null: .null
                        case .blob(let data): .text(String(decoding: data, as: UTF8.self))
                        }
                    }
                }
                return LedgerTable(name: name, columns: columns, rows: rows)
            }
        }
    }

    /// The number of rows of each ledger table.
    public func tableCounts() throws -> [String: Int] {
        try writer.read { db in
            try Dictionary(uniqueKeysWithValues: LedgerTable.names.map { ($0, try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \($0)") ?? 0) })
        }
    }
}
