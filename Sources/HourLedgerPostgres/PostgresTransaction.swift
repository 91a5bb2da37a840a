import Foundation
import HourLedgerCore
import HourLedgerUseCases
import PostgresNIO

/// One transaction's view of the ledger: the SQL behind each repository operation, as SQLite's store has it, in
/// PostgreSQL's dialect. Every value is a bound parameter (PostgresNIO's interpolation binds, it never splices).
struct PostgresTransaction: LedgerWriter {
    let session: Session
    /// This transaction's changes to the books, chained in at its end.
    let book = BookBuffer()
    /// The kinds of work this transaction queued for the leader (a webhook hint, a write-back, an alert).
    let notes = ChangeNotes()

    func run(_ query: PostgresQuery) throws { try session.execute(query) }
    func changes(_ query: PostgresQuery) throws -> Int { try session.execute(query) }
    func rows(_ query: PostgresQuery) throws -> [Row] { try session.rows(query) }
    func one<T: PostgresDecodable>(_ query: PostgresQuery, as type: T.Type = T.self) throws -> T? {
        guard let row = try rows(query).first, row.cells[0].bytes != nil else { return nil }
        return try row.cells[0].decode(T.self)
    }

    // MARK: Books

    func flushBook() throws {
        try book.flush(at: Date(), head: { try bookHead(contractID: $0) }, append: { record in
            try run("""
                INSERT INTO book_record(contract_id, seq, at, content, previous_hash, hash)
                VALUES (\(record.contractID), \(record.seq), \(record.at), \(record.content), \(record.previousHash), \(record.hash))
                """)
        })
    }

    /// A ledger copied from before the books gets one opening record per contract, as SQLite's store does.
    static func openBooks(_ session: Session) throws {
        let transaction = PostgresTransaction(session: session)
        guard try transaction.one("SELECT EXISTS (SELECT 1 FROM book_record)", as: Bool.self) == false,
              try transaction.one("SELECT EXISTS (SELECT 1 FROM entry)", as: Bool.self) == true else { return }
        for entry in try transaction.allEntries() { transaction.book.note(.entry(entry), contract: entry.contractID) }
        try transaction.flushBook()
    }

    func bookHead(contractID: String) throws -> (seq: Int, hash: String)? {
        try rows("SELECT seq, hash FROM book_record WHERE contract_id = \(contractID) ORDER BY seq DESC LIMIT 1").first
            .map { (try $0["seq"], try $0["hash"]) }
    }

    func bookRecords() throws -> [BookRecord] {
        try rows("SELECT * FROM book_record ORDER BY id").map {
            BookRecord(id: try $0["id"], contractID: try $0["contract_id"], seq: try $0["seq"], at: try $0["at"], content: try $0["content"],
                       previousHash: try $0["previous_hash"], hash: try $0["hash"])
        }
    }

    func allEntries() throws -> [LedgerEntry] {
        try rows("SELECT * FROM entry ORDER BY id").map(Self.entry)
    }

    // MARK: Sync state, tickets, moves

    func state(_ key: String) throws -> String? {
        try one("SELECT value FROM sync_state WHERE key = \(key)")
    }

