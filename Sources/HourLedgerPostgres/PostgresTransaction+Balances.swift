import Foundation
import HourLedgerCore
import HourLedgerUseCases
import PostgresNIO

// MARK: Balances and carry-over

extension PostgresTransaction {
    private static func usage(_ row: Row) throws -> PeriodUsage {
        // Read wide and clamped: a damaged figure must reach the bounds check, not trap here.
        PeriodUsage(usedSeconds: Int(clamping: try row["used_seconds"] as Int64), rawSeconds: Int(clamping: try row["raw_seconds"] as Int64),
                    entryCount: try row["entry_count"])
    }

    func periodUsage(contractID: String) throws -> [String: PeriodUsage] {
        var usage: [String: PeriodUsage] = [:]
        for row in try rows("SELECT period_key, used_seconds, raw_seconds, entry_count FROM balance WHERE contract_id = \(contractID)") {
            usage[try row["period_key"]] = try Self.usage(row)
        }
        return usage
    }

    func balanceRevision() throws -> Int64 {
        try one("SELECT COALESCE(MAX(revision), 0)::bigint FROM balance_revision") ?? 0
    }

    func periodUsage(changedAfter revision: Int64) throws -> [String: [String: PeriodUsage]] {
        var usage: [String: [String: PeriodUsage]] = [:]
        for row in try rows("""
            SELECT r.contract_id, b.period_key, b.used_seconds, b.raw_seconds, b.entry_count
            FROM balance_revision r LEFT JOIN balance b ON b.contract_id = r.contract_id WHERE r.revision > \(revision)
            """) {
            let contractID: String = try row["contract_id"]
            guard let key: String = try row["period_key"] else { usage[contractID, default: [:]] = [:]; continue }
            usage[contractID, default: [:]][key] = try Self.usage(row)
        }
        return usage
    }

    func markUnsettled(contractID: String) throws {
        try run("INSERT INTO ledger_dirty(contract_id) VALUES (\(contractID)) ON CONFLICT DO NOTHING")
    }

    func applyBalanceChange(_ change: BalanceDeltas.Change) throws {
        try markUnsettled(contractID: change.contractID)
        if let period = change.period, let quota = change.quotaSeconds {
            try run("""
                INSERT INTO balance(contract_id, period_key, period_start, period_end, quota_seconds, used_seconds, raw_seconds, entry_count)
                VALUES (\(change.contractID), \(change.periodKey), \(seconds(period.start)), \(period.end.map(seconds)), \(quota),
                        \(change.usedSeconds), \(change.rawSeconds), \(change.entryCount))
                ON CONFLICT(contract_id, period_key) DO UPDATE SET quota_seconds = excluded.quota_seconds,
                    used_seconds = balance.used_seconds + excluded.used_seconds, raw_seconds = balance.raw_seconds + excluded.raw_seconds,
                    entry_count = balance.entry_count + excluded.entry_count
                """)
        } else {
            try run("""
                UPDATE balance SET used_seconds = used_seconds + \(change.usedSeconds), raw_seconds = raw_seconds + \(change.rawSeconds),
                    entry_count = entry_count + \(change.entryCount)
                WHERE contract_id = \(change.contractID) AND period_key = \(change.periodKey)
                """)
        }
    }

    func ticketBreakdown(contractID: String, periodKey: String) throws -> [TicketUsage] {
        try rows("""
            SELECT e.ticket_id, COALESCE(MAX(t.name), '') AS name, SUM(e.billed_seconds)::bigint AS used, SUM(e.raw_seconds)::bigint AS raw,
                   COUNT(*) AS n
            FROM entry e LEFT JOIN ticket t ON t.id = e.ticket_id
            WHERE e.contract_id = \(contractID) AND e.period_key = \(periodKey)
            GROUP BY e.ticket_id ORDER BY used DESC, e.ticket_id
            """).map {
            TicketUsage(ticketID: try $0["ticket_id"], name: try $0["name"], usedSeconds: try $0["used"], rawSeconds: try $0["raw"],
                        entryCount: try $0["n"])
        }
    }

