import Foundation
import HourLedgerCore
import HourLedgerPostgres
import HourLedgerStore
import HourLedgerUseCases

/// `hourledger migrate --from-sqlite FILE`: a whole SQLite ledger copied into the configured PostgreSQL one, and the
/// proof that nothing was lost or changed on the way.
public struct LedgerMigration: Sendable {
    public struct Report: Sendable {
        /// Rows of each table in the file and in PostgreSQL afterwards.
        public var tables: [(name: String, source: Int, target: Int)]
        /// Contract periods whose stored balance was compared, and entries compared field by field.
        public var periodsCompared: Int
        public var entriesCompared: Int
        /// Every difference found; empty when the copy is exact.
        public var differences: [String]
        /// `verify` of the copy: its books and its entries.
        public var books: BooksReport

        public var isExact: Bool { differences.isEmpty && books.problems.isEmpty }
    }

    /// Copies the ledger at `path` into `configuration`'s PostgreSQL ledger, which must be empty, then compares every
    /// table's count, every stored balance and top-up and every entry, and verifies the copy's books. The file is held
    /// with its owner lock meanwhile, so no daemon writes it during the copy.
    public static func fromSQLite(path: String, configuration: HourLedgerConfiguration) throws -> Report {
        guard let location = configuration.postgres else {
            throw StoreError(description: "migrate --from-sqlite copies into PostgreSQL: the config's database must be kind: postgres")
        }
        guard FileManager.default.fileExists(atPath: path) else { throw StoreError(description: "no SQLite ledger at \(path)") }
        let lock = try LedgerLock(databasePath: path, command: "migrate")
        defer { withExtendedLifetime(lock) {} }
        let source = try SQLiteLedger(path: path)
        defer { try? source.close() }
        let target: PostgresLedger
        do {
            target = try PostgresLedger(location: location)
        } catch {
            throw StoreError(description: "cannot open the ledger on \(location.description): \(error)")
        }
        defer { try? target.close() }
        try target.importTables(try source.exportTables())

        var differences: [String] = []
        let sourceCounts = try source.tableCounts(), targetCounts = try target.tableCounts()
        let tables = LedgerTable.names.map { (name: $0, source: sourceCounts[$0] ?? 0, target: targetCounts[$0] ?? 0) }
        for table in tables where table.source != table.target {
            differences.append("table \(table.name): \(table.source) rows in the file, \(table.target) in PostgreSQL")
        }
        func figures(_ repository: any LedgerRepository) throws -> ([String: [String: PeriodUsage]], [String: [TopUp]], [LedgerEntry], Int64) {
            try repository.read { (try $0.periodUsage(changedAfter: 0), try $0.topUps(changedAfter: 0), try $0.allEntries(), try $0.balanceRevision()) }
        }
        let (sourceUsage, sourceTopUps, sourceEntries, sourceRevision) = try figures(source)
        let (targetUsage, targetTopUps, targetEntries, targetRevision) = try figures(target)
        for contract in Set(sourceUsage.keys).union(targetUsage.keys).sorted() {
            let was = sourceUsage[contract] ?? [:], now = targetUsage[contract] ?? [:]
            for period in Set(was.keys).union(now.keys).sorted() where was[period] != now[period] {
                differences.append("balance \(contract) \(period): \(describe(was[period])) in the file, \(describe(now[period])) in PostgreSQL")
            }
        }
        if sourceTopUps != targetTopUps { differences.append("the top-ups differ") }
        if sourceRevision != targetRevision { differences.append("balance revision \(sourceRevision) in the file, \(targetRevision) in PostgreSQL") }
        let copied = Dictionary(targetEntries.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        for entry in sourceEntries where copied[entry.id] != entry {
            differences.append("entry \(entry.id) (ticket \(entry.ticketID)) differs in PostgreSQL")
        }
        let ledger = Ledger(repository: target, profile: configuration.helpdesk.profile, book: contractBook(configuration))
        return Report(tables: tables, periodsCompared: sourceUsage.values.map(\.count).reduce(0, +), entriesCompared: sourceEntries.count,
                      differences: differences, books: try ledger.verifyBooks())
    }

    private static func describe(_ usage: PeriodUsage?) -> String {
        usage.map { "used \($0.usedSeconds) s, raw \($0.rawSeconds) s, \($0.entryCount) entries" } ?? "nothing"
    }
}
