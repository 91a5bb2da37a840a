import Foundation
import GRDB
import HourLedgerCore
import HourLedgerUseCases

// MARK: Sync state, tickets, moves

extension SQLiteTransaction {
    func state(_ key: String) throws -> String? {
        try String.fetchOne(db, sql: "SELECT value FROM sync_state WHERE key = ?", arguments: [key])
    }

    func setState(_ key: String, _ value: String) throws {
        try db.run(sql: "INSERT INTO sync_state(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                   arguments: [key, value])
    }

    static func ticket(_ row: Row) -> StoredTicket {
        var facts = TicketFacts(id: row["id"], name: row["name"], entity: row["entity"],
                                groups: (row["groups"] as String).split(separator: ",").compactMap { Int($0) },
                                category: row["category"], status: row["status"], service: row["service"], agent: row["agent"],
                                ticketClass: row["class"], ref: row["ref"], categoryName: row["category_name"],
                                queryMatches: (row["query_matches"] as String).split(separator: ",").map(String.init))
        facts.queryUnknown = []
        facts.linkedContracts = (row["linked_contracts"] as String).split(separator: ",").map(String.init)
        return StoredTicket(facts: facts, dateMod: row["date_mod"], contractID: row["contract_id"], matchReason: row["match_reason"],
                            taskFingerprint: row["task_fingerprint"], syncedAt: date(row["synced_at"] as Int),
                            removed: (row["removed"] as String?).flatMap(TicketRemoval.init), removedAt: date(row["removed_at"] as Int?),
                            closedAt: date(row["closed_at"] as Int?))
    }

    func ticket(_ id: Int) throws -> StoredTicket? {
        try db.rows(sql: "SELECT * FROM ticket WHERE id = ?", arguments: [id]).first.map(Self.ticket)
    }

    func tickets(_ ids: [Int]) throws -> [Int: StoredTicket] {
        var result: [Int: StoredTicket] = [:]
        for chunk in chunked(ids) {
            for row in try Row.fetchAll(db, sql: "SELECT * FROM ticket WHERE id IN (\(databaseQuestionMarks(count: chunk.count)))",
                                        arguments: StatementArguments(chunk)) {
                let ticket = Self.ticket(row)
                result[ticket.id] = ticket
            }
        }
        return result
    }

    func liveTickets() throws -> [StoredTicket] {
        try Row.fetchAll(db, sql: "SELECT * FROM ticket WHERE removed IS NULL ORDER BY id").map(Self.ticket)
    }

    func linkedTickets() throws -> [StoredTicket] {
        try Row.fetchAll(db, sql: "SELECT * FROM ticket INDEXED BY ticket_linked WHERE linked_contracts != '' AND removed IS NULL ORDER BY id")
            .map(Self.ticket)
    }

    func liveTicketIDs() throws -> Set<Int> {
        Set(try Int.fetchAll(db, sql: "SELECT id FROM ticket WHERE removed IS NULL"))
    }

    func ticketSeconds() throws -> [TicketSeconds] {
        try Row.fetchAll(db, sql: """
            SELECT t.id, t.contract_id, t.date_mod,
                   COALESCE(SUM(CASE WHEN e.source = 'helpdesk_task' THEN e.raw_seconds END), 0) AS task_seconds,
                   COALESCE(SUM(CASE WHEN e.source = 'hourledger' AND e.remote_task_id IS NOT NULL THEN e.billed_seconds END), 0) AS written
            FROM ticket t LEFT JOIN entry e ON e.ticket_id = t.id
            WHERE t.removed IS NULL GROUP BY t.id ORDER BY t.id
            """).map { row in
            TicketSeconds(ticketID: row["id"], contractID: row["contract_id"], dateMod: row["date_mod"], helpdeskTaskSeconds: row["task_seconds"],
                          writtenSeconds: row["written"])
        }
    }

    func ticketMatches() throws -> [Int: (contractID: String?, reason: String)] {
        var result: [Int: (contractID: String?, reason: String)] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT id, contract_id, match_reason FROM ticket") {
            result[row["id"]] = (row["contract_id"], row["match_reason"])
        }
        return result
    }

    func unmatchedTickets() throws -> [UnmatchedTicket] {
        try Row.fetchAll(db, sql: """
            SELECT t.id, t.ref, t.name, t.entity, t.groups, t.category, t.match_reason,
                   (SELECT COALESCE(SUM(raw_seconds), 0) FROM entry WHERE ticket_id = t.id) AS raw
            FROM ticket t WHERE t.contract_id IS NULL AND t.removed IS NULL ORDER BY t.id
            """).map { row in
            UnmatchedTicket(ticketID: row["id"], ref: row["ref"], name: row["name"], entity: row["entity"],
                            groups: (row["groups"] as String).split(separator: ",").compactMap { Int($0) },
                            category: row["category"], reason: row["match_reason"], rawSeconds: row["raw"])
        }
    }

