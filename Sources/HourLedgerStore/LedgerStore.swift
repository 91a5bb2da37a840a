import Foundation
import GRDB
import HourLedgerCore

/// Where an entry came from.
public enum EntrySource {
    /// Time logged in HourLedger (a timer or a manual entry), written back to the helpdesk.
    public static let hourledger = "hourledger"

    /// The tag an entry's write-back carries in the helpdesk, so a retry or the poller can find it.
    public static func marker(_ key: String) -> String { "[hourledger:\(key)]" }
}

/// What one sync of one ticket changed in the ledger.
public struct TicketSyncOutcome: Sendable, Equatable {
    public var entriesAdded = 0
    public var entriesUpdated = 0
    public var entriesDeleted = 0
    public var movedFrom: String?
    public var movedTo: String?
    public var changed: Bool { entriesAdded + entriesUpdated + entriesDeleted > 0 || movedFrom != movedTo }
}

/// One period of a contract's balance: remaining = quota + carried in − used − expired.
public struct BalanceRow: Sendable, Equatable {
    public var contractID: String
    public var periodKey: String
    public var periodStart: Date
    public var periodEnd: Date?
    public var quotaSeconds: Int
    public var usedSeconds: Int
    public var rawSeconds: Int
    public var entryCount: Int
    public var carriedInSeconds = 0
    public var expiredSeconds = 0
    public var overageSeconds = 0
    /// Unused hours moved on to the next period when this one closed.
    public var carriedOutSeconds = 0
    public var expiringAtEndSeconds = 0
    public var closed = false
    public var movements: [BlockMovement] = []

    public var availableSeconds: Int { quotaSeconds + carriedInSeconds }
    public var remainingSeconds: Int { quotaSeconds + carriedInSeconds - usedSeconds - expiredSeconds }
    /// Used share of the available hours in percent, to two decimals.
    public var percentUsed: Double {
        availableSeconds > 0 ? (Double(usedSeconds) * 10000 / Double(availableSeconds)).rounded() / 100 : 0
    }

    init(statement: PeriodStatement, contractID: String, rawSeconds: Int, entryCount: Int) {
        self.contractID = contractID
        periodKey = statement.period.key
        periodStart = statement.period.start
        periodEnd = statement.period.end
        quotaSeconds = statement.quotaSeconds
        usedSeconds = statement.usedSeconds
        self.rawSeconds = rawSeconds
        self.entryCount = entryCount
        carriedInSeconds = statement.carriedInSeconds
        expiredSeconds = statement.expiredSeconds
        overageSeconds = statement.overageSeconds
        carriedOutSeconds = statement.carriedOutSeconds
        expiringAtEndSeconds = statement.expiringAtEndSeconds
        closed = statement.closed
        movements = statement.movements
    }
}

public struct TicketUsage: Sendable, Equatable, Codable {
    public var ticketID: Int
    public var name: String
    public var usedSeconds: Int
    public var rawSeconds: Int
    public var entryCount: Int

    enum CodingKeys: String, CodingKey {
        case name
        case ticketID = "ticket_id", usedSeconds = "used_seconds", rawSeconds = "raw_seconds", entryCount = "entry_count"
    }
}

public struct UnmatchedTicket: Sendable, Equatable, Codable {
    public var ticketID: Int
    /// The helpdesk's reference (iTop R-000042); empty where it has none (GLPI).
    public var ref: String = ""
    public var name: String
    public var entity: Int
    public var groups: [Int]
    public var category: Int
    public var reason: String
    public var rawSeconds: Int

    enum CodingKeys: String, CodingKey {
        case name, entity, groups, category, reason, ref
        case ticketID = "ticket_id", rawSeconds = "raw_seconds"
    }
}


public struct ContractMove: Sendable, Equatable, Codable {
    public var ticketID: Int
    public var fromContract: String?
    public var toContract: String?
    public var rawSeconds: Int
    public var at: Date
    public var reason: String
}

public struct StoreError: Error, CustomStringConvertible {
    public let description: String
}