    func balanceDiscrepancies() throws -> [String] {
        try rows("""
            SELECT b.contract_id, b.period_key, b.used_seconds, b.raw_seconds, b.entry_count,
                   COALESCE(SUM(e.billed_seconds), 0)::bigint AS used, COALESCE(SUM(e.raw_seconds), 0)::bigint AS raw, COUNT(e.id) AS n
            FROM balance b LEFT JOIN entry e ON e.contract_id = b.contract_id AND e.period_key = b.period_key AND e.kind <> 'internal'
                AND e.approval = 'approved'
            GROUP BY b.contract_id, b.period_key
            HAVING b.used_seconds <> COALESCE(SUM(e.billed_seconds), 0) OR b.raw_seconds <> COALESCE(SUM(e.raw_seconds), 0)
                OR b.entry_count <> COUNT(e.id)
            ORDER BY b.contract_id, b.period_key
            """).map {
            "\(try $0["contract_id"] as String) \(try $0["period_key"] as String): stored \(try $0["used_seconds"] as Int)/"
                + "\(try $0["raw_seconds"] as Int)/\(try $0["entry_count"] as Int), entries \(try $0["used"] as Int)/\(try $0["raw"] as Int)/"
                + "\(try $0["n"] as Int)"
        }
    }

    func dirtyContracts() throws -> Set<String> {
        Set(try rows("SELECT contract_id FROM ledger_dirty").map { try $0["contract_id"] as String })
    }

    func resetDirtyContracts(keeping contractIDs: [String]) throws {
        try run("DELETE FROM ledger_dirty")
        try run("INSERT INTO ledger_dirty(contract_id) SELECT DISTINCT unnest(\(contractIDs)::text[]) ON CONFLICT DO NOTHING")
    }

    func blockMovements(contractID: String) throws -> [BlockMovement] {
        try rows("SELECT * FROM block_movement WHERE contract_id = \(contractID) ORDER BY period_key, kind, origin_key").map {
            BlockMovement(kind: BlockMovement.Kind(rawValue: try $0["kind"]) ?? .expired, periodKey: try $0["period_key"],
                          originKey: try $0["origin_key"], seconds: try $0["seconds"], reason: try $0["reason"])
        }
    }

    func saveBlockMovement(contractID: String, _ movement: BlockMovement, at now: Date) throws {
        let stored = try rows("""
            SELECT seconds, reason FROM block_movement WHERE contract_id = \(contractID) AND period_key = \(movement.periodKey)
                AND kind = \(movement.kind.rawValue) AND origin_key = \(movement.originKey)
            """).first
        if try stored.map({ (try $0["seconds"] as Int, try $0["reason"] as String) != (movement.seconds, movement.reason) }) ?? true {
            book.note(.movement(movement), contract: contractID)
        }
        try run("""
            INSERT INTO block_movement(contract_id, period_key, kind, origin_key, seconds, reason, recorded_at)
            VALUES (\(contractID), \(movement.periodKey), \(movement.kind.rawValue), \(movement.originKey), \(movement.seconds),
                    \(movement.reason), \(seconds(now)))
            ON CONFLICT(contract_id, period_key, kind, origin_key) DO UPDATE SET seconds = excluded.seconds, reason = excluded.reason,
                revised_at = excluded.recorded_at
            """)
    }

    func deleteBlockMovement(contractID: String, _ movement: BlockMovement) throws {
        let deleted = try changes("""
            DELETE FROM block_movement WHERE contract_id = \(contractID) AND period_key = \(movement.periodKey)
                AND kind = \(movement.kind.rawValue) AND origin_key = \(movement.originKey)
            """)
        if deleted > 0 { book.note(.movementDeleted(movement), contract: contractID) }
    }

    private static func topUp(_ row: Row) throws -> TopUp {
        TopUp(id: try row["id"], contractID: try row["contract_id"], seconds: try row["seconds"], note: try row["note"], price: try row["price"],
              expires: (try row["expires"] as String?).flatMap(CivilDate.init), addedAt: date(try row["added_at"] as Int),
              addedBy: try row["added_by"], voidedAt: date(try row["voided_at"] as Int?), voidedBy: try row["voided_by"],
              voidReason: try row["void_reason"])
    }

    func topUps(contractID: String?) throws -> [TopUp] {
        try rows("SELECT * FROM top_up WHERE \(contractID)::text IS NULL OR contract_id = \(contractID) ORDER BY id").map(Self.topUp)
    }

    func topUps(changedAfter revision: Int64) throws -> [String: [TopUp]] {
        var result: [String: [TopUp]] = [:]
        for row in try rows("""
            SELECT r.contract_id AS changed, t.* FROM balance_revision r LEFT JOIN top_up t ON t.contract_id = r.contract_id
            WHERE r.revision > \(revision) ORDER BY t.id
            """) {
            let contractID: String = try row["changed"]
            guard try row["id"] as Int64? != nil else { result[contractID, default: []] = []; continue }
            result[contractID, default: []].append(try Self.topUp(row))
        }
        return result
    }