    /// `OR ROLLBACK` for the reason given at `insertEntrySQL`: the ticket's row fires triggers too.
    func saveTicket(_ ticket: StoredTicket) throws {
        let facts = ticket.facts
        try db.run(sql: """
            INSERT OR ROLLBACK INTO ticket(id, name, entity, groups, category, status, date_mod, contract_id, match_reason, task_fingerprint, synced_at,
                               service, agent, class, ref, query_matches, removed, removed_at, closed_at, category_name, linked_contracts)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(id) DO UPDATE SET name = excluded.name, entity = excluded.entity, groups = excluded.groups,
                category = excluded.category, status = excluded.status, date_mod = excluded.date_mod, contract_id = excluded.contract_id,
                match_reason = excluded.match_reason, task_fingerprint = excluded.task_fingerprint, synced_at = excluded.synced_at,
                service = excluded.service, agent = excluded.agent, class = excluded.class, ref = excluded.ref,
                query_matches = excluded.query_matches, removed = excluded.removed, removed_at = excluded.removed_at,
                closed_at = excluded.closed_at, category_name = excluded.category_name,
                linked_contracts = excluded.linked_contracts
            """) { row in
            row.bind(facts.id); row.bind(facts.name); row.bind(facts.entity); row.bind(facts.groups.map(String.init).joined(separator: ","))
            row.bind(facts.category); row.bind(facts.status); row.bind(ticket.dateMod); row.bind(ticket.contractID); row.bind(ticket.matchReason)
            row.bind(ticket.taskFingerprint); row.bind(seconds(ticket.syncedAt)); row.bind(facts.service); row.bind(facts.agent)
            row.bind(facts.ticketClass); row.bind(facts.ref); row.bind(facts.queryMatches.joined(separator: ",")); row.bind(ticket.removed?.rawValue)
            row.bind(ticket.removedAt.map(seconds)); row.bind(ticket.closedAt.map(seconds)); row.bind(facts.categoryName)
            row.bind(facts.linkedContracts.joined(separator: ","))
        }
    }

    func untimedTickets(closedFrom from: Date, to: Date, contractID: String?) throws -> [StoredTicket] {
        try db.rows(sql: """
            SELECT * FROM ticket t INDEXED BY ticket_closed
            WHERE t.closed_at >= ? AND t.closed_at < ? AND t.removed IS NULL AND (? IS NULL OR t.contract_id = ?)
                AND NOT EXISTS (SELECT 1 FROM entry e WHERE e.ticket_id = t.id AND e.raw_seconds > 0)
                AND NOT EXISTS (SELECT 1 FROM timer WHERE timer.ticket_id = t.id AND timer.status != 'stopped')
            ORDER BY t.closed_at, t.id
            """, arguments: [seconds(from), seconds(to), contractID, contractID]).map(Self.ticket)
    }

    func insertMove(_ move: ContractMove) throws {
        try db.run(sql: "INSERT INTO contract_move(ticket_id, from_contract, to_contract, raw_seconds, at, reason) VALUES (?, ?, ?, ?, ?, ?)",
                   arguments: [move.ticketID, move.fromContract, move.toContract, move.rawSeconds, seconds(move.at), move.reason])
        BookChange.noteMove(move, in: book)
    }

    func moves(ticketID: Int) throws -> [ContractMove] {
        try Row.fetchAll(db, sql: "SELECT * FROM contract_move WHERE ticket_id = ? ORDER BY id", arguments: [ticketID]).map {
            ContractMove(ticketID: $0["ticket_id"], fromContract: $0["from_contract"], toContract: $0["to_contract"],
                         rawSeconds: $0["raw_seconds"], at: date($0["at"] as Int), reason: $0["reason"])
        }
    }
}

// MARK: Entries

extension SQLiteTransaction {
    static func entry(_ row: Row) -> LedgerEntry {
        LedgerEntry(id: row["id"], source: EntrySource(rawValue: row["source"]) ?? .helpdeskTask, sourceID: row["source_id"],
                    ticketID: row["ticket_id"], contractID: row["contract_id"], periodKey: row["period_key"], workedAt: date(row["worked_at"] as Int),
                    rawSeconds: row["raw_seconds"], billedSeconds: row["billed_seconds"], rounding: row["rounding"], technician: row["technician"],
                    isPrivate: row["is_private"], content: row["content"], updatedAt: date(row["updated_at"] as Int),
                    kind: EntryKind(rawValue: row["kind"]) ?? .billable, key: row["entry_key"], note: row["note"],
                    remoteTaskID: row["remote_task_id"], createdBy: row["created_by"], approval: Approval(rawValue: row["approval"]) ?? .approved,
                    taskCategory: row["task_category"])
    }

