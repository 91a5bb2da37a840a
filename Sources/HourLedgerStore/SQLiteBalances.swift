import Foundation
import GRDB
import HourLedgerCore
import HourLedgerUseCases

// MARK: Balances and carry-over

extension SQLiteTransaction {
    func periodUsage(contractID: String) throws -> [String: PeriodUsage] {
        var usage: [String: PeriodUsage] = [:]
        for row in try db.rows(sql: "SELECT period_key, used_seconds, raw_seconds, entry_count FROM balance WHERE contract_id = ?",
                               arguments: [contractID]) {
            // Read wide and clamped: a damaged figure must reach the bounds check, not trap here.
            usage[row["period_key"]] = PeriodUsage(usedSeconds: Int(clamping: row["used_seconds"] as Int64),
                                                   rawSeconds: Int(clamping: row["raw_seconds"] as Int64), entryCount: row["entry_count"])
        }
        return usage
    }

    func balanceRevision() throws -> Int64 {
        try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(revision), 0) FROM balance_revision") ?? 0
    }

    func periodUsage(changedAfter revision: Int64) throws -> [String: [String: PeriodUsage]] {
        var usage: [String: [String: PeriodUsage]] = [:]
        for row in try db.rows(sql: """
            SELECT r.contract_id, b.period_key, b.used_seconds, b.raw_seconds, b.entry_count
            FROM balance_revision r LEFT JOIN balance b ON b.contract_id = r.contract_id WHERE r.revision > ?
            """, arguments: [revision]) {
            let contractID: String = row["contract_id"]
            guard let key: String = row["period_key"] else { usage[contractID, default: [:]] = [:]; continue }
            usage[contractID, default: [:]][key] = PeriodUsage(usedSeconds: Int(clamping: row["used_seconds"] as Int64),
                                                               rawSeconds: Int(clamping: row["raw_seconds"] as Int64),
                                                               entryCount: row["entry_count"])
        }
        return usage
    }

    func markUnsettled(contractID: String) throws {
        try db.run(sql: "INSERT OR IGNORE INTO ledger_dirty(contract_id) VALUES (?)", arguments: [contractID])
    }

    func applyBalanceChange(_ change: BalanceDeltas.Change) throws {
        try db.run(sql: "INSERT OR IGNORE INTO ledger_dirty(contract_id) VALUES (?)", arguments: [change.contractID])
        if let period = change.period, let quota = change.quotaSeconds {
            try db.run(sql: """
                INSERT INTO balance(contract_id, period_key, period_start, period_end, quota_seconds, used_seconds, raw_seconds, entry_count)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(contract_id, period_key) DO UPDATE SET quota_seconds = excluded.quota_seconds,
                    used_seconds = used_seconds + excluded.used_seconds, raw_seconds = raw_seconds + excluded.raw_seconds,
                    entry_count = entry_count + excluded.entry_count
                """, arguments: [change.contractID, change.periodKey, seconds(period.start), period.end.map(seconds), quota,
                                 change.usedSeconds, change.rawSeconds, change.entryCount])
        } else {
            try db.run(sql: """
                UPDATE balance SET used_seconds = used_seconds + ?, raw_seconds = raw_seconds + ?, entry_count = entry_count + ?
                WHERE contract_id = ? AND period_key = ?
                """, arguments: [change.usedSeconds, change.rawSeconds, change.entryCount, change.contractID, change.periodKey])
        }
    }

    func ticketBreakdown(contractID: String, periodKey: String) throws -> [TicketUsage] {
        try Row.fetchAll(db, sql: """
            SELECT e.ticket_id, COALESCE(t.name, '') AS name, SUM(e.billed_seconds) AS used, SUM(e.raw_seconds) AS raw, COUNT(*) AS n
            FROM entry e LEFT JOIN ticket t ON t.id = e.ticket_id
            WHERE e.contract_id = ? AND e.period_key = ?
            GROUP BY e.ticket_id ORDER BY used DESC, e.ticket_id
            """, arguments: [contractID, periodKey]).map {
            TicketUsage(ticketID: $0["ticket_id"], name: $0["name"], usedSeconds: $0["used"], rawSeconds: $0["raw"], entryCount: $0["n"])
        }
    }

    func balanceDiscrepancies() throws -> [String] {
        try Row.fetchAll(db, sql: """
            SELECT b.contract_id, b.period_key, b.used_seconds, b.raw_seconds, b.entry_count,
                   COALESCE(SUM(e.billed_seconds), 0) AS used, COALESCE(SUM(e.raw_seconds), 0) AS raw, COUNT(e.id) AS n
            FROM balance b LEFT JOIN entry e ON e.contract_id = b.contract_id AND e.period_key = b.period_key AND e.kind != 'internal'
                AND e.approval = 'approved'
            GROUP BY b.contract_id, b.period_key
            HAVING b.used_seconds != used OR b.raw_seconds != raw OR b.entry_count != n
            ORDER BY b.contract_id, b.period_key
            """).map {
            "\($0["contract_id"] as String) \($0["period_key"] as String): stored \($0["used_seconds"] as Int)/\($0["raw_seconds"] as Int)/"
                + "\($0["entry_count"] as Int), entries \($0["used"] as Int)/\($0["raw"] as Int)/\($0["n"] as Int)"
        }
    }

    func dirtyContracts() throws -> Set<String> {
        Set(try String.fetchAll(db, sql: "SELECT contract_id FROM ledger_dirty"))
    }

    func resetDirtyContracts(keeping contractIDs: [String]) throws {
        try db.execute(sql: "DELETE FROM ledger_dirty")
        for id in contractIDs { try db.execute(sql: "INSERT OR IGNORE INTO ledger_dirty(contract_id) VALUES (?)", arguments: [id]) }
    }

    func blockMovements(contractID: String) throws -> [BlockMovement] {
        try Row.fetchAll(db, sql: "SELECT * FROM block_movement WHERE contract_id = ? ORDER BY period_key, kind, origin_key",
                         arguments: [contractID]).map {
            BlockMovement(kind: BlockMovement.Kind(rawValue: $0["kind"]) ?? .expired, periodKey: $0["period_key"], originKey: $0["origin_key"],
                          seconds: $0["seconds"], reason: $0["reason"])
        }
    }

    func saveBlockMovement(contractID: String, _ movement: BlockMovement, at now: Date) throws {
        let stored = try db.rows(sql: "SELECT seconds, reason FROM block_movement WHERE contract_id = ? AND period_key = ? AND kind = ? AND origin_key = ?",
                                 arguments: [contractID, movement.periodKey, movement.kind.rawValue, movement.originKey]).first
        if stored.map({ ($0["seconds"] as Int, $0["reason"] as String) != (movement.seconds, movement.reason) }) ?? true {
            book.note(.movement(movement), contract: contractID)
        }
        try db.run(sql: """
            INSERT INTO block_movement(contract_id, period_key, kind, origin_key, seconds, reason, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(contract_id, period_key, kind, origin_key) DO UPDATE SET seconds = excluded.seconds, reason = excluded.reason,
                revised_at = excluded.recorded_at
            """, arguments: [contractID, movement.periodKey, movement.kind.rawValue, movement.originKey, movement.seconds, movement.reason,
                             seconds(now)])
    }

    func topUps(contractID: String?) throws -> [TopUp] {
        try Row.fetchAll(db, sql: "SELECT * FROM top_up WHERE ? IS NULL OR contract_id = ? ORDER BY id", arguments: [contractID, contractID])
            .map(Self.topUp)
    }

    func topUps(changedAfter revision: Int64) throws -> [String: [TopUp]] {
        var result: [String: [TopUp]] = [:]
        for row in try Row.fetchAll(db, sql: """
            SELECT r.contract_id AS changed, t.* FROM balance_revision r LEFT JOIN top_up t ON t.contract_id = r.contract_id
            WHERE r.revision > ? ORDER BY t.id
            """, arguments: [revision]) {
            let contractID: String = row["changed"]
            guard row["id"] as Int64? != nil else { result[contractID, default: []] = []; continue }
            result[contractID, default: []].append(Self.topUp(row))
        }
        return result
    }

    private static func topUp(_ row: Row) -> TopUp {
        TopUp(id: row["id"], contractID: row["contract_id"], seconds: row["seconds"], note: row["note"], price: row["price"],
              expires: (row["expires"] as String?).flatMap(CivilDate.init), addedAt: date(row["added_at"] as Int), addedBy: row["added_by"],
              voidedAt: date(row["voided_at"] as Int?), voidedBy: row["voided_by"], voidReason: row["void_reason"])
    }

    func insertTopUp(_ topUp: TopUp) throws -> Int64 {
        try db.run(sql: "INSERT OR IGNORE INTO ledger_dirty(contract_id) VALUES (?)", arguments: [topUp.contractID])
        try db.run(sql: """
            INSERT INTO top_up(contract_id, seconds, note, price, expires, added_at, added_by) VALUES (?, ?, ?, ?, ?, ?, ?)
            """, arguments: [topUp.contractID, topUp.seconds, topUp.note, topUp.price, topUp.expires?.description, seconds(topUp.addedAt),
                             topUp.addedBy])
        var stored = topUp
        stored.id = db.lastInsertedRowID
        book.note(.topUp(stored), contract: stored.contractID)
        return stored.id
    }

    func voidTopUp(id: Int64, at: Date, by: String, reason: String) throws -> Bool {
        guard let contractID = try String.fetchOne(db, sql: "SELECT contract_id FROM top_up WHERE id = ? AND voided_at IS NULL", arguments: [id])
        else { return false }
        try db.run(sql: "INSERT OR IGNORE INTO ledger_dirty(contract_id) VALUES (?)", arguments: [contractID])
        try db.run(sql: "UPDATE top_up SET voided_at = ?, voided_by = ?, void_reason = ? WHERE id = ?", arguments: [seconds(at), by, reason, id])
        if let voided = try topUps(contractID: contractID).first(where: { $0.id == id }) { book.note(.topUpVoided(voided), contract: contractID) }
        return true
    }

    func deleteBlockMovement(contractID: String, _ movement: BlockMovement) throws {
        try db.run(sql: "DELETE FROM block_movement WHERE contract_id = ? AND period_key = ? AND kind = ? AND origin_key = ?",
                   arguments: [contractID, movement.periodKey, movement.kind.rawValue, movement.originKey])
        if db.changesCount > 0 { book.note(.movementDeleted(movement), contract: contractID) }
    }
}

