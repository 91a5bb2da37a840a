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

    public init(ticketID: Int, technician: Int, startedAt: Date, rawSeconds: Int, kind: EntryKind, note: String, createdBy: String) {
        self.ticketID = ticketID
        self.technician = technician
        self.startedAt = startedAt
        self.rawSeconds = rawSeconds
        self.kind = kind
        self.note = note
        self.createdBy = createdBy
    }
}

/// One pending write to the helpdesk.
public struct OutboxItem: Sendable, Equatable, Codable {
    public enum Action: String, Sendable, Codable { case create, update, delete }
    public var id: Int64
    public var entryKey: String
    public var action: Action
    public var ticketID: Int
    public var payload: WriteBack
    public var attempts: Int
    public var nextAttemptAt: Date
    public var lastError: String?
}

/// The task to write in the helpdesk for an entry.
public struct WriteBack: Sendable, Equatable, Codable {
    public var seconds: Int
    public var content: String
    public var technician: Int
    public var date: Date
    public var glpiTaskID: Int?
}

public struct WorkLogError: Error, Equatable, CustomStringConvertible, Sendable {
    public enum Code: Equatable, Sendable { case unknownTicket, unknownTimer, notYours, transition, invalid }
    public let code: Code
    /// The request field the problem is about.
    public let field: String
    public let message: String
    public var description: String { message }
}

public struct OutboxStats: Sendable, Codable, Equatable {
    public var depth: Int
    public var oldestAgeSeconds: Int?
    public var lastError: String?
    enum CodingKeys: String, CodingKey {
        case depth
        case oldestAgeSeconds = "oldest_age_seconds", lastError = "last_error"
    }
}

extension LedgerStore {
    // MARK: Timers