    func entries(ticketID: Int) throws -> [LedgerEntry] {
        try db.rows(sql: "SELECT * FROM entry WHERE ticket_id = ? ORDER BY id", arguments: [ticketID]).map(Self.entry)
    }

    func entries(ticketIDs: [Int]) throws -> [Int: [LedgerEntry]] {
        var result: [Int: [LedgerEntry]] = [:]
        for chunk in chunked(Array(Set(ticketIDs))) {
            for row in try Row.fetchAll(db, sql: "SELECT * FROM entry WHERE ticket_id IN (\(databaseQuestionMarks(count: chunk.count))) ORDER BY id",
                                        arguments: StatementArguments(chunk)) {
                let entry = Self.entry(row)
                result[entry.ticketID, default: []].append(entry)
            }
            for id in chunk where result[id] == nil { result[id] = [] }
        }
        return result
    }

    func entry(key: String) throws -> LedgerEntry? {
        try db.rows(sql: "SELECT * FROM entry WHERE entry_key = ?", arguments: [key]).first.map(Self.entry)
    }

    func helpdeskTaskEntries(taskIDs: [Int]) throws -> [Int: LedgerEntry] {
        var result: [Int: LedgerEntry] = [:]
        for chunk in chunked(taskIDs) {
            for row in try Row.fetchAll(db, sql: "SELECT * FROM entry WHERE source = 'helpdesk_task' AND source_id IN (\(databaseQuestionMarks(count: chunk.count)))",
                                        arguments: StatementArguments(chunk)) {
                result[row["source_id"]] = Self.entry(row)
            }
        }
        return result
    }

    func ownTaskIDs(among taskIDs: [Int]) throws -> Set<Int> {
        var result = Set<Int>()
        for chunk in chunked(taskIDs) {
            result.formUnion(try Int.fetchAll(db, sql: "SELECT remote_task_id FROM entry WHERE remote_task_id IN (\(databaseQuestionMarks(count: chunk.count)))",
                                              arguments: StatementArguments(chunk)))
        }
        return result
    }

    func ownEntries(ticketID: Int?, contractID: String?) throws -> [LedgerEntry] {
        try Row.fetchAll(db, sql: """
            SELECT * FROM entry WHERE source = 'hourledger' AND (?1 IS NULL OR ticket_id = ?1) AND (?2 IS NULL OR contract_id = ?2)
            ORDER BY worked_at, id
            """, arguments: [ticketID, contractID]).map(Self.entry)
    }

    func entries(technician: Int, from: Date, to: Date) throws -> [LedgerEntry] {
        try Row.fetchAll(db, sql: "SELECT * FROM entry INDEXED BY entry_report WHERE worked_at >= ? AND worked_at < ? AND technician = ? ORDER BY worked_at, id",
                         arguments: [seconds(from), seconds(to), technician]).map(Self.entry)
    }

    func latestCountedTicket(contractID: String, periodKey: String) throws -> Int? {
        try Int.fetchOne(db, sql: """
            SELECT ticket_id FROM entry WHERE contract_id = ? AND period_key = ? AND kind != 'internal' AND approval = 'approved'
            ORDER BY updated_at DESC, id DESC LIMIT 1
            """, arguments: [contractID, periodKey])
    }

    func countedEntries(contractID: String, periodKey: String) throws -> [(entry: LedgerEntry, ticketName: String)] {
        try Row.fetchAll(db, sql: """
            SELECT e.*, COALESCE(t.name, '') AS ticket_name FROM entry e LEFT JOIN ticket t ON t.id = e.ticket_id
            WHERE e.contract_id = ? AND e.period_key = ? AND e.approval = 'approved'
            ORDER BY e.worked_at, e.id
            """, arguments: [contractID, periodKey]).map { (Self.entry($0), $0["ticket_name"]) }
    }

    func usageOverTime(contractID: String, periodKey: String) throws -> [(at: Date, usedSeconds: Int)] {
        var total = 0
        return try Row.fetchAll(db, sql: """
            SELECT worked_at, billed_seconds FROM entry WHERE contract_id = ? AND period_key = ? AND approval = 'approved'
            ORDER BY worked_at, id
            """, arguments: [contractID, periodKey]).map { row in
            total += row["billed_seconds"] as Int
            return (date(row["worked_at"] as Int), total)
        }
    }

