import Foundation
import GRDB
import HourLedgerCore

/// A timer as stored, with its owner and ticket.
public struct TimerRecord: Sendable, Equatable, Codable {
    public var id: Int64
    public var technician: Int
    public var ticketID: Int
    public var state: TimerState
    public var startedAt: Date
    public var entryID: Int64?
}

/// An entry logged in HourLedger (timer or manual), with what its write-back needs.
public struct WorkEntry: Sendable, Equatable, Codable {
    public var id: Int64
    public var key: String
    public var ticketID: Int
    public var contractID: String?
    public var periodKey: String?
    public var workedAt: Date
    public var rawSeconds: Int
    public var billedSeconds: Int
    public var rounding: String
    public var technician: Int
    public var kind: EntryKind
    public var note: String
    public var glpiTaskID: Int?
    public var approval: Approval = .approved

    enum CodingKeys: String, CodingKey {
        case id, key, rounding, technician, kind, note, approval
        case ticketID = "ticket_id", contractID = "contract_id", periodKey = "period_key", workedAt = "worked_at"
        case rawSeconds = "raw_seconds", billedSeconds = "billed_seconds", glpiTaskID = "glpi_task_id"
    }
}

/// What a technician asks to log.
public struct NewEntry: Sendable {
    public var ticketID: Int
    public var technician: Int
    public var startedAt: Date
    public var rawSeconds: Int
    public var kind: EntryKind
    public var note: String
    public var createdBy: String
    /// The helpdesk task category (service) for the write-back; nil uses the configured default.
    public var category: Int?

    public init(ticketID: Int, technician: Int, startedAt: Date, rawSeconds: Int, kind: EntryKind, note: String, createdBy: String,
                category: Int? = nil) {
        self.ticketID = ticketID
        self.technician = technician
        self.startedAt = startedAt
        self.rawSeconds = rawSeconds
        self.kind = kind
        self.note = note
        self.createdBy = createdBy
        self.category = category
    }
}

/// The task to write in the helpdesk for an entry.
public struct WriteBack: Sendable, Equatable, Codable {
    public var seconds: Int
    public var content: String
    public var technician: Int
    public var date: Date
    public var glpiTaskID: Int?
    /// The helpdesk task category (service) chosen for this entry, if any.
    public var category: Int?
    /// For a correction or a withdrawal: what the entry said before, and why it changed. An append-only log (iTop)
    /// shows both; an edited task (GLPI) shows the entry as it is now.
    public var previous: String?
    public var reason: String?

    public init(seconds: Int, content: String, technician: Int, date: Date, glpiTaskID: Int? = nil, category: Int? = nil,
                previous: String? = nil, reason: String? = nil) {
        self.seconds = seconds
        self.content = content
        self.technician = technician
        self.date = date
        self.glpiTaskID = glpiTaskID
        self.category = category
        self.previous = previous
        self.reason = reason
    }

    /// " (was: …; reason: …)" for a correction or withdrawal note, or "" when neither is known.
    public var changeNote: String {
        let parts = [previous.map { "was: \($0)" }, reason.flatMap { $0.isEmpty ? nil : "reason: \($0)" }].compactMap { $0 }
        return parts.isEmpty ? "" : " (" + parts.joined(separator: "; ") + ")"
    }
}

public struct WorkLogError: Error, Equatable, CustomStringConvertible, Sendable {
    public enum Code: Equatable, Sendable { case unknownTicket, unknownTimer, unknownEntry, notYours, transition, invalid }
    public let code: Code
    /// The request field the problem is about.
    public let field: String
    public let message: String
    public var description: String { message }
}

extension LedgerStore {
    // MARK: Timers