    func insertTopUp(_ topUp: TopUp) throws -> Int64 {
        try markUnsettled(contractID: topUp.contractID)
        guard let id: Int64 = try one("""
            INSERT INTO top_up(contract_id, seconds, note, price, expires, added_at, added_by)
            VALUES (\(topUp.contractID), \(topUp.seconds), \(topUp.note), \(topUp.price), \(topUp.expires?.description),
                    \(seconds(topUp.addedAt)), \(topUp.addedBy))
            RETURNING id
            """) else { throw LedgerStoreError("the top-up insert returned no id") }
        var stored = topUp
        stored.id = id
        book.note(.topUp(stored), contract: stored.contractID)
        return id
    }

    func voidTopUp(id: Int64, at: Date, by: String, reason: String) throws -> Bool {
        guard let contractID: String = try one("SELECT contract_id FROM top_up WHERE id = \(id) AND voided_at IS NULL") else { return false }
        try markUnsettled(contractID: contractID)
        try run("UPDATE top_up SET voided_at = \(seconds(at)), voided_by = \(by), void_reason = \(reason) WHERE id = \(id)")
        if let voided = try topUps(contractID: contractID).first(where: { $0.id == id }) { book.note(.topUpVoided(voided), contract: contractID) }
        return true
    }
}

// MARK: Timers and audit

extension PostgresTransaction {
    static func json(_ value: some Encodable) throws -> String { try StoredJSON.encode(value) }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T { try StoredJSON.decode(type, text) }

    private func timers(_ query: PostgresQuery) throws -> [TimerRecord] {
        try rows(query).map { row in
            TimerRecord(id: try row["id"], technician: try row["technician"], ticketID: try row["ticket_id"],
                        state: try Self.decode(TimerState.self, try row["state"]), startedAt: date(try row["started_at"] as Int),
                        entryID: try row["entry_id"])
        }
    }

    func timer(id: Int64) throws -> TimerRecord? { try timers("SELECT * FROM timer WHERE id = \(id)").first }

    func openTimer(technician: Int, ticketID: Int) throws -> TimerRecord? {
        try timers("SELECT * FROM timer WHERE technician = \(technician) AND ticket_id = \(ticketID) AND status <> 'stopped' ORDER BY id").first
    }

    func timers(technician: Int?, openOnly: Bool) throws -> [TimerRecord] {
        try timers("""
            SELECT * FROM timer WHERE (\(technician)::bigint IS NULL OR technician = \(technician)) AND (NOT \(openOnly) OR status <> 'stopped')
            ORDER BY id
            """)
    }

    func runningTimers() throws -> [TimerRecord] { try timers("SELECT * FROM timer WHERE status = 'running' ORDER BY id") }

    func insertTimer(_ timer: TimerRecord, at now: Date) throws -> Int64 {
        let state = try Self.json(timer.state)
        guard let id: Int64 = try one("""
            INSERT INTO timer(technician, ticket_id, status, state, started_at, updated_at, entry_id)
            VALUES (\(timer.technician), \(timer.ticketID), \(timer.state.status.rawValue), \(state), \(seconds(timer.startedAt)),
                    \(seconds(now)), \(timer.entryID))
            RETURNING id
            """) else { throw LedgerStoreError("the timer insert returned no id") }
        return id
    }

    func updateTimer(_ timer: TimerRecord, at now: Date) throws {
        let state = try Self.json(timer.state)
        try run("""
            UPDATE timer SET status = \(timer.state.status.rawValue), state = \(state), updated_at = \(seconds(now)), entry_id = \(timer.entryID)
            WHERE id = \(timer.id)
            """)
    }

    func insertAudit(_ record: AuditRecord) throws {
        try run("""
            INSERT INTO audit(at, actor, entry_key, ticket_id, contract_id, field, old_value, new_value, reason)
            VALUES (\(seconds(record.at)), \(record.actor), \(record.entryKey), \(record.ticketID), \(record.contractID), \(record.field),
                    \(record.oldValue), \(record.newValue), \(record.reason))
            """)
    }

    func auditTrail(ticketID: Int?, contractID: String?) throws -> [AuditRecord] {
        try rows("""
            SELECT * FROM audit WHERE (\(ticketID)::bigint IS NULL OR ticket_id = \(ticketID))
                AND (\(contractID)::text IS NULL OR contract_id = \(contractID)) ORDER BY id
            """).map {
            AuditRecord(at: date(try $0["at"] as Int), actor: try $0["actor"], entryKey: try $0["entry_key"], ticketID: try $0["ticket_id"],
                        contractID: try $0["contract_id"], field: try $0["field"], oldValue: try $0["old_value"], newValue: try $0["new_value"],
                        reason: try $0["reason"])
        }
    }
}