/// The ledger on SQLite. Every write is one transaction, so entries and balances never disagree.
public final class LedgerStore: Sendable {
    public let writer: any DatabaseWriter
    /// Whether writes currently succeed (a full disk makes them all fail).
    public let health = StoreHealth()

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
        try self.init(writer: pool)
    }

    /// An in-memory ledger, for tests and dry runs.
    public static func inMemory() throws -> LedgerStore {
        try LedgerStore(writer: DatabaseQueue())
    }

    public init(writer: any DatabaseWriter) throws {
        self.writer = writer
        try Self.migrator.migrate(writer)
    }

    /// Folds the WAL into the database file and closes the connections; the last thing a stopping daemon does.
    /// The explicit checkpoint matters: GRDB closes the writer before its read-only readers, which cannot checkpoint.
    public func close() throws {
        if writer is DatabasePool {
            try writer.writeWithoutTransaction { try $0.checkpoint(.truncate) }
        }
        try writer.close()
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-ledger") { db in
            try db.execute(sql: """
                CREATE TABLE ticket (
                    id INTEGER PRIMARY KEY,
                    name TEXT NOT NULL,
                    entity INTEGER NOT NULL,
                    groups TEXT NOT NULL,
                    category INTEGER NOT NULL,
                    status INTEGER NOT NULL,
                    date_mod TEXT NOT NULL,
                    contract_id TEXT,
                    match_reason TEXT NOT NULL,
                    task_fingerprint TEXT,
                    synced_at INTEGER NOT NULL
                );
                CREATE INDEX ticket_contract ON ticket(contract_id);
                CREATE TABLE entry (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    source TEXT NOT NULL,
                    source_id INTEGER NOT NULL,
                    ticket_id INTEGER NOT NULL,
                    contract_id TEXT,
                    period_key TEXT,
                    worked_at INTEGER NOT NULL,
                    raw_seconds INTEGER NOT NULL CHECK (raw_seconds >= 0),
                    billed_seconds INTEGER NOT NULL CHECK (billed_seconds >= 0),
                    rounding TEXT NOT NULL,
                    technician INTEGER NOT NULL,
                    is_private INTEGER NOT NULL,
                    content TEXT NOT NULL,
                    updated_at INTEGER NOT NULL,
                    UNIQUE (source, source_id)
                );
                CREATE INDEX entry_ticket ON entry(ticket_id);
                CREATE INDEX entry_balance ON entry(contract_id, period_key);
                CREATE TABLE balance (
                    contract_id TEXT NOT NULL,
                    period_key TEXT NOT NULL,
                    period_start INTEGER NOT NULL,
                    period_end INTEGER,
                    quota_seconds INTEGER NOT NULL,
                    used_seconds INTEGER NOT NULL,
                    raw_seconds INTEGER NOT NULL,
                    entry_count INTEGER NOT NULL,
                    PRIMARY KEY (contract_id, period_key)
                );
                CREATE TABLE contract_move (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    ticket_id INTEGER NOT NULL,
                    from_contract TEXT,
                    to_contract TEXT,
                    raw_seconds INTEGER NOT NULL,
                    at INTEGER NOT NULL,
                    reason TEXT NOT NULL
                );
                CREATE INDEX contract_move_ticket ON contract_move(ticket_id);
                CREATE TABLE sync_state (
                    key TEXT PRIMARY KEY,
                    value TEXT NOT NULL
                );
                """)
        }
        migrator.registerMigration("v2-timers-entries-outbox") { db in
            try db.execute(sql: """
                ALTER TABLE entry ADD COLUMN kind TEXT NOT NULL DEFAULT 'billable';
                ALTER TABLE entry ADD COLUMN entry_key TEXT;
                ALTER TABLE entry ADD COLUMN note TEXT NOT NULL DEFAULT '';
                ALTER TABLE entry ADD COLUMN glpi_task_id INTEGER;
                ALTER TABLE entry ADD COLUMN created_by TEXT;
                CREATE UNIQUE INDEX entry_key ON entry(entry_key) WHERE entry_key IS NOT NULL;
                CREATE TABLE timer (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    technician INTEGER NOT NULL,
                    ticket_id INTEGER NOT NULL,
                    status TEXT NOT NULL,
                    state TEXT NOT NULL,
                    started_at INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL,
                    entry_id INTEGER
                );
                -- One open timer per technician and ticket, enforced by SQLite itself.
                CREATE UNIQUE INDEX timer_open ON timer(technician, ticket_id) WHERE status != 'stopped';
                CREATE TABLE outbox (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    entry_key TEXT NOT NULL,
                    action TEXT NOT NULL,
                    ticket_id INTEGER NOT NULL,
                    payload TEXT NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    next_attempt_at INTEGER NOT NULL,
                    last_error TEXT,
                    created_at INTEGER NOT NULL,
                    done_at INTEGER
                );
                CREATE INDEX outbox_pending ON outbox(done_at, id);
                CREATE TABLE audit (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    at INTEGER NOT NULL,
                    actor TEXT NOT NULL,
                    entry_key TEXT NOT NULL,
                    ticket_id INTEGER NOT NULL,
                    contract_id TEXT,
                    field TEXT NOT NULL,
                    old_value TEXT,
                    new_value TEXT,
                    reason TEXT NOT NULL
                );
                CREATE INDEX audit_ticket ON audit(ticket_id);
                CREATE INDEX audit_contract ON audit(contract_id);
                CREATE TABLE api_token (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    hash TEXT NOT NULL UNIQUE,
                    user TEXT NOT NULL,
                    helpdesk_user_id INTEGER NOT NULL,
                    role TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    revoked_at INTEGER
                );
                """)
        }
        migrator.registerMigration("v3-approval") { db in
            try db.execute(sql: "ALTER TABLE entry ADD COLUMN approval TEXT NOT NULL DEFAULT 'approved'")
            try db.execute(sql: "ALTER TABLE entry ADD COLUMN task_category INTEGER")
        }
        registerSettlement(&migrator)
        registerHints(&migrator)
        registerWebhookDeliveries(&migrator)
        registerOutboxFence(&migrator)
        registerTicketFailures(&migrator)
        registerTicketRemoval(&migrator)
        return migrator
    }

    // MARK: Sync state

    public func state(_ key: String) throws -> String? {
        try writer.read { db in try String.fetchOne(db, sql: "SELECT value FROM sync_state WHERE key = ?", arguments: [key]) }
    }

    public func setState(_ key: String, _ value: String) throws {
        try writer.write { db in
            try db.execute(sql: "INSERT INTO sync_state(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                           arguments: [key, value])
        }
    }

    /// For each of `ticketIDs`, the helpdesk's summary of its tasks at the time they were last read.
    public func taskFingerprints(_ ticketIDs: [Int]) throws -> [Int: String] {
        guard !ticketIDs.isEmpty else { return [:] }
        return try writer.read { db in
            var result: [Int: String] = [:]
            for chunk in stride(from: 0, to: ticketIDs.count, by: 500).map({ Array(ticketIDs[$0..<min($0 + 500, ticketIDs.count)]) }) {
                let marks = databaseQuestionMarks(count: chunk.count)
                let rows = try Row.fetchAll(db, sql: "SELECT id, task_fingerprint FROM ticket WHERE task_fingerprint IS NOT NULL AND id IN (\(marks))",
                                            arguments: StatementArguments(chunk))
                for row in rows { result[row["id"]] = row["task_fingerprint"] }
            }
            return result
        }
    }

    /// The contracts whose query rule selected each of these tickets when it was last asked.
    public func storedQueryMatches(_ ticketIDs: [Int]) throws -> [Int: [String]] {
        guard !ticketIDs.isEmpty else { return [:] }
        return try writer.read { db in
            var result: [Int: [String]] = [:]
            for chunk in stride(from: 0, to: ticketIDs.count, by: 500).map({ Array(ticketIDs[$0..<min($0 + 500, ticketIDs.count)]) }) {
                for row in try Row.fetchAll(db, sql: "SELECT id, query_matches FROM ticket WHERE id IN (\(databaseQuestionMarks(count: chunk.count)))",
                                            arguments: StatementArguments(chunk)) {
                    result[row["id"]] = (row["query_matches"] as String).split(separator: ",").map(String.init)
                }
            }
            return result
        }
    }

    /// Of tasks the helpdesk says changed, the tickets whose stored entries differ from them in any field the ledger
    /// keeps (seconds, date, technician, privacy, text), or that the ledger has not seen. Tasks HourLedger wrote are
    /// its own entries' and never differ.
    public func ticketsWhoseTasksDiffer(_ tasks: [Int: [TaskFacts]]) throws -> Set<Int> {
        let all = tasks.values.flatMap { $0 }
        guard !all.isEmpty else { return [] }
        return try writer.read { db in
            var stored: [Int: Row] = [:]
            var own = Set<Int>()
            let ids = all.map(\.id)
            for chunk in stride(from: 0, to: ids.count, by: 500).map({ Array(ids[$0..<min($0 + 500, ids.count)]) }) {
                let marks = databaseQuestionMarks(count: chunk.count)
                for row in try Row.fetchAll(db, sql: """
                    SELECT source_id, worked_at, raw_seconds, technician, is_private, content FROM entry
                    WHERE source = 'glpi_task' AND source_id IN (\(marks))
                    """, arguments: StatementArguments(chunk)) { stored[row["source_id"]] = row }
                own.formUnion(try Int.fetchAll(db, sql: "SELECT glpi_task_id FROM entry WHERE glpi_task_id IN (\(marks))",
                                               arguments: StatementArguments(chunk)))
            }
            var differ = Set<Int>()
            for task in all where !own.contains(task.id) {
                guard let row = stored[task.id] else { differ.insert(task.ticketID); continue }
                let same = (row["worked_at"] as Int) == Int(task.date.timeIntervalSince1970) && (row["raw_seconds"] as Int) == task.seconds
                    && (row["technician"] as Int) == task.technician && (row["is_private"] as Bool) == task.isPrivate
                    && (row["content"] as String) == task.content
                if !same { differ.insert(task.ticketID) }
            }
            return differ
        }
    }

    // MARK: Applying helpdesk facts

    /// Stores a ticket, its contract link and (when given) its complete task list, in one transaction.
    /// `tasks == nil` means the tasks were not re-read: existing entries stay, but follow the ticket's contract.
    @discardableResult
    public func apply(
        ticket: TicketFacts, dateMod: String, match: MatchResult, contracts: [Contract], tasks: [TaskFacts]?, now: Date = Date()
    ) throws -> TicketSyncOutcome {
        try writer.write { db in
            try Self.apply(db, ticket: ticket, dateMod: dateMod, match: match, contracts: contracts, tasks: tasks, taskFingerprint: nil,
                           periods: PeriodCache(), now: now)
        }
    }

    public struct TicketUpdate: Sendable {
        public var ticket: TicketFacts
        public var dateMod: String
        public var match: MatchResult
        /// The complete task list, or nil when the tasks were not re-read.
        public var tasks: [TaskFacts]?
        /// The search's summary of the tasks that `tasks` was read after; kept to skip the next read if it is unchanged.
        public var taskFingerprint: String?

        public init(ticket: TicketFacts, dateMod: String, match: MatchResult, tasks: [TaskFacts]?, taskFingerprint: String?) {
            self.ticket = ticket
            self.dateMod = dateMod
            self.match = match
            self.tasks = tasks
            self.taskFingerprint = taskFingerprint
        }
    }

    /// Applies many tickets in one transaction: one fsync per batch instead of per ticket.
    /// The write runs on GRDB's writer queue, not on the caller's thread, so the next batch can be read meanwhile.
    public func applyBatch(_ items: [TicketUpdate], contracts: [Contract], now: Date = Date()) async throws -> [TicketSyncOutcome] {
        try await writer.write { db in
            let periods = PeriodCache()
            return try items.map {
                try Self.apply(db, ticket: $0.ticket, dateMod: $0.dateMod, match: $0.match, contracts: contracts, tasks: $0.tasks,
                               taskFingerprint: $0.taskFingerprint, periods: periods, now: now)
            }
        }
    }

    private static func apply(
        _ db: Database, ticket: TicketFacts, dateMod: String, match: MatchResult, contracts: [Contract], tasks: [TaskFacts]?,
        taskFingerprint: String?, periods: PeriodCache, now: Date
    ) throws -> TicketSyncOutcome {
        var outcome = TicketSyncOutcome()
        let contract = match.contractID.flatMap { id in contracts.first { $0.id == id } }
        let stored = try db.rows(sql: "SELECT contract_id, removed FROM ticket WHERE id = ?", arguments: [ticket.id]).first
        let known = stored != nil
        let previousContract: String? = stored?["contract_id"]
        // A ticket read again after it was marked gone is back (restored from the trash, visible again).
        let restored = (stored?["removed"] as String?).flatMap(TicketRemoval.init)
        try db.run(sql: """
            INSERT INTO ticket(id, name, entity, groups, category, status, date_mod, contract_id, match_reason, task_fingerprint, synced_at,
                               service, agent, class, ref, query_matches)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?13, ?14, ?15, ?16, ?17)
            ON CONFLICT(id) DO UPDATE SET name = excluded.name, entity = excluded.entity, groups = excluded.groups,
                category = excluded.category, status = excluded.status, date_mod = excluded.date_mod,
                contract_id = excluded.contract_id, match_reason = excluded.match_reason,
                task_fingerprint = CASE WHEN ?12 THEN ticket.task_fingerprint ELSE excluded.task_fingerprint END,
                synced_at = excluded.synced_at, service = excluded.service, agent = excluded.agent, class = excluded.class,
                ref = excluded.ref, query_matches = excluded.query_matches, removed = NULL, removed_at = NULL
            """, arguments: [ticket.id, ticket.name, ticket.entity, ticket.groups.map(String.init).joined(separator: ","),
                             ticket.category, ticket.status, dateMod, contract?.id, match.reason, tasks == nil ? nil : taskFingerprint,
                             Int(now.timeIntervalSince1970), tasks == nil, ticket.service, ticket.agent, ticket.ticketClass, ticket.ref,
                             ticket.queryMatches.joined(separator: ",")])

        var deltas = BalanceDeltas()
        let all = try db.rows(sql: """
            SELECT id, source, source_id, contract_id, period_key, worked_at, raw_seconds, billed_seconds, rounding, technician,
                   is_private, content, kind, entry_key, glpi_task_id, approval, note
            FROM entry WHERE ticket_id = ?
            """, arguments: [ticket.id])
        let existing = all.filter { $0["source"] as String == "glpi_task" }
        let own = all.filter { $0["source"] as String == EntrySource.hourledger }
        var existingBySource: [Int: Row] = [:]
        for row in existing { existingBySource[row["source_id"]] = row }

        // Re-attribution: a ticket whose contract changed takes all its entries along, and the move is recorded.
        if known, previousContract != contract?.id || restored != nil {
            let moved = all.reduce(0) { $0 + ($1["raw_seconds"] as Int) }
            let reason = restored.map { "back in the helpdesk (it had been \($0 == .trashed ? "in the trash" : "gone")); " } ?? ""
            try db.run(sql: "INSERT INTO contract_move(ticket_id, from_contract, to_contract, raw_seconds, at, reason) VALUES (?, ?, ?, ?, ?, ?)",
                           arguments: [ticket.id, previousContract, contract?.id, moved, Int(now.timeIntervalSince1970), reason + match.reason])
            outcome.movedFrom = previousContract
            outcome.movedTo = contract?.id
        }

        func placement(_ workedAt: Date, _ raw: Int) -> (period: Period?, billed: Int, rounding: String) {
            guard let contract else { return (nil, raw, RoundingPolicy.none.description) }
            return (periods.period(of: contract, containing: workedAt), contract.rounding.billedSeconds(forRaw: raw), contract.rounding.description)
        }

        /// Moves an entry whose own facts did not change to the ticket's current contract. An entry HourLedger wrote
        /// back has its task or note brought up to date: it names the contract, and the new rounding may bill differently.
        func replace(_ row: Row) throws {
            let workedAt = Date(timeIntervalSince1970: TimeInterval(row["worked_at"] as Int))
            let place = placement(workedAt, row["raw_seconds"])
            deltas.remove(row)
            try db.run(sql: "UPDATE entry SET contract_id = ?, period_key = ?, billed_seconds = ?, rounding = ?, updated_at = ? WHERE id = ?",
                       arguments: [contract?.id, place.period?.key, place.billed, place.rounding, Int(now.timeIntervalSince1970), row["id"] as Int64])
            deltas.add(contract: contract, period: place.period, billed: place.billed, raw: row["raw_seconds"], kind: row["kind"],
                       approval: row["approval"])
            outcome.entriesUpdated += 1
            guard (row["source"] as String) == EntrySource.hourledger, (row["approval"] as String?) == Approval.approved.rawValue,
                  let key = row["entry_key"] as String?,
                  try Bool.fetchOne(db, sql: "SELECT 1 FROM outbox WHERE entry_key = ? AND action = 'create' AND resolution IS NOT 'cancelled'",
                                    arguments: [key]) ?? false
            else { return }
            let moved = WorkEntry(id: row["id"], key: key, ticketID: ticket.id, contractID: contract?.id, periodKey: place.period?.key,
                                  workedAt: workedAt, rawSeconds: row["raw_seconds"], billedSeconds: place.billed, rounding: place.rounding,
                                  technician: row["technician"], kind: EntryKind(rawValue: row["kind"]) ?? .billable, note: row["note"] ?? "",
                                  glpiTaskID: row["glpi_task_id"], approval: .approved)
            try enqueue(db, action: .update, entry: moved, payload: WriteBack(
                seconds: moved.billedSeconds, content: writeBackText(moved, contract: contract), technician: moved.technician, date: workedAt,
                glpiTaskID: moved.glpiTaskID, reason: contract.map { "the ticket now counts on contract \($0.id)" } ?? "the ticket matches no contract any more"),
                now: now)
        }

        if let tasks {
            // Tasks HourLedger wrote itself are already counted by their entry: recognise them by id or by the key
            // their text carries, and link the entry to its task if the write-back had not recorded it yet.
            var mine = Set<Int>()
            for row in own {
                let key: String = row["entry_key"]
                if let taskID = row["glpi_task_id"] as Int? { mine.insert(taskID); continue }
                if let task = tasks.first(where: { $0.content.contains(EntrySource.marker(key)) }) {
                    mine.insert(task.id)
                    try db.run(sql: "UPDATE entry SET glpi_task_id = ? WHERE id = ?", arguments: [task.id, row["id"] as Int64])
                }
            }
            let foreign = tasks.filter { !mine.contains($0.id) }
            let seen = Set(foreign.map(\.id))
            for row in existing where !seen.contains(row["source_id"]) {
                deltas.remove(row)
                try db.run(sql: "DELETE FROM entry WHERE id = ?", arguments: [row["id"] as Int64])
                outcome.entriesDeleted += 1
            }
            for task in foreign {
                let place = placement(task.date, task.seconds)
                let workedAt = Int(task.date.timeIntervalSince1970)
                if let row = existingBySource[task.id] {
                    let stored = StoredEntry(row)
                    let wanted = StoredEntry(contractID: contract?.id, periodKey: place.period?.key, workedAt: workedAt,
                                             rawSeconds: task.seconds, billedSeconds: place.billed, rounding: place.rounding,
                                             technician: task.technician, isPrivate: task.isPrivate, content: task.content)
                    let same = stored == wanted
                    if same { continue }
                    deltas.remove(row)
                    try db.run(sql: """
                        UPDATE entry SET contract_id = ?, period_key = ?, worked_at = ?, raw_seconds = ?, billed_seconds = ?,
                            rounding = ?, technician = ?, is_private = ?, content = ?, updated_at = ? WHERE id = ?
                        """, arguments: [contract?.id, place.period?.key, workedAt, task.seconds, place.billed, place.rounding,
                                         task.technician, task.isPrivate, task.content, Int(now.timeIntervalSince1970), row["id"] as Int64])
                    outcome.entriesUpdated += 1
                } else {
                    try db.run(sql: """
                        INSERT INTO entry(source, source_id, ticket_id, contract_id, period_key, worked_at, raw_seconds, billed_seconds,
                            rounding, technician, is_private, content, updated_at)
                        VALUES ('glpi_task', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """, arguments: [task.id, ticket.id, contract?.id, place.period?.key, workedAt, task.seconds, place.billed,
                                         place.rounding, task.technician, task.isPrivate, task.content, Int(now.timeIntervalSince1970)])
                    outcome.entriesAdded += 1
                }
                deltas.add(contract: contract, period: place.period, billed: place.billed, raw: task.seconds, kind: EntryKind.billable.rawValue)
            }
            if previousContract != contract?.id { for row in own { try replace(row) } }
        } else if previousContract != contract?.id {
            for row in all { try replace(row) }
        }
        try deltas.apply(db)
        return outcome
    }

    /// Period lookups for one write: calendars are built once per contract, and the last period found is tried first.
    final class PeriodCache {
        private var calculators: [String: PeriodCalculator] = [:]
        private var recent: [String: Period] = [:]

        func period(of contract: Contract, containing instant: Date) -> Period? {
            if let period = recent[contract.id], period.contains(instant) { return period }
            let calculator = calculators[contract.id] ?? PeriodCalculator(kind: contract.period, starts: contract.starts,
                                                                           expires: contract.expires, calendar: contract.calendar)
            calculators[contract.id] = calculator
            let period = calculator.period(containing: instant)
            if let period { recent[contract.id] = period }
            return period
        }
    }

    /// The comparable part of an entry row: an unchanged task leaves its entry untouched.
    fileprivate struct StoredEntry: Equatable {
        var contractID: String?
        var periodKey: String?
        var workedAt: Int
        var rawSeconds: Int
        var billedSeconds: Int
        var rounding: String
        var technician: Int
        var isPrivate: Bool
        var content: String
    }

    struct BalanceKey: Hashable {
        var contract: String?
        var period: String?
    }

    /// Balance changes of one ticket's sync, applied as integer deltas in the same transaction as the entries.
    struct BalanceDeltas {
        struct Change {
            var used = 0
            var raw = 0
            var count = 0
            var contract: Contract?
            var period: Period?
        }
        var changes: [BalanceKey: Change] = [:]

        mutating func remove(_ row: Row) {
            let key = BalanceKey(contract: row["contract_id"], period: row["period_key"])
            guard key.contract != nil, key.period != nil, EntryKind(rawValue: row["kind"] ?? "billable")?.drawsFromBalance ?? true,
                  (row["approval"] as String?) ?? Approval.approved.rawValue == Approval.approved.rawValue else { return }
            changes[key, default: Change()].used -= row["billed_seconds"] as Int
            changes[key, default: Change()].raw -= row["raw_seconds"] as Int
            changes[key, default: Change()].count -= 1
        }

        mutating func add(contract: Contract?, period: Period?, billed: Int, raw: Int, kind: String, approval: String = Approval.approved.rawValue) {
            guard let contract, let period, EntryKind(rawValue: kind)?.drawsFromBalance ?? true, approval == Approval.approved.rawValue else { return }
            let key = BalanceKey(contract: contract.id, period: period.key)
            var change = changes[key] ?? Change()
            change.used += billed
            change.raw += raw
            change.count += 1
            change.contract = contract
            change.period = period
            changes[key] = change
        }

        func apply(_ db: Database) throws {
            for (key, change) in changes where change.used != 0 || change.raw != 0 || change.count != 0 || change.period != nil {
                if let contract = key.contract {
                    try db.run(sql: "INSERT OR IGNORE INTO ledger_dirty(contract_id) VALUES (?)", arguments: [contract])
                }
                if let contract = change.contract, let period = change.period {
                    try db.run(sql: """
                        INSERT INTO balance(contract_id, period_key, period_start, period_end, quota_seconds, used_seconds, raw_seconds, entry_count)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                        ON CONFLICT(contract_id, period_key) DO UPDATE SET quota_seconds = excluded.quota_seconds,
                            used_seconds = used_seconds + excluded.used_seconds, raw_seconds = raw_seconds + excluded.raw_seconds,
                            entry_count = entry_count + excluded.entry_count
                        """, arguments: [contract.id, period.key, Int(period.start.timeIntervalSince1970),
                                         period.end.map { Int($0.timeIntervalSince1970) }, contract.quotaSeconds,
                                         change.used, change.raw, change.count])
                } else {
                    try db.run(sql: """
                        UPDATE balance SET used_seconds = used_seconds + ?, raw_seconds = raw_seconds + ?, entry_count = entry_count + ?
                        WHERE contract_id = ? AND period_key = ?
                        """, arguments: [change.used, change.raw, change.count, key.contract, key.period])
                }
            }
        }
    }

    // MARK: Reading

    /// The balance of `contract` for the period holding `instant`; zero usage when nothing was logged yet.
    public func balance(of contract: Contract, at instant: Date, now: Date = Date()) throws -> BalanceRow? {
        guard let period = contract.period(containing: instant) else { return nil }
        return try balances(of: contract, now: max(now, period.start)).first { $0.periodKey == period.key }
    }

    /// Every period of `contract` from its start through the running one, with carry-over and expiry worked out.
    public func balances(of contract: Contract, now: Date = Date()) throws -> [BalanceRow] {
        try writer.read { db in try Self.balances(db, of: contract, now: now) }
    }

    static func balances(_ db: Database, of contract: Contract, now: Date) throws -> [BalanceRow] {
        var used: [String: Int] = [:]
        var stored: [String: (raw: Int, count: Int)] = [:]
        for row in try db.rows(sql: "SELECT period_key, used_seconds, raw_seconds, entry_count FROM balance WHERE contract_id = ?",
                               arguments: [contract.id]) {
            let key: String = row["period_key"]
            // Stored figures are checked before any arithmetic: a damaged row fails its own contract, never the daemon.
            for column in ["used_seconds", "raw_seconds"] {
                let value: Int64 = row[column]
                guard Bounds.storedSeconds.contains(Int(clamping: value)) else {
                    throw StoreError(description: "contract \(contract.id): the stored \(column) of period \(key) is \(value), beyond any real "
                                     + "figure; the ledger row is damaged (check the entries of that period)")
                }
            }
            used[key] = row["used_seconds"]
            stored[key] = (row["raw_seconds"], row["entry_count"])
        }
        return BlockLedger.statements(for: contract, used: used, now: now).map {
            BalanceRow(statement: $0, contractID: contract.id, rawSeconds: stored[$0.period.key]?.raw ?? 0,
                       entryCount: stored[$0.period.key]?.count ?? 0)
        }
    }

    /// Per-ticket usage of one contract period, largest first.
    public func ticketBreakdown(contractID: String, periodKey: String) throws -> [TicketUsage] {
        try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT e.ticket_id, COALESCE(t.name, '') AS name, SUM(e.billed_seconds) AS used, SUM(e.raw_seconds) AS raw, COUNT(*) AS n
                FROM entry e LEFT JOIN ticket t ON t.id = e.ticket_id
                WHERE e.contract_id = ? AND e.period_key = ?
                GROUP BY e.ticket_id ORDER BY used DESC, e.ticket_id
                """, arguments: [contractID, periodKey]).map {
                TicketUsage(ticketID: $0["ticket_id"], name: $0["name"], usedSeconds: $0["used"], rawSeconds: $0["raw"], entryCount: $0["n"])
            }
        }
    }

    /// Balances that disagree with the sum of their entries; empty unless the ledger is damaged.
    public func balanceDiscrepancies() throws -> [String] {
        try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT b.contract_id, b.period_key, b.used_seconds, b.raw_seconds, b.entry_count,
                       COALESCE(SUM(e.billed_seconds), 0) AS used, COALESCE(SUM(e.raw_seconds), 0) AS raw, COUNT(e.id) AS n
                FROM balance b LEFT JOIN entry e ON e.contract_id = b.contract_id AND e.period_key = b.period_key AND e.kind != 'internal'
                    AND e.approval = 'approved'
                GROUP BY b.contract_id, b.period_key
                HAVING b.used_seconds != used OR b.raw_seconds != raw OR b.entry_count != n
                """).map { "\($0["contract_id"] as String) \($0["period_key"] as String): stored \($0["used_seconds"] as Int)/\($0["raw_seconds"] as Int)/\($0["entry_count"] as Int), entries \($0["used"] as Int)/\($0["raw"] as Int)/\($0["n"] as Int)" }
        }
    }

    public func unmatchedTickets() throws -> [UnmatchedTicket] {
        try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT t.id, t.ref, t.name, t.entity, t.groups, t.category, t.match_reason,
                       (SELECT COALESCE(SUM(raw_seconds), 0) FROM entry WHERE ticket_id = t.id) AS raw
                FROM ticket t WHERE t.contract_id IS NULL AND t.removed IS NULL ORDER BY t.id
                """).map { row in
                let groups = (row["groups"] as String).split(separator: ",").compactMap { Int($0) }
                return UnmatchedTicket(ticketID: row["id"], ref: row["ref"], name: row["name"], entity: row["entity"], groups: groups,
                                       category: row["category"], reason: row["match_reason"], rawSeconds: row["raw"])
            }
        }
    }

    public func moves(ticketID: Int) throws -> [ContractMove] {
        try writer.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM contract_move WHERE ticket_id = ? ORDER BY id", arguments: [ticketID]).map {
                ContractMove(ticketID: $0["ticket_id"], fromContract: $0["from_contract"], toContract: $0["to_contract"],
                             rawSeconds: $0["raw_seconds"], at: Date(timeIntervalSince1970: TimeInterval($0["at"] as Int)), reason: $0["reason"])
            }
        }
    }

    public struct Counts: Sendable, Equatable, Codable {
        public var tickets: Int
        public var unmatched: Int
        public var entries: Int
        /// Alerts fired since the ledger was created.
        public var alerts: Int = 0
        /// Webhook hints waiting for a sync.
        public var pendingHints: Int = 0
        /// Tickets the helpdesk would not let the daemon read at the last try.
        public var failingTickets: Int = 0
    }

    public func counts() throws -> Counts {
        try writer.read { db in
            Counts(tickets: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM ticket WHERE removed IS NULL") ?? 0,
                   unmatched: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM ticket WHERE contract_id IS NULL AND removed IS NULL") ?? 0,
                   entries: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM entry") ?? 0,
                   alerts: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM alert") ?? 0,
                   pendingHints: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM ticket_hint") ?? 0,
                   failingTickets: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM ticket_failure") ?? 0)
        }
    }

    /// Each stored ticket's contract and the reason it was linked (or not), by ticket id.
    public func ticketMatches() throws -> [Int: (contractID: String?, reason: String)] {
        try writer.read { db in
            var result: [Int: (contractID: String?, reason: String)] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT id, contract_id, match_reason FROM ticket") {
                result[row["id"]] = (row["contract_id"], row["match_reason"])
            }
            return result
        }
    }

    /// Re-matches every stored ticket against a (possibly changed) contract list, e.g. after a config edit.
    public func storedTickets() throws -> [(facts: TicketFacts, dateMod: String)] {
        try writer.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM ticket WHERE removed IS NULL ORDER BY id").map { row in
                (TicketFacts(id: row["id"], name: row["name"], entity: row["entity"],
                             groups: (row["groups"] as String).split(separator: ",").compactMap { Int($0) },
                             category: row["category"], status: row["status"], service: row["service"], agent: row["agent"],
                             ticketClass: row["class"], ref: row["ref"],
                             queryMatches: (row["query_matches"] as String).split(separator: ",").map(String.init)), row["date_mod"])
            }
        }
    }
}

extension LedgerStore.StoredEntry {
    init(_ row: Row) {
        contractID = row["contract_id"]
        periodKey = row["period_key"]
        workedAt = row["worked_at"]
        rawSeconds = row["raw_seconds"]
        billedSeconds = row["billed_seconds"]
        rounding = row["rounding"]
        technician = row["technician"]
        isPrivate = row["is_private"]
        content = row["content"]
    }
}

/// A contract's balance for one period, in the shape the API, the CLI and scripts share.
public struct ContractBalance: Sendable, Codable, Equatable {
    public var id: String
    public var name: String
    public var timezone: String
    public var billingMode: Billing.Mode
    public var periodKey: String
    /// ISO 8601 with the contract's own offset, e.g. 2026-11-01T00:00:00+01:00.
    public var periodStart: String
    public var periodEnd: String?
    public var quotaSeconds: Int
    public var carriedInSeconds: Int
    /// quota + carried in.
    public var availableSeconds: Int
    /// Billed seconds, after rounding.
    public var usedSeconds: Int
    public var rawSeconds: Int
    public var expiredSeconds: Int
    public var overageSeconds: Int
    /// quota + carried in − used − expired; negative in overage.
    public var remainingSeconds: Int
    /// Carried-in hours that expire at the end of this period unless used.
    public var expiringAtEndSeconds: Int
    public var percentUsed: Double
    public var entryCount: Int
    public var closed: Bool
    /// Carry-overs and expiries booked in this period.
    public var movements: [BlockMovement]
    /// When the block runs out at the current burn rate; only for the running period of a block contract.
    public var forecast: DepletionForecast?

    enum CodingKeys: String, CodingKey {
        case id, name, timezone, closed, movements, forecast
        case billingMode = "billing_mode", periodKey = "period_key", periodStart = "period_start", periodEnd = "period_end"
        case quotaSeconds = "quota_seconds", carriedInSeconds = "carried_in_seconds", availableSeconds = "available_seconds"
        case usedSeconds = "used_seconds", rawSeconds = "raw_seconds", expiredSeconds = "expired_seconds"
        case overageSeconds = "overage_seconds", remainingSeconds = "remaining_seconds", expiringAtEndSeconds = "expiring_at_end_seconds"
        case percentUsed = "percent_used", entryCount = "entry_count"
    }

    public init(contract: Contract, row: BalanceRow, now: Date? = nil) {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = contract.calendar.timeZone
        id = contract.id
        name = contract.name
        timezone = contract.timeZone
        billingMode = contract.billing.mode
        periodKey = row.periodKey
        periodStart = formatter.string(from: row.periodStart)
        periodEnd = row.periodEnd.map(formatter.string(from:))
        quotaSeconds = row.quotaSeconds
        carriedInSeconds = row.carriedInSeconds
        availableSeconds = row.availableSeconds
        usedSeconds = row.usedSeconds
        rawSeconds = row.rawSeconds
        expiredSeconds = row.expiredSeconds
        overageSeconds = row.overageSeconds
        remainingSeconds = row.remainingSeconds
        expiringAtEndSeconds = row.expiringAtEndSeconds
        percentUsed = row.percentUsed
        entryCount = row.entryCount
        closed = row.closed
        movements = row.movements
        if let now, contract.billing.mode == .block, !row.closed, row.periodStart <= now {
            forecast = DepletionForecast(usedSeconds: row.usedSeconds, remainingSeconds: row.remainingSeconds,
                                         periodStart: row.periodStart, periodEnd: row.periodEnd, now: now)
        }
    }
}

/// A contract whose balance could not be worked out, and why; the other contracts are unaffected.
public struct ContractFailure: Sendable, Equatable, Codable {
    public var contractID: String
    public var error: String

    public init(contractID: String, error: String) {
        self.contractID = contractID
        self.error = error
    }

    enum CodingKeys: String, CodingKey {
        case error
        case contractID = "contract_id"
    }
}

extension LedgerStore {
    /// Each contract's balance for the period running at `instant`; contracts outside their term are left out.
    public func currentBalances(_ contracts: [Contract], at instant: Date = Date()) throws -> [ContractBalance] {
        let (balances, failures) = try currentBalancesReport(contracts, at: instant)
        if let first = failures.first { throw StoreError(description: first.error) }
        return balances
    }

    /// Like `currentBalances`, but a contract whose stored figures are damaged is reported instead of failing the rest.
    public func currentBalancesReport(_ contracts: [Contract], at instant: Date = Date()) throws -> ([ContractBalance], [ContractFailure]) {
        var balances: [ContractBalance] = []
        var failures: [ContractFailure] = []
        for contract in contracts {
            do {
                if let row = try balance(of: contract, at: instant, now: instant) {
                    balances.append(ContractBalance(contract: contract, row: row, now: instant))
                }
            } catch let error as StoreError {
                failures.append(ContractFailure(contractID: contract.id, error: error.description))
            }
        }
        return (balances, failures)
    }
}

extension Database {
    /// Runs a statement compiled once per connection: the sync writes the same few statements a million times.
    func run(sql: String, arguments: StatementArguments) throws {
        try cachedStatement(sql: sql).execute(arguments: arguments)
    }

    func rows(sql: String, arguments: StatementArguments) throws -> [Row] {
        try Row.fetchAll(cachedStatement(sql: sql), arguments: arguments)
    }
}