    /// Starts a timer, or returns the one already open for this technician and ticket (`created == false`).
    public func startTimer(technician: Int, ticketID: Int, now: Date) async throws -> (timer: TimerRecord, created: Bool) {
        try await writer.write { db in
            try Self.requireLiveTicket(db, ticketID)
            if let open = try Self.openTimer(db, technician: technician, ticketID: ticketID) { return (open, false) }
            let state = TimerState.started(at: now)
            try db.execute(sql: "INSERT INTO timer(technician, ticket_id, status, state, started_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                           arguments: [technician, ticketID, state.status.rawValue, try Self.json(state), Int(now.timeIntervalSince1970),
                                       Int(now.timeIntervalSince1970)])
            return (TimerRecord(id: db.lastInsertedRowID, technician: technician, ticketID: ticketID, state: state, startedAt: now, entryID: nil), true)
        }
    }

    public enum TimerAction: String, Sendable { case pause, resume, stop }

    /// Applies one transition atomically; `stop` also writes the entry and its outbox record in the same transaction.
    public func timerTransition(
        id: Int64, actingAs technician: Int?, action: TimerAction, now: Date, contracts: [Contract],
        kind: EntryKind? = nil, note: String = "", category: Int? = nil, actor: String
    ) async throws -> (timer: TimerRecord, entry: WorkEntry?) {
        try await writer.write { db in
            guard var timer = try Self.timer(db, id: id) else {
                throw WorkLogError(code: .unknownTimer, field: "id", message: "no timer \(id)")
            }
            if let technician, timer.technician != technician {
                throw WorkLogError(code: .notYours, field: "id", message: "timer \(id) belongs to technician \(timer.technician)")
            }
            do {
                switch action {
                case .pause: timer.state = try timer.state.pause(at: now)
                case .resume: timer.state = try timer.state.resume(at: now)
                case .stop: timer.state = try timer.state.stop(at: now)
                }
            } catch {
                throw WorkLogError(code: .transition, field: "action", message: "\(error)")
            }
            var entry: WorkEntry?
            if action == .stop {
                entry = try Self.insertEntry(db, NewEntry(ticketID: timer.ticketID, technician: timer.technician, startedAt: timer.startedAt,
                                                          rawSeconds: timer.state.elapsedSeconds(at: now), kind: kind ?? .billable, note: note,
                                                          createdBy: actor, category: category), contracts: contracts, now: now)
                timer.entryID = entry?.id
            }
            try db.execute(sql: "UPDATE timer SET status = ?, state = ?, updated_at = ?, entry_id = ? WHERE id = ?",
                           arguments: [timer.state.status.rawValue, try Self.json(timer.state), Int(now.timeIntervalSince1970), timer.entryID, id])
            return (timer, entry)
        }
    }

    /// Pauses and flags every timer that has run longer than the cap in one stretch.
    @discardableResult
    public func applyTimerCap(maxRunningSeconds: Int, now: Date) async throws -> [TimerRecord] {
        try await writer.write { db in
            var capped: [TimerRecord] = []
            for var timer in try Self.timers(db, whereSQL: "status = 'running'", arguments: []) {
                guard let next = timer.state.applyingCap(maxRunningSeconds: maxRunningSeconds, at: now) else { continue }
                timer.state = next
                try db.execute(sql: "UPDATE timer SET status = ?, state = ?, updated_at = ? WHERE id = ?",
                               arguments: [next.status.rawValue, try Self.json(next), Int(now.timeIntervalSince1970), timer.id])
                capped.append(timer)
            }
            return capped
        }
    }

    public func timers(technician: Int? = nil, openOnly: Bool) throws -> [TimerRecord] {
        try writer.read { db in
            var clauses: [String] = []
            var arguments: [any DatabaseValueConvertible] = []
            if openOnly { clauses.append("status != 'stopped'") }
            if let technician { clauses.append("technician = ?"); arguments.append(technician) }
            return try Self.timers(db, whereSQL: clauses.isEmpty ? "1" : clauses.joined(separator: " AND "), arguments: arguments)
        }
    }

    static func openTimer(_ db: Database, technician: Int, ticketID: Int) throws -> TimerRecord? {
        try timers(db, whereSQL: "technician = ? AND ticket_id = ? AND status != 'stopped'", arguments: [technician, ticketID]).first
    }

    static func timer(_ db: Database, id: Int64) throws -> TimerRecord? {
        try timers(db, whereSQL: "id = ?", arguments: [id]).first
    }

    static func timers(_ db: Database, whereSQL: String, arguments: [any DatabaseValueConvertible]) throws -> [TimerRecord] {
        try Row.fetchAll(db, sql: "SELECT * FROM timer WHERE \(whereSQL) ORDER BY id", arguments: StatementArguments(arguments)).map { row in
            TimerRecord(id: row["id"], technician: row["technician"], ticketID: row["ticket_id"],
                        state: try JSONDecoder().decode(TimerState.self, from: Data((row["state"] as String).utf8)),
                        startedAt: Date(timeIntervalSince1970: TimeInterval(row["started_at"] as Int)), entryID: row["entry_id"])
        }
    }

    static func json(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    // MARK: Entries

    /// Logs time after the fact; it goes through the same rounding and write-back as a timer.
    public func addEntry(_ entry: NewEntry, contracts: [Contract], now: Date) async throws -> WorkEntry {
        try Self.check(seconds: entry.rawSeconds, start: entry.startedAt, note: entry.note, now: now)
        return try await writer.write { db in try Self.insertEntry(db, entry, contracts: contracts, now: now) }
    }

    static func insertEntry(_ db: Database, _ entry: NewEntry, contracts: [Contract], now: Date) throws -> WorkEntry {
        try Self.requireLiveTicket(db, entry.ticketID)
        guard let ticket = try Row.fetchOne(db, sql: "SELECT contract_id, name FROM ticket WHERE id = ?", arguments: [entry.ticketID]) else {
            throw WorkLogError(code: .unknownTicket, field: "ticket", message: "ticket \(entry.ticketID) is not known to HourLedger (not synced from the helpdesk)")
        }
        let contract = (ticket["contract_id"] as String?).flatMap { id in contracts.first { $0.id == id } }
        let period = contract?.period(containing: entry.startedAt)
        let billed = contract?.rounding.billedSeconds(forRaw: entry.rawSeconds) ?? entry.rawSeconds
        let rounding = contract?.rounding.description ?? RoundingPolicy.none.description
        let key = UUID().uuidString.lowercased()
        let workedAt = Int(entry.startedAt.timeIntervalSince1970)
        let approval: Approval = contract?.approvalRequired == true ? .pending : .approved
        try db.execute(sql: """
            INSERT INTO entry(source, source_id, ticket_id, contract_id, period_key, worked_at, raw_seconds, billed_seconds, rounding,
                technician, is_private, content, updated_at, kind, entry_key, note, created_by, approval, task_category)
            VALUES (?, 0, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [EntrySource.hourledger, entry.ticketID, contract?.id, period?.key, workedAt, entry.rawSeconds, billed, rounding,
                             entry.technician, entry.note, Int(now.timeIntervalSince1970), entry.kind.rawValue, key, entry.note, entry.createdBy,
                             approval.rawValue, entry.category])
        let id = db.lastInsertedRowID
        // source_id mirrors the row id, keeping (source, source_id) unique for HourLedger's own entries.
        try db.execute(sql: "UPDATE entry SET source_id = id WHERE id = ?", arguments: [id])
        var deltas = BalanceDeltas()
        deltas.add(contract: contract, period: period, billed: billed, raw: entry.rawSeconds, kind: entry.kind.rawValue, approval: approval.rawValue)
        try deltas.apply(db)
        let work = WorkEntry(id: id, key: key, ticketID: entry.ticketID, contractID: contract?.id, periodKey: period?.key,
                             workedAt: entry.startedAt, rawSeconds: entry.rawSeconds, billedSeconds: billed, rounding: rounding,
                             technician: entry.technician, kind: entry.kind, note: entry.note, glpiTaskID: nil, approval: approval)
        // An entry waiting for approval is written back once approved.
        if approval == .approved { try enqueueCreate(db, work, contract: contract, category: entry.category, now: now) }
        return work
    }

    static func enqueueCreate(_ db: Database, _ work: WorkEntry, contract: Contract?, category: Int?, now: Date) throws {
        let payload = WriteBack(seconds: work.billedSeconds, content: writeBackText(work, contract: contract), technician: work.technician,
                                date: work.workedAt, glpiTaskID: nil, category: category)
        try enqueue(db, action: .create, entry: work, payload: payload, now: now)
    }

    /// The private task's text: what, how long and when, by whom, on which contract, and the key that lets HourLedger
    /// find it again.
    static func writeBackText(_ entry: WorkEntry, contract: Contract?) -> String {
        htmlParagraph("\(EntrySource.marker(entry.key)) " + summary(entry, contract: contract) + (entry.note.isEmpty ? "" : ": " + entry.note))
    }

    /// One line people read: "0:15 h billable, worked 0:00:20 on 2026-11-21 by technician 7, rounded up to 15 min,
    /// on contract ACME (acme)". The day is the contract's own.
    static func summary(_ entry: WorkEntry, contract: Contract?) -> String {
        let calendar = contract?.calendar ?? Calendar.utc
        let day = calendar.dateComponents([.year, .month, .day], from: entry.workedAt)
        let date = CivilDate(year: day.year ?? 1970, month: day.month ?? 1, day: day.day ?? 1)
        var text = "\(HoursText.format(entry.billedSeconds)) h \(entry.kind.rawValue), worked \(HoursText.precise(entry.rawSeconds)) on \(date) "
            + "by technician \(entry.technician)"
        if entry.billedSeconds != entry.rawSeconds { text += ", rounded \(contract?.rounding.spoken ?? entry.rounding)" }
        text += contract.map { ", on contract \($0.name) (\($0.id))" } ?? " (no contract matched)"
        return text
    }

    /// Plain text as one HTML paragraph, the form GLPI stores task and followup content in.
    static func htmlParagraph(_ text: String) -> String {
        "<p>" + HTMLText.escape(text) + "</p>"
    }

    public func workEntries(ticketID: Int? = nil, contractID: String? = nil) throws -> [WorkEntry] {
        try writer.read { db in
            var clauses = ["source = ?"]
            var arguments: [any DatabaseValueConvertible] = [EntrySource.hourledger]
            if let ticketID { clauses.append("ticket_id = ?"); arguments.append(ticketID) }
            if let contractID { clauses.append("contract_id = ?"); arguments.append(contractID) }
            return try Row.fetchAll(db, sql: "SELECT * FROM entry WHERE \(clauses.joined(separator: " AND ")) ORDER BY worked_at, id",
                                    arguments: StatementArguments(arguments)).map { row in
                WorkEntry(id: row["id"], key: row["entry_key"], ticketID: row["ticket_id"], contractID: row["contract_id"], periodKey: row["period_key"],
                          workedAt: Date(timeIntervalSince1970: TimeInterval(row["worked_at"] as Int)), rawSeconds: row["raw_seconds"],
                          billedSeconds: row["billed_seconds"], rounding: row["rounding"], technician: row["technician"],
                          kind: EntryKind(rawValue: row["kind"]) ?? .billable, note: row["note"], glpiTaskID: row["glpi_task_id"],
                          approval: Approval(rawValue: row["approval"]) ?? .approved)
            }
        }
    }
}

/// One line of the append-only audit trail.
public struct AuditRecord: Sendable, Equatable, Codable {
    public var at: Date
    public var actor: String
    public var entryKey: String
    public var ticketID: Int
    public var contractID: String?
    public var field: String
    public var oldValue: String?
    public var newValue: String?
    public var reason: String
    enum CodingKeys: String, CodingKey {
        case at, actor, field, reason
        case entryKey = "entry_key", ticketID = "ticket_id", contractID = "contract_id", oldValue = "old_value", newValue = "new_value"
    }
}

/// What an edit changes; nil leaves a field as it is.
public struct EntryChange: Sendable {
    public var rawSeconds: Int?
    public var startedAt: Date?
    public var kind: EntryKind?
    public var note: String?
    public init(rawSeconds: Int? = nil, startedAt: Date? = nil, kind: EntryKind? = nil, note: String? = nil) {
        self.rawSeconds = rawSeconds
        self.startedAt = startedAt
        self.kind = kind
        self.note = note
    }
}

extension LedgerStore {
    /// GLPI's solved (5) and closed (6) statuses: changing time on such a ticket needs a reason.
    static let finishedStatuses: Set<Int> = [5, 6]

    /// Edits an entry: the entry, the balance, one audit record per changed field and the helpdesk update, in one transaction.
    public func editEntry(key: String, change: EntryChange, reason: String, actor: String, actingAs technician: Int?,
                          contracts: [Contract], now: Date) async throws -> WorkEntry {
        try Self.check(seconds: change.rawSeconds, start: change.startedAt, note: change.note, now: now)
        return try await writer.write { db in
            let (row, old) = try Self.ownEntry(db, key: key, actingAs: technician, reason: reason)
            let contract = (row["contract_id"] as String?).flatMap { id in contracts.first { $0.id == id } }
            var new = old
            new.rawSeconds = change.rawSeconds ?? old.rawSeconds
            new.workedAt = change.startedAt ?? old.workedAt
            new.kind = change.kind ?? old.kind
            new.note = change.note ?? old.note
            new.periodKey = contract?.period(containing: new.workedAt)?.key
            new.billedSeconds = contract?.rounding.billedSeconds(forRaw: new.rawSeconds) ?? new.rawSeconds
            new.rounding = contract?.rounding.description ?? RoundingPolicy.none.description
            // Editing a rejected entry resubmits it for approval; on a contract that requires approval, so does
            // changing an approved entry's time, day or kind: what was approved is not what it now says.
            if old.approval == .rejected { new.approval = .pending }
            let counted = new.rawSeconds != old.rawSeconds || new.workedAt != old.workedAt || new.kind != old.kind
            if old.approval == .approved, counted, contract?.approvalRequired == true { new.approval = .pending }
            let fields: [(String, String, String)] = [
                ("approval", old.approval.rawValue, new.approval.rawValue),
                ("duration_seconds", "\(old.rawSeconds)", "\(new.rawSeconds)"),
                ("started_at", ISO8601DateFormatter().string(from: old.workedAt), ISO8601DateFormatter().string(from: new.workedAt)),
                ("kind", old.kind.rawValue, new.kind.rawValue),
                ("note", old.note, new.note),
            ].filter { $0.1 != $0.2 }
            guard !fields.isEmpty else { return old }
            var deltas = BalanceDeltas()
            deltas.remove(row)
            deltas.add(contract: contract, period: contract?.period(containing: new.workedAt), billed: new.billedSeconds, raw: new.rawSeconds,
                       kind: new.kind.rawValue, approval: new.approval.rawValue)
            try db.execute(sql: """
                UPDATE entry SET raw_seconds = ?, billed_seconds = ?, rounding = ?, worked_at = ?, period_key = ?, kind = ?, note = ?,
                    content = ?, approval = ?, updated_at = ? WHERE entry_key = ?
                """, arguments: [new.rawSeconds, new.billedSeconds, new.rounding, Int(new.workedAt.timeIntervalSince1970), new.periodKey,
                                 new.kind.rawValue, new.note, new.note, new.approval.rawValue, Int(now.timeIntervalSince1970), key])
            try deltas.apply(db)
            for (field, before, after) in fields {
                try Self.audit(db, now: now, actor: actor, entry: old, field: field, old: before, new: after, reason: reason)
            }
            if new.approval == .approved {
                try Self.enqueue(db, action: .update, entry: new, payload: WriteBack(
                    seconds: new.billedSeconds, content: Self.writeBackText(new, contract: contract), technician: new.technician, date: new.workedAt,
                    glpiTaskID: new.glpiTaskID, previous: Self.summary(old, contract: contract), reason: reason), now: now)
            }
            return new
        }
    }

    /// Deletes an entry, audits it and queues the deletion of its helpdesk task.
    public func deleteEntry(key: String, reason: String, actor: String, actingAs technician: Int?, contracts: [Contract] = [], now: Date) async throws {
        try await writer.write { db in
            let (row, old) = try Self.ownEntry(db, key: key, actingAs: technician, reason: reason)
            var deltas = BalanceDeltas()
            deltas.remove(row)
            try db.execute(sql: "DELETE FROM entry WHERE entry_key = ?", arguments: [key])
            try deltas.apply(db)
            try Self.audit(db, now: now, actor: actor, entry: old, field: "deleted", old: "\(old.rawSeconds) s", new: nil, reason: reason)
            // Only an approved entry was ever written back. A create that has certainly not reached the helpdesk
            // (never sent, or refused) is cancelled instead of being followed by a withdrawal.
            if old.approval == .approved {
                let create = try Row.fetchOne(db, sql: "SELECT id, in_doubt_since FROM outbox WHERE entry_key = ? AND action = 'create' AND done_at IS NULL",
                                              arguments: [key])
                if let create, (create["in_doubt_since"] as Int?) == nil {
                    try Self.cancel(db, entryKey: key, from: create["id"], resolution: .cancelled, now: now)
                } else {
                    let contract = old.contractID.flatMap { id in contracts.first { $0.id == id } }
                    try Self.enqueue(db, action: .delete, entry: old, payload: WriteBack(
                        seconds: 0, content: "", technician: old.technician, date: old.workedAt, glpiTaskID: old.glpiTaskID,
                        previous: Self.summary(old, contract: contract), reason: reason), now: now)
                }
            }
        }
    }

    /// A manager approves (the entry counts and is written back) or rejects (it stays out, with the note) a pending entry.
    public func review(key: String, approve: Bool, note: String, actor: String, contracts: [Contract], now: Date) async throws -> WorkEntry {
        if !approve, note.trimmingCharacters(in: .whitespaces).isEmpty {
            throw WorkLogError(code: .invalid, field: "note", message: "a rejection needs a note for the technician")
        }
        return try await writer.write { db in
            let (row, old) = try Self.ownEntry(db, key: key, actingAs: nil, reason: note.isEmpty ? "approved" : note)
            guard old.approval == .pending else {
                throw WorkLogError(code: .transition, field: "key", message: "entry \(key) is \(old.approval.rawValue), not pending")
            }
            var new = old
            new.approval = approve ? .approved : .rejected
            try db.execute(sql: "UPDATE entry SET approval = ?, updated_at = ? WHERE entry_key = ?",
                           arguments: [new.approval.rawValue, Int(now.timeIntervalSince1970), key])
            let contract = old.contractID.flatMap { id in contracts.first { $0.id == id } }
            if approve {
                var deltas = BalanceDeltas()
                deltas.add(contract: contract, period: contract?.period(containing: old.workedAt), billed: old.billedSeconds, raw: old.rawSeconds,
                           kind: old.kind.rawValue, approval: Approval.approved.rawValue)
                try deltas.apply(db)
                // An entry approved before and sent back by an edit is already in the helpdesk: it is updated, not written again.
                let written = try Bool.fetchOne(db, sql: "SELECT 1 FROM outbox WHERE entry_key = ? AND action = 'create'", arguments: [key]) ?? false
                if written {
                    try Self.enqueue(db, action: .update, entry: new, payload: WriteBack(
                        seconds: new.billedSeconds, content: Self.writeBackText(new, contract: contract), technician: new.technician, date: new.workedAt,
                        glpiTaskID: new.glpiTaskID, reason: note.isEmpty ? "approved again after an edit" : note), now: now)
                } else {
                    try Self.enqueueCreate(db, new, contract: contract, category: row["task_category"], now: now)
                }
            }
            _ = row
            try Self.audit(db, now: now, actor: actor, entry: old, field: "approval", old: old.approval.rawValue, new: new.approval.rawValue, reason: note)
            return new
        }
    }

    public func pendingEntries(contractID: String? = nil) throws -> [WorkEntry] {
        try workEntries(contractID: contractID).filter { $0.approval == .pending }
    }

    public func auditTrail(ticketID: Int? = nil, contractID: String? = nil) throws -> [AuditRecord] {
        try writer.read { db in
            var clauses: [String] = []
            var arguments: [any DatabaseValueConvertible] = []
            if let ticketID { clauses.append("ticket_id = ?"); arguments.append(ticketID) }
            if let contractID { clauses.append("contract_id = ?"); arguments.append(contractID) }
            let filter = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
            return try Row.fetchAll(db, sql: "SELECT * FROM audit \(filter) ORDER BY id", arguments: StatementArguments(arguments)).map {
                AuditRecord(at: Date(timeIntervalSince1970: TimeInterval($0["at"] as Int)), actor: $0["actor"], entryKey: $0["entry_key"],
                            ticketID: $0["ticket_id"], contractID: $0["contract_id"], field: $0["field"], oldValue: $0["old_value"],
                            newValue: $0["new_value"], reason: $0["reason"])
            }
        }
    }

    /// The current helpdesk task id of an entry, as the outbox needs it when an update or delete is delivered.
    public func glpiTaskID(entryKey: String) throws -> Int? {
        try writer.read { db in try Int.fetchOne(db, sql: "SELECT glpi_task_id FROM entry WHERE entry_key = ?", arguments: [entryKey]) }
    }

    /// Time can be logged only on a ticket the ledger has synced and the helpdesk still has.
    static func requireLiveTicket(_ db: Database, _ ticketID: Int) throws {
        guard try Bool.fetchOne(db, sql: "SELECT 1 FROM ticket WHERE id = ?", arguments: [ticketID]) ?? false else {
            throw WorkLogError(code: .unknownTicket, field: "ticket", message: "ticket \(ticketID) is not known to HourLedger (not synced from the helpdesk)")
        }
        if let removal = try removal(db, ticket: ticketID) {
            throw WorkLogError(code: .unknownTicket, field: "ticket", message: "ticket \(ticketID) was \(removal.reason): no time can be logged on it")
        }
    }

    /// The bounds of what a person may log, whichever door it comes through (API, CLI): refused with the field named.
    static func check(seconds: Int?, start: Date?, note: String?, now: Date) throws {
        if let seconds, let problem = Bounds.checkEntrySeconds(seconds) {
            throw WorkLogError(code: .invalid, field: "duration_seconds", message: "duration_seconds \(problem)")
        }
        if let start, let problem = Bounds.checkEntryStart(start, now: now) {
            throw WorkLogError(code: .invalid, field: "started_at", message: "started_at \(problem)")
        }
        if let note, let problem = TextRules.controlCharacterProblem(note) {
            throw WorkLogError(code: .invalid, field: "note", message: "note \(problem)")
        }
    }

    static func ownEntry(_ db: Database, key: String, actingAs technician: Int?, reason: String) throws -> (Row, WorkEntry) {
        guard let row = try Row.fetchOne(db, sql: """
            SELECT e.*, t.status AS ticket_status FROM entry e JOIN ticket t ON t.id = e.ticket_id WHERE e.entry_key = ? AND e.source = ?
            """, arguments: [key, EntrySource.hourledger]) else {
            throw WorkLogError(code: .unknownEntry, field: "key", message: "no HourLedger entry with key \(key)")
        }
        if let technician, row["technician"] as Int != technician {
            throw WorkLogError(code: .notYours, field: "key", message: "entry \(key) belongs to technician \(row["technician"] as Int)")
        }
        if finishedStatuses.contains(row["ticket_status"]), reason.trimmingCharacters(in: .whitespaces).isEmpty {
            throw WorkLogError(code: .invalid, field: "reason", message: "ticket \(row["ticket_id"] as Int) is solved or closed: give a reason")
        }
        let entry = WorkEntry(id: row["id"], key: key, ticketID: row["ticket_id"], contractID: row["contract_id"], periodKey: row["period_key"],
                              workedAt: Date(timeIntervalSince1970: TimeInterval(row["worked_at"] as Int)), rawSeconds: row["raw_seconds"],
                              billedSeconds: row["billed_seconds"], rounding: row["rounding"], technician: row["technician"],
                              kind: EntryKind(rawValue: row["kind"]) ?? .billable, note: row["note"], glpiTaskID: row["glpi_task_id"],
                              approval: Approval(rawValue: row["approval"]) ?? .approved)
        return (row, entry)
    }

    static func audit(_ db: Database, now: Date, actor: String, entry: WorkEntry, field: String, old: String?, new: String?, reason: String) throws {
        try db.execute(sql: """
            INSERT INTO audit(at, actor, entry_key, ticket_id, contract_id, field, old_value, new_value, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [Int(now.timeIntervalSince1970), actor, entry.key, entry.ticketID, entry.contractID, field, old, new, reason])
    }

    static func enqueue(_ db: Database, action: OutboxItem.Action, entry: WorkEntry, payload: WriteBack, now: Date) throws {
        try db.execute(sql: """
            INSERT INTO outbox(entry_key, action, ticket_id, payload, attempts, next_attempt_at, created_at) VALUES (?, ?, ?, ?, 0, ?, ?)
            """, arguments: [entry.key, action.rawValue, entry.ticketID, try json(payload), Int(now.timeIntervalSince1970), Int(now.timeIntervalSince1970)])
    }
}