    /// `OR ROLLBACK`: a refused row ends the whole transaction, as the error would anyway. With the default
    /// (`ABORT`), SQLite keeps a statement journal for every insert that fires a trigger, copying each page it touches;
    /// that copying was a third of a first sync's writing.
    private static func insertEntrySQL(rows: Int) -> String {
        let row = "(" + databaseQuestionMarks(count: entryColumnCount) + ")"
        return """
            INSERT OR ROLLBACK INTO entry(source, source_id, ticket_id, contract_id, period_key, worked_at, raw_seconds, billed_seconds,
                rounding, technician, is_private, content, updated_at, kind, entry_key, note, remote_task_id, created_by, approval, task_category)
            VALUES \(Array(repeating: row, count: rows).joined(separator: ", "))
            """
    }

    private static let entryColumnCount = 20
    /// Rows per statement when many are stored at once: 20 columns each, well under SQLite's limit on parameters.
    private static let entryRowsPerInsert = 40
    private static let insertEntrySQLs = (1...entryRowsPerInsert).map { insertEntrySQL(rows: $0) }

    private static func bind(_ entry: LedgerEntry, to row: inout RowBinding) {
        row.bind(entry.source.rawValue); row.bind(entry.sourceID); row.bind(entry.ticketID); row.bind(entry.contractID)
        row.bind(entry.periodKey); row.bind(seconds(entry.workedAt)); row.bind(entry.rawSeconds); row.bind(entry.billedSeconds)
        row.bind(entry.rounding); row.bind(entry.technician); row.bind(entry.isPrivate); row.bind(entry.content)
        row.bind(seconds(entry.updatedAt)); row.bind(entry.kind.rawValue); row.bind(entry.key); row.bind(entry.note)
        row.bind(entry.remoteTaskID); row.bind(entry.createdBy); row.bind(entry.approval.rawValue); row.bind(entry.taskCategory)
    }

    func insertEntry(_ entry: LedgerEntry) throws -> Int64 {
        try db.run(sql: Self.insertEntrySQLs[0]) { Self.bind(entry, to: &$0) }
        let id = db.lastInsertedRowID
        // source_id mirrors the row id, keeping (source, source_id) unique for HourLedger's own entries.
        if entry.source == .hourledger { try db.run(sql: "UPDATE entry SET source_id = id WHERE id = ?", arguments: [id]) }
        let stored = entry.stored(as: id)
        book.note(.entry(stored), contract: stored.contractID)
        return id
    }

    func insertEntries(_ entries: [LedgerEntry]) throws {
        precondition(!entries.contains { $0.source == .hourledger }, "HourLedger's own entries are stored one by one")
        var start = 0
        while start < entries.count {
            let rows = entries[start..<min(start + Self.entryRowsPerInsert, entries.count)]
            try db.run(sql: Self.insertEntrySQLs[rows.count - 1]) { binding in
                for entry in rows { Self.bind(entry, to: &binding) }
            }
            start += rows.count
        }
        for entry in entries { book.note(.entry(entry), contract: entry.contractID) }
    }

    func updateEntry(_ entry: LedgerEntry) throws {
        try db.run(sql: """
            UPDATE entry SET contract_id = ?, period_key = ?, worked_at = ?, raw_seconds = ?, billed_seconds = ?, rounding = ?, technician = ?,
                is_private = ?, content = ?, updated_at = ?, kind = ?, note = ?, remote_task_id = ?, approval = ?, task_category = ?
            WHERE id = ?
            """, arguments: [entry.contractID, entry.periodKey, seconds(entry.workedAt), entry.rawSeconds, entry.billedSeconds, entry.rounding,
                             entry.technician, entry.isPrivate, entry.content, seconds(entry.updatedAt), entry.kind.rawValue, entry.note,
                             entry.remoteTaskID, entry.approval.rawValue, entry.taskCategory, entry.id])
        book.note(.entry(entry), contract: entry.contractID)
    }

    func deleteEntry(id: Int64) throws {
        guard let old = try db.rows(sql: "SELECT * FROM entry WHERE id = ?", arguments: [id]).first.map(Self.entry) else { return }
        try db.run(sql: "DELETE FROM entry WHERE id = ?", arguments: [id])
        book.note(.deleted(old), contract: old.contractID)
    }

    func setRemoteTaskID(_ taskID: Int, entryKey: String) throws {
        try db.run(sql: "UPDATE entry SET remote_task_id = ? WHERE entry_key = ?", arguments: [taskID, entryKey])
    }
}