    /// Starts a timer, or returns the one already open for this technician and ticket (`created == false`).
    public func startTimer(technician: Int, ticketID: Int, now: Date) async throws -> (timer: TimerRecord, created: Bool) {
        try await writer.write { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM ticket WHERE id = ?", arguments: [ticketID]) ?? false else {
                throw WorkLogError(code: .unknownTicket, field: "ticket", message: "ticket \(ticketID) is not known to HourLedger (not synced from the helpdesk)")
            }
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
        kind: EntryKind? = nil, note: String = "", actor: String
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
                                                          createdBy: actor), contracts: contracts, now: now)
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
        guard entry.rawSeconds >= 0 else {
            throw WorkLogError(code: .invalid, field: "duration_seconds", message: "duration must not be negative")
        }
        return try await writer.write { db in try Self.insertEntry(db, entry, contracts: contracts, now: now) }
    }

    static func insertEntry(_ db: Database, _ entry: NewEntry, contracts: [Contract], now: Date) throws -> WorkEntry {
        guard let ticket = try Row.fetchOne(db, sql: "SELECT contract_id, name FROM ticket WHERE id = ?", arguments: [entry.ticketID]) else {
            throw WorkLogError(code: .unknownTicket, field: "ticket", message: "ticket \(entry.ticketID) is not known to HourLedger (not synced from the helpdesk)")
        }
        let contract = (ticket["contract_id"] as String?).flatMap { id in contracts.first { $0.id == id } }
        let period = contract?.period(containing: entry.startedAt)
        let billed = contract?.rounding.billedSeconds(forRaw: entry.rawSeconds) ?? entry.rawSeconds
        let rounding = contract?.rounding.description ?? RoundingPolicy.none.description
        let key = UUID().uuidString.lowercased()
        let workedAt = Int(entry.startedAt.timeIntervalSince1970)
        try db.execute(sql: """
            INSERT INTO entry(source, source_id, ticket_id, contract_id, period_key, worked_at, raw_seconds, billed_seconds, rounding,
                technician, is_private, content, updated_at, kind, entry_key, note, created_by)
            VALUES (?, 0, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)
            """, arguments: [EntrySource.hourledger, entry.ticketID, contract?.id, period?.key, workedAt, entry.rawSeconds, billed, rounding,
                             entry.technician, entry.note, Int(now.timeIntervalSince1970), entry.kind.rawValue, key, entry.note, entry.createdBy])
        let id = db.lastInsertedRowID
        // source_id mirrors the row id, keeping (source, source_id) unique for HourLedger's own entries.
        try db.execute(sql: "UPDATE entry SET source_id = id WHERE id = ?", arguments: [id])
        if let contract, let period, entry.kind.drawsFromBalance {
            try db.execute(sql: """
                INSERT INTO balance(contract_id, period_key, period_start, period_end, quota_seconds, used_seconds, raw_seconds, entry_count)
                VALUES (?, ?, ?, ?, ?, ?, ?, 1)
                ON CONFLICT(contract_id, period_key) DO UPDATE SET used_seconds = used_seconds + excluded.used_seconds,
                    raw_seconds = raw_seconds + excluded.raw_seconds, entry_count = entry_count + 1
                """, arguments: [contract.id, period.key, Int(period.start.timeIntervalSince1970), period.end.map { Int($0.timeIntervalSince1970) },
                                 contract.quotaSeconds, billed, entry.rawSeconds])
        }
        let work = WorkEntry(id: id, key: key, ticketID: entry.ticketID, contractID: contract?.id, periodKey: period?.key,
                             workedAt: entry.startedAt, rawSeconds: entry.rawSeconds, billedSeconds: billed, rounding: rounding,
                             technician: entry.technician, kind: entry.kind, note: entry.note, glpiTaskID: nil)
        let payload = WriteBack(seconds: billed, content: writeBackText(work, contract: contract), technician: entry.technician,
                                date: entry.startedAt, glpiTaskID: nil)
        try db.execute(sql: """
            INSERT INTO outbox(entry_key, action, ticket_id, payload, attempts, next_attempt_at, created_at) VALUES (?, 'create', ?, ?, 0, ?, ?)
            """, arguments: [key, entry.ticketID, try json(payload), Int(now.timeIntervalSince1970), Int(now.timeIntervalSince1970)])
        return work
    }

    /// The private task's text: what, how long, which contract, and the key that lets HourLedger find it again.
    static func writeBackText(_ entry: WorkEntry, contract: Contract?) -> String {
        func clock(_ seconds: Int) -> String { String(format: "%d:%02d", seconds / 3600, seconds % 3600 / 60) }
        var text = "\(EntrySource.marker(entry.key)) \(clock(entry.billedSeconds)) h \(entry.kind.rawValue)"
        if entry.billedSeconds != entry.rawSeconds { text += " (\(clock(entry.rawSeconds)) worked, rounded \(entry.rounding))" }
        text += contract.map { " on contract \($0.name) (\($0.id))" } ?? " (no contract matched)"
        if !entry.note.isEmpty { text += ": " + entry.note }
        return "<p>" + text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;") + "</p>"
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
                          kind: EntryKind(rawValue: row["kind"]) ?? .billable, note: row["note"], glpiTaskID: row["glpi_task_id"])
            }
        }
    }

    // MARK: Outbox

    /// The oldest undelivered write, if it is due: the outbox drains strictly in order.
    public func nextOutboxItem(now: Date) throws -> (item: OutboxItem, due: Bool)? {
        try writer.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM outbox WHERE done_at IS NULL ORDER BY id LIMIT 1") else { return nil }
            let item = OutboxItem(id: row["id"], entryKey: row["entry_key"], action: OutboxItem.Action(rawValue: row["action"]) ?? .create,
                                  ticketID: row["ticket_id"],
                                  payload: try JSONDecoder().decode(WriteBack.self, from: Data((row["payload"] as String).utf8)),
                                  attempts: row["attempts"], nextAttemptAt: Date(timeIntervalSince1970: TimeInterval(row["next_attempt_at"] as Int)),
                                  lastError: row["last_error"])
            return (item, item.nextAttemptAt <= now)
        }
    }

    /// Recorded before each delivery, so that after a crash the retry knows the helpdesk may already have the task.
    public func markOutboxAttempt(_ id: Int64) async throws {
        try await writer.write { db in try db.execute(sql: "UPDATE outbox SET attempts = attempts + 1 WHERE id = ?", arguments: [id]) }
    }

    public func completeOutbox(_ item: OutboxItem, glpiTaskID: Int?, now: Date) async throws {
        try await writer.write { db in
            try db.execute(sql: "UPDATE outbox SET done_at = ?, last_error = NULL WHERE id = ?", arguments: [Int(now.timeIntervalSince1970), item.id])
            if item.action == .create, let glpiTaskID {
                try db.execute(sql: "UPDATE entry SET glpi_task_id = ? WHERE entry_key = ?", arguments: [glpiTaskID, item.entryKey])
            }
        }
    }

    public func failOutbox(_ id: Int64, error: String, retryAt: Date) async throws {
        try await writer.write { db in
            try db.execute(sql: "UPDATE outbox SET last_error = ?, next_attempt_at = ? WHERE id = ?",
                           arguments: [error, Int(retryAt.timeIntervalSince1970), id])
        }
    }

    public func outboxStats(now: Date) throws -> OutboxStats {
        try writer.read { db in
            let row = try Row.fetchOne(db, sql: """
                SELECT COUNT(*) AS n, MIN(created_at) AS oldest,
                       (SELECT last_error FROM outbox WHERE done_at IS NULL ORDER BY id LIMIT 1) AS error
                FROM outbox WHERE done_at IS NULL
                """)
            let oldest: Int? = row?["oldest"]
            return OutboxStats(depth: row?["n"] ?? 0, oldestAgeSeconds: oldest.map { Int(now.timeIntervalSince1970) - $0 }, lastError: row?["error"])
        }
    }
}
