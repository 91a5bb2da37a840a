import Foundation
import GRDB
import HourLedgerCore
import HourLedgerUseCases

/// Why the ledger file could not be opened, in one line for the operator.
public struct StoreError: Error, CustomStringConvertible {
    public let description: String

    public init(description: String) { self.description = description }
}

/// The ledger on SQLite (GRDB), in WAL mode. Every use-case transaction is one SQLite transaction.
public final class SQLiteLedger: LedgerRepository {
    public let writer: any DatabaseWriter

    /// Opens (creating if needed) the ledger at `path` in WAL mode and runs pending migrations.
    public convenience init(path: String) throws {
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        if !FileManager.default.fileExists(atPath: directory) {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw StoreError(description: "cannot create database directory \(directory): \(error.localizedDescription)")
            }
        }
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        let pool: DatabasePool
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
        } catch {
            throw StoreError(description: "cannot open database \(path): \(error)")
        }
        do {
            try pool.writeWithoutTransaction { try Self.prepareWriter($0) }
        } catch {
            throw StoreError(description: "cannot set up database \(path): \(error)")
        }
        try self.init(writer: pool)
    }

    /// The writing connection's settings, set after GRDB turned WAL on (which sets `synchronous = NORMAL`, and
    /// NORMAL in WAL mode syncs only at checkpoints: a power cut could lose the last commits, webhooks answered
    /// 2xx included). FULL fsyncs the WAL at every commit. A statement journal (every insert that fires a trigger
    /// keeps one) in memory instead of a temporary file, and an 8 MB page cache instead of 2 MB: in a first sync of
    /// 200,000 tasks, 2,773 of 2,900 traced writes went to that journal file (11.6–14.8 s before, 7.5–8.2 s after,
    /// `hourledger-bench --tickets 20000`). 16 MB made a first sync of a million tasks peak at 152–156 MB against
    /// 123–125 MB with 4 or 8 MB, and no faster within the machine's noise.
    static func prepareWriter(_ db: Database) throws {
        try db.execute(sql: "PRAGMA synchronous = FULL; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -8192")
    }

    /// An in-memory SQLite ledger, for tests of the SQL itself.
    public static func inMemory() throws -> SQLiteLedger {
        try SQLiteLedger(writer: DatabaseQueue())
    }

    public init(writer: any DatabaseWriter) throws {
        self.writer = writer
        try Migrations.migrator.migrate(writer)
        try writer.write { db in try Self.openBooks(db) }
    }

    /// The body, then this transaction's changes chained into the books, in the same transaction.
    private static func transact<T>(_ db: Database, _ body: (any LedgerWriter) throws -> T) throws -> T {
        let transaction = SQLiteTransaction(db: db)
        let value = try body(transaction)
        try transaction.flushBook()
        return value
    }

    /// A ledger from before the books (version 17) gets one opening record per contract holding every entry as it
    /// stands, so `verify` checks it from then on.
    static func openBooks(_ db: Database) throws {
        guard try Int.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM book_record)") == 0,
              try Int.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM entry)") == 1 else { return }
        let transaction = SQLiteTransaction(db: db)
        for entry in try transaction.allEntries() { transaction.book.note(.entry(entry), contract: entry.contractID) }
        try transaction.flushBook()
    }

    public func read<T>(_ body: (any LedgerReader) throws -> T) throws -> T {
        try Self.mapped { try writer.read { db in try body(SQLiteTransaction(db: db)) } }
    }

    public func write<T>(_ body: (any LedgerWriter) throws -> T) throws -> T {
        try Self.mapped { try writer.write { db in try Self.transact(db, body) } }
    }

    public func write<T: Sendable>(_ body: @escaping @Sendable (any LedgerWriter) throws -> T) async throws -> T {
        do {
            return try await writer.write { db in try Self.transact(db, body) }
        } catch {
            throw Self.unavailable(error) ?? error
        }
    }

    /// Folds the WAL into the database file and closes the connections; the last thing a stopping daemon does.
    /// The explicit checkpoint matters: GRDB closes the writer before its read-only readers, which cannot checkpoint.
    public func close() throws {
        if writer is DatabasePool {
            try writer.writeWithoutTransaction { try $0.checkpoint(.truncate) }
        }
        try writer.close()
    }

    private static func mapped<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch { throw unavailable(error) ?? error }
    }

    /// The errors that mean the ledger cannot be written at all, as opposed to a bad request or a bug.
    static func unavailable(_ error: any Error) -> LedgerUnavailable? {
        guard let error = error as? DatabaseError else { return nil }
        let reason: String
        switch error.resultCode {
        case .SQLITE_FULL: reason = "the disk is full"
        case .SQLITE_READONLY, .SQLITE_PERM: reason = "the ledger is read-only"
        case .SQLITE_IOERR: reason = "an I/O error (\(error.message ?? "disk"))"
        case .SQLITE_CORRUPT, .SQLITE_NOTADB: reason = "the ledger file is damaged"
        case .SQLITE_CANTOPEN: reason = "the ledger file cannot be opened"
        default: return nil
        }
        return LedgerUnavailable(reason: reason, detail: "\(error)")
    }
}

/// One transaction's view of the ledger: the SQL behind each repository operation.
struct SQLiteTransaction: LedgerWriter {
    let db: Database
    /// This transaction's changes to the books, chained in at its end.
    let book = BookBuffer()

    func flushBook() throws {
        try book.flush(at: Date(), head: { try bookHead(contractID: $0) }, append: { record in
            try db.run(sql: "INSERT INTO book_record(contract_id, seq, at, content, previous_hash, hash) VALUES (?, ?, ?, ?, ?, ?)",
                       arguments: [record.contractID, record.seq, record.at, record.content, record.previousHash, record.hash])
        })
    }

    func bookHead(contractID: String) throws -> (seq: Int, hash: String)? {
        try db.rows(sql: "SELECT seq, hash FROM book_record WHERE contract_id = ? ORDER BY seq DESC LIMIT 1", arguments: [contractID]).first
            .map { ($0["seq"], $0["hash"]) }
    }

    func bookRecords() throws -> [BookRecord] {
        try Row.fetchAll(db, sql: "SELECT * FROM book_record ORDER BY id").map {
            BookRecord(id: $0["id"], contractID: $0["contract_id"], seq: $0["seq"], at: $0["at"], content: $0["content"],
                       previousHash: $0["previous_hash"], hash: $0["hash"])
        }
    }

    func allEntries() throws -> [LedgerEntry] {
        try Row.fetchAll(db, sql: "SELECT * FROM entry ORDER BY id").map(Self.entry)
    }
}

extension Database {
    /// Runs a statement compiled once per connection: the sync writes the same few statements a million times.
    func run(sql: String, arguments: StatementArguments) throws {
        try cachedStatement(sql: sql).execute(arguments: arguments)
    }

    func rows(sql: String, arguments: StatementArguments = []) throws -> [Row] {
        try Row.fetchAll(cachedStatement(sql: sql), arguments: arguments)
    }
}

/// Whole seconds since 1970, as every instant is stored.
func seconds(_ date: Date) -> Int { Int(date.timeIntervalSince1970) }

func date(_ seconds: Int) -> Date { Date(timeIntervalSince1970: TimeInterval(seconds)) }

func date(_ seconds: Int?) -> Date? { seconds.map { Date(timeIntervalSince1970: TimeInterval($0)) } }

/// Ids in groups SQLite's parameter limit allows.
func chunked<T>(_ values: [T], by size: Int = 500) -> [[T]] {
    stride(from: 0, to: values.count, by: size).map { Array(values[$0..<min($0 + size, values.count)]) }
}