// MARK: Timers and audit

extension SQLiteTransaction {
    static func json(_ value: some Encodable) throws -> String { try StoredJSON.encode(value) }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T { try StoredJSON.decode(type, text) }

    func timers(where clause: String, _ arguments: StatementArguments = []) throws -> [TimerRecord] {
        try Row.fetchAll(db, sql: "SELECT * FROM timer WHERE \(clause) ORDER BY id", arguments: arguments).map { row in
            TimerRecord(id: row["id"], technician: row["technician"], ticketID: row["ticket_id"],
                        state: try Self.decode(TimerState.self, row["state"]), startedAt: date(row["started_at"] as Int), entryID: row["entry_id"])
        }
    }

    func timer(id: Int64) throws -> TimerRecord? { try timers(where: "id = ?", [id]).first }

    func openTimer(technician: Int, ticketID: Int) throws -> TimerRecord? {
        try timers(where: "technician = ? AND ticket_id = ? AND status != 'stopped'", [technician, ticketID]).first
    }

    func timers(technician: Int?, openOnly: Bool) throws -> [TimerRecord] {
        try timers(where: "(?1 IS NULL OR technician = ?1) AND (?2 = 0 OR status != 'stopped')", [technician, openOnly])
    }

    func runningTimers() throws -> [TimerRecord] { try timers(where: "status = 'running'") }

