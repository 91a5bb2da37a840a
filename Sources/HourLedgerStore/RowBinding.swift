import GRDB
import GRDBSQLite

/// Binds a statement's parameters one by one through SQLite's C API. GRDB's `StatementArguments` boxes every value
/// in an existential and converts it again when binding: in a first sync of 200,000 tasks that was about a quarter of
/// the writing thread's time (`perf`, `hourledger-bench --tickets 20000`). Used only where a statement runs per row.
struct RowBinding {
    private let statement: SQLiteStatement
    private(set) var index: CInt = 1

    fileprivate init(_ statement: SQLiteStatement) { self.statement = statement }

    mutating func bind(_ value: Int) {
        check(sqlite3_bind_int64(statement, index, Int64(value)))
    }

    mutating func bind(_ value: Int?) {
        guard let value else { return bindNull() }
        bind(value)
    }

    mutating func bind(_ value: Bool) { bind(value ? 1 : 0) }

    /// Copied by SQLite (`SQLITE_TRANSIENT`): the text outlives this call in the bound statement.
    mutating func bind(_ value: String) {
        var value = value
        let code = value.withUTF8 { bytes in
            // An empty buffer may have no address, which SQLite would bind as NULL.
            bytes.isEmpty ? sqlite3_bind_text(statement, index, "", 0, transient)
                : sqlite3_bind_text(statement, index, bytes.baseAddress.map { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) },
                                    CInt(bytes.count), transient)
        }
        check(code)
    }

    mutating func bind(_ value: String?) {
        guard let value else { return bindNull() }
        bind(value)
    }

    mutating func bindNull() { check(sqlite3_bind_null(statement, index)) }

    private mutating func check(_ code: CInt) {
        // Only a parameter index out of range or a value over SQLite's size limit fail here: a defect in the SQL.
        precondition(code == SQLITE_OK, "binding parameter \(index) failed: SQLite code \(code)")
        index += 1
    }
}

private let transient = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)

extension Database {
    /// Runs a statement compiled once per connection, its parameters bound by `bind` in order. GRDB still runs the
    /// statement, so errors, transaction state and observers are as with `run(sql:arguments:)`.
    func run(sql: String, bind: (inout RowBinding) -> Void) throws {
        let statement = try cachedStatement(sql: sql)
        // Resets the statement and clears its bindings; GRDB then takes the bindings made here as valid.
        statement.setUncheckedArguments([])
        var binding = RowBinding(statement.sqliteStatement)
        bind(&binding)
        precondition(binding.index - 1 == sqlite3_bind_parameter_count(statement.sqliteStatement),
                     "bound \(binding.index - 1) of \(sqlite3_bind_parameter_count(statement.sqliteStatement)) parameters")
        try statement.execute()
    }
}