    func setState(_ key: String, _ value: String) throws {
        try run("INSERT INTO sync_state(key, value) VALUES (\(key), \(value)) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
    }

    static func ticket(_ row: Row) throws -> StoredTicket {
        var facts = TicketFacts(id: try row["id"], name: try row["name"], entity: try row["entity"],
                                groups: (try row["groups"] as String).split(separator: ",").compactMap { Int($0) },
                                category: try row["category"], status: try row["status"], service: try row["service"], agent: try row["agent"],
                                ticketClass: try row["class"], ref: try row["ref"], categoryName: try row["category_name"],
                                queryMatches: (try row["query_matches"] as String).split(separator: ",").map(String.init))
        facts.queryUnknown = []
        facts.linkedContracts = (try row["linked_contracts"] as String).split(separator: ",").map(String.init)
        return StoredTicket(facts: facts, dateMod: try row["date_mod"], contractID: try row["contract_id"], matchReason: try row["match_reason"],
                            taskFingerprint: try row["task_fingerprint"], syncedAt: date(try row["synced_at"] as Int),
                            removed: (try row["removed"] as String?).flatMap(TicketRemoval.init), removedAt: date(try row["removed_at"] as Int?),
                            closedAt: date(try row["closed_at"] as Int?))
    }

    func ticket(_ id: Int) throws -> StoredTicket? {
        try rows("SELECT * FROM ticket WHERE id = \(id)").first.map(Self.ticket)
    }

    func tickets(_ ids: [Int]) throws -> [Int: StoredTicket] {
        var result: [Int: StoredTicket] = [:]
        for row in try rows("SELECT * FROM ticket WHERE id = ANY(\(ids))") {
            let ticket = try Self.ticket(row)
            result[ticket.id] = ticket
        }
        return result
    }

    func liveTickets() throws -> [StoredTicket] {
        try rows("SELECT * FROM ticket WHERE removed IS NULL ORDER BY id").map(Self.ticket)
    }

    func linkedTickets() throws -> [StoredTicket] {
        try rows("SELECT * FROM ticket WHERE linked_contracts <> '' AND removed IS NULL ORDER BY id").map(Self.ticket)
    }

    func liveTicketIDs() throws -> Set<Int> {
        Set(try rows("SELECT id FROM ticket WHERE removed IS NULL").map { try $0["id"] as Int })
    }

    func ticketSeconds() throws -> [TicketSeconds] {
        try rows("""
            SELECT t.id, t.contract_id, t.date_mod,
                   COALESCE(SUM(CASE WHEN e.source = 'helpdesk_task' THEN e.raw_seconds END), 0)::bigint AS task_seconds,
                   COALESCE(SUM(CASE WHEN e.source = 'hourledger' AND e.remote_task_id IS NOT NULL THEN e.billed_seconds END), 0)::bigint AS written
            FROM ticket t LEFT JOIN entry e ON e.ticket_id = t.id
            WHERE t.removed IS NULL GROUP BY t.id ORDER BY t.id
            """).map { row in
            TicketSeconds(ticketID: try row["id"], contractID: try row["contract_id"], dateMod: try row["date_mod"],
                          helpdeskTaskSeconds: try row["task_seconds"], writtenSeconds: try row["written"])
        }
    }

    func ticketMatches() throws -> [Int: (contractID: String?, reason: String)] {
        var result: [Int: (contractID: String?, reason: String)] = [:]
        for row in try rows("SELECT id, contract_id, match_reason FROM ticket") {
            result[try row["id"]] = (try row["contract_id"], try row["match_reason"])
        }
        return result
    }

    func unmatchedTickets() throws -> [UnmatchedTicket] {
        try rows("""
            SELECT t.id, t.ref, t.name, t.entity, t.groups, t.category, t.match_reason,
                   (SELECT COALESCE(SUM(raw_seconds), 0)::bigint FROM entry WHERE ticket_id = t.id) AS raw
            FROM ticket t WHERE t.contract_id IS NULL AND t.removed IS NULL ORDER BY t.id
            """).map { row in
            UnmatchedTicket(ticketID: try row["id"], ref: try row["ref"], name: try row["name"], entity: try row["entity"],
                            groups: (try row["groups"] as String).split(separator: ",").compactMap { Int($0) },
                            category: try row["category"], reason: try row["match_reason"], rawSeconds: try row["raw"])
        }
    }

    func saveTicket(_ ticket: StoredTicket) throws {
        let facts = ticket.facts
        let groups = facts.groups.map(String.init).joined(separator: ","), matches = facts.queryMatches.joined(separator: ",")
        let links = facts.linkedContracts.joined(separator: ",")
        try run("""
            INSERT INTO ticket(id, name, entity, groups, category, status, date_mod, contract_id, match_reason, task_fingerprint, synced_at,
                               service, agent, class, ref, query_matches, removed, removed_at, closed_at, category_name, linked_contracts)
            VALUES (\(facts.id), \(facts.name), \(facts.entity), \(groups), \(facts.category), \(facts.status), \(ticket.dateMod),
                    \(ticket.contractID), \(ticket.matchReason), \(ticket.taskFingerprint), \(seconds(ticket.syncedAt)), \(facts.service),
                    \(facts.agent), \(facts.ticketClass), \(facts.ref), \(matches), \(ticket.removed?.rawValue), \(ticket.removedAt.map(seconds)),
                    \(ticket.closedAt.map(seconds)), \(facts.categoryName), \(links))
            ON CONFLICT(id) DO UPDATE SET name = excluded.name, entity = excluded.entity, groups = excluded.groups,
                category = excluded.category, status = excluded.status, date_mod = excluded.date_mod, contract_id = excluded.contract_id,
                match_reason = excluded.match_reason, task_fingerprint = excluded.task_fingerprint, synced_at = excluded.synced_at,
                service = excluded.service, agent = excluded.agent, class = excluded.class, ref = excluded.ref,
                query_matches = excluded.query_matches, removed = excluded.removed, removed_at = excluded.removed_at,
                closed_at = excluded.closed_at, category_name = excluded.category_name, linked_contracts = excluded.linked_contracts
            """)
    }

    func untimedTickets(closedFrom from: Date, to: Date, contractID: String?) throws -> [StoredTicket] {
        try rows("""
            SELECT * FROM ticket t
            WHERE t.closed_at >= \(seconds(from)) AND t.closed_at < \(seconds(to)) AND t.removed IS NULL
                AND (\(contractID)::text IS NULL OR t.contract_id = \(contractID))
                AND NOT EXISTS (SELECT 1 FROM entry e WHERE e.ticket_id = t.id AND e.raw_seconds > 0)
                AND NOT EXISTS (SELECT 1 FROM timer WHERE timer.ticket_id = t.id AND timer.status <> 'stopped')
            ORDER BY t.closed_at, t.id
            """).map(Self.ticket)
    }

    func insertMove(_ move: ContractMove) throws {
        try run("""
            INSERT INTO contract_move(ticket_id, from_contract, to_contract, raw_seconds, at, reason)
            VALUES (\(move.ticketID), \(move.fromContract), \(move.toContract), \(move.rawSeconds), \(seconds(move.at)), \(move.reason))
            """)
        BookChange.noteMove(move, in: book)
    }

    func moves(ticketID: Int) throws -> [ContractMove] {
        try rows("SELECT * FROM contract_move WHERE ticket_id = \(ticketID) ORDER BY id").map {
            ContractMove(ticketID: try $0["ticket_id"], fromContract: try $0["from_contract"], toContract: try $0["to_contract"],
                         rawSeconds: try $0["raw_seconds"], at: date(try $0["at"] as Int), reason: try $0["reason"])
        }
    }

    // MARK: Entries

    static func entry(_ row: Row) throws -> LedgerEntry {
        LedgerEntry(id: try row["id"], source: EntrySource(rawValue: try row["source"]) ?? .helpdeskTask, sourceID: try row["source_id"],
                    ticketID: try row["ticket_id"], contractID: try row["contract_id"], periodKey: try row["period_key"],
                    workedAt: date(try row["worked_at"] as Int), rawSeconds: try row["raw_seconds"], billedSeconds: try row["billed_seconds"],
                    rounding: try row["rounding"], technician: try row["technician"], isPrivate: try row["is_private"], content: try row["content"],
                    updatedAt: date(try row["updated_at"] as Int), kind: EntryKind(rawValue: try row["kind"]) ?? .billable, key: try row["entry_key"],
                    note: try row["note"], remoteTaskID: try row["remote_task_id"], createdBy: try row["created_by"],
                    approval: Approval(rawValue: try row["approval"]) ?? .approved, taskCategory: try row["task_category"])
    }

    func entries(ticketID: Int) throws -> [LedgerEntry] {
        try rows("SELECT * FROM entry WHERE ticket_id = \(ticketID) ORDER BY id").map(Self.entry)
    }

    func entries(ticketIDs: [Int]) throws -> [Int: [LedgerEntry]] {
        let ids = Array(Set(ticketIDs))
        var result: [Int: [LedgerEntry]] = [:]
        for row in try rows("SELECT * FROM entry WHERE ticket_id = ANY(\(ids)) ORDER BY id") {
            let entry = try Self.entry(row)
            result[entry.ticketID, default: []].append(entry)
        }
        for id in ids where result[id] == nil { result[id] = [] }
        return result
    }

    func entry(key: String) throws -> LedgerEntry? {
        try rows("SELECT * FROM entry WHERE entry_key = \(key)").first.map(Self.entry)
    }

    func helpdeskTaskEntries(taskIDs: [Int]) throws -> [Int: LedgerEntry] {
        var result: [Int: LedgerEntry] = [:]
        for row in try rows("SELECT * FROM entry WHERE source = 'helpdesk_task' AND source_id = ANY(\(taskIDs))") {
            result[try row["source_id"]] = try Self.entry(row)
        }
        return result
    }

    func ownTaskIDs(among taskIDs: [Int]) throws -> Set<Int> {
        Set(try rows("SELECT remote_task_id FROM entry WHERE remote_task_id = ANY(\(taskIDs))").map { try $0["remote_task_id"] as Int })
    }

    func ownEntries(ticketID: Int?, contractID: String?) throws -> [LedgerEntry] {
        try rows("""
            SELECT * FROM entry WHERE source = 'hourledger' AND (\(ticketID)::bigint IS NULL OR ticket_id = \(ticketID))
                AND (\(contractID)::text IS NULL OR contract_id = \(contractID))
            ORDER BY worked_at, id
            """).map(Self.entry)
    }

    func entries(technician: Int, from: Date, to: Date) throws -> [LedgerEntry] {
        try rows("""
            SELECT * FROM entry WHERE worked_at >= \(seconds(from)) AND worked_at < \(seconds(to)) AND technician = \(technician)
            ORDER BY worked_at, id
            """).map(Self.entry)
    }

    func latestCountedTicket(contractID: String, periodKey: String) throws -> Int? {
        try one("""
            SELECT ticket_id FROM entry WHERE contract_id = \(contractID) AND period_key = \(periodKey) AND kind <> 'internal'
                AND approval = 'approved'
            ORDER BY updated_at DESC, id DESC LIMIT 1
            """)
    }

    func countedEntries(contractID: String, periodKey: String) throws -> [(entry: LedgerEntry, ticketName: String)] {
        try rows("""
            SELECT e.*, COALESCE(t.name, '') AS ticket_name FROM entry e LEFT JOIN ticket t ON t.id = e.ticket_id
            WHERE e.contract_id = \(contractID) AND e.period_key = \(periodKey) AND e.approval = 'approved'
            ORDER BY e.worked_at, e.id
            """).map { (try Self.entry($0), try $0["ticket_name"]) }
    }

    func usageOverTime(contractID: String, periodKey: String) throws -> [(at: Date, usedSeconds: Int)] {
        var total = 0
        return try rows("""
            SELECT worked_at, billed_seconds FROM entry WHERE contract_id = \(contractID) AND period_key = \(periodKey)
                AND approval = 'approved'
            ORDER BY worked_at, id
            """).map { row in
            total += try row["billed_seconds"] as Int
            return (date(try row["worked_at"] as Int), total)
        }
    }

    /// Rows per statement when many entries are stored at once, as on SQLite.
    private static let entryRowsPerInsert = 40

    private static func insertEntries(_ entries: ArraySlice<LedgerEntry>) -> PostgresQuery {
        var binds = PostgresBindings(capacity: entries.count * 20)
        var values: [String] = []
        for entry in entries {
            let first = binds.count + 1
            values.append("(" + (first..<first + 20).map { "$\($0)" }.joined(separator: ", ") + ")")
            binds.append(entry.source.rawValue)
            binds.append(entry.sourceID)
            binds.append(entry.ticketID)
            binds.append(entry.contractID)
            binds.append(entry.periodKey)
            binds.append(seconds(entry.workedAt))
            binds.append(entry.rawSeconds)
            binds.append(entry.billedSeconds)
            binds.append(entry.rounding)
            binds.append(entry.technician)
            binds.append(entry.isPrivate)
            binds.append(entry.content)
            binds.append(seconds(entry.updatedAt))
            binds.append(entry.kind.rawValue)
            binds.append(entry.key)
            binds.append(entry.note)
            binds.append(entry.remoteTaskID)
            binds.append(entry.createdBy)
            binds.append(entry.approval.rawValue)
            binds.append(entry.taskCategory)
        }
        return PostgresQuery(unsafeSQL: """
            INSERT INTO entry(source, source_id, ticket_id, contract_id, period_key, worked_at, raw_seconds, billed_seconds,
                rounding, technician, is_private, content, updated_at, kind, entry_key, note, remote_task_id, created_by, approval, task_category)
            VALUES \(values.joined(separator: ", ")) RETURNING id
            """, binds: binds)
    }

    func insertEntry(_ entry: LedgerEntry) throws -> Int64 {
        guard let id = try rows(Self.insertEntries([entry][...])).first.map({ try $0["id"] as Int64 }) else {
            throw LedgerStoreError("the entry insert returned no id")
        }
        // source_id mirrors the row id, keeping (source, source_id) unique for HourLedger's own entries.
        if entry.source == .hourledger { try run("UPDATE entry SET source_id = id WHERE id = \(id)") }
        let stored = entry.stored(as: id)
        book.note(.entry(stored), contract: stored.contractID)
        return id
    }

    func insertEntries(_ entries: [LedgerEntry]) throws {
        precondition(!entries.contains { $0.source == .hourledger }, "HourLedger's own entries are stored one by one")
        var start = 0
        while start < entries.count {
            let end = min(start + Self.entryRowsPerInsert, entries.count)
            try run(Self.insertEntries(entries[start..<end]))
            start = end
        }
        for entry in entries { book.note(.entry(entry), contract: entry.contractID) }
    }

    func updateEntry(_ entry: LedgerEntry) throws {
        try run("""
            UPDATE entry SET contract_id = \(entry.contractID), period_key = \(entry.periodKey), worked_at = \(seconds(entry.workedAt)),
                raw_seconds = \(entry.rawSeconds), billed_seconds = \(entry.billedSeconds), rounding = \(entry.rounding),
                technician = \(entry.technician), is_private = \(entry.isPrivate), content = \(entry.content),
                updated_at = \(seconds(entry.updatedAt)), kind = \(entry.kind.rawValue), note = \(entry.note),
                remote_task_id = \(entry.remoteTaskID), approval = \(entry.approval.rawValue), task_category = \(entry.taskCategory)
            WHERE id = \(entry.id)
            """)
        book.note(.entry(entry), contract: entry.contractID)
    }

    func deleteEntry(id: Int64) throws {
        guard let old = try rows("DELETE FROM entry WHERE id = \(id) RETURNING *").first.map(Self.entry) else { return }
        book.note(.deleted(old), contract: old.contractID)
    }

    func setRemoteTaskID(_ taskID: Int, entryKey: String) throws {
        try run("UPDATE entry SET remote_task_id = \(taskID) WHERE entry_key = \(entryKey)")
    }
}