    func insertTimer(_ timer: TimerRecord, at now: Date) throws -> Int64 {
        try db.execute(sql: "INSERT INTO timer(technician, ticket_id, status, state, started_at, updated_at, entry_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       arguments: [timer.technician, timer.ticketID, timer.state.status.rawValue, try Self.json(timer.state),
                                   seconds(timer.startedAt), seconds(now), timer.entryID])
        return db.lastInsertedRowID
    }

    func updateTimer(_ timer: TimerRecord, at now: Date) throws {
        try db.execute(sql: "UPDATE timer SET status = ?, state = ?, updated_at = ?, entry_id = ? WHERE id = ?",
                       arguments: [timer.state.status.rawValue, try Self.json(timer.state), seconds(now), timer.entryID, timer.id])
    }

    func insertAudit(_ record: AuditRecord) throws {
        try db.execute(sql: """
            INSERT INTO audit(at, actor, entry_key, ticket_id, contract_id, field, old_value, new_value, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [seconds(record.at), record.actor, record.entryKey, record.ticketID, record.contractID, record.field, record.oldValue,
                             record.newValue, record.reason])
    }

    func auditTrail(ticketID: Int?, contractID: String?) throws -> [AuditRecord] {
        try Row.fetchAll(db, sql: "SELECT * FROM audit WHERE (?1 IS NULL OR ticket_id = ?1) AND (?2 IS NULL OR contract_id = ?2) ORDER BY id",
                         arguments: [ticketID, contractID]).map {
            AuditRecord(at: date($0["at"] as Int), actor: $0["actor"], entryKey: $0["entry_key"], ticketID: $0["ticket_id"],
                        contractID: $0["contract_id"], field: $0["field"], oldValue: $0["old_value"], newValue: $0["new_value"], reason: $0["reason"])
        }
    }
}
