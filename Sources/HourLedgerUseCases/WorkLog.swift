import Foundation
import HourLedgerCore

/// Why a use case refused a request: a code the HTTP layer maps to a status, the field it is about, and words for people.
public struct LedgerError: Error, Equatable, CustomStringConvertible, Sendable {
    public enum Code: Equatable, Sendable { case unknownTicket, unknownTimer, unknownEntry, unknownContract, unknownTopUp, notYours, transition, invalid }
    public let code: Code
    /// The request field the problem is about.
    public let field: String
    public let message: String
    public var description: String { message }

    public init(code: Code, field: String, message: String) {
        self.code = code
        self.field = field
        self.message = message
    }
}

// MARK: Timers

extension Ledger {
    /// Starts a timer, or returns the one already open for this technician and ticket (`created == false`).
    public func startTimer(technician: Int, ticketID: Int, now: Date? = nil) async throws -> (timer: TimerRecord, created: Bool) {
        let now = now ?? clock.now()
        return try await write { tx in
            try Self.requireLiveTicket(tx, ticketID)
            if let open = try tx.openTimer(technician: technician, ticketID: ticketID) { return (open, false) }
            var timer = TimerRecord(id: 0, technician: technician, ticketID: ticketID, state: .started(at: now), startedAt: now, entryID: nil)
            timer.id = try tx.insertTimer(timer, at: now)
            return (timer, true)
        }
    }

    /// Applies one transition atomically; `stop` also writes the entry and its outbox record in the same transaction.
    public func timerTransition(id: Int64, actingAs technician: Int?, action: TimerAction, kind: EntryKind? = nil, note: String = "",
                                category: Int? = nil, actor: String, now: Date? = nil) async throws -> (timer: TimerRecord, entry: WorkEntry?) {
        let now = now ?? clock.now()
        let book = book
        let result = try await write { tx -> (TimerRecord, WorkEntry?) in
            guard var timer = try tx.timer(id: id) else {
                throw LedgerError(code: .unknownTimer, field: "id", message: "no timer \(id)")
            }
            if let technician, timer.technician != technician {
                throw LedgerError(code: .notYours, field: "id", message: "timer \(id) belongs to technician \(timer.technician)")
            }
            do {
                switch action {
                case .pause: timer.state = try timer.state.pause(at: now)
                case .resume: timer.state = try timer.state.resume(at: now)
                case .stop: timer.state = try timer.state.stop(at: now)
                }
            } catch {
                throw LedgerError(code: .transition, field: "action", message: "\(error)")
            }
            var entry: WorkEntry?
            if action == .stop {
                entry = try Self.insertEntry(tx, NewEntry(ticketID: timer.ticketID, technician: timer.technician, startedAt: timer.startedAt,
                                                         rawSeconds: timer.state.elapsedSeconds(at: now), kind: kind ?? .billable, note: note,
                                                         createdBy: actor, category: category), book: book, now: now)
                timer.entryID = entry?.id
            }
            try tx.updateTimer(timer, at: now)
            return (timer, entry)
        }
        if result.1 != nil { await afterWrite(queued: result.1?.approval == .approved, now: now) }
        return result
    }

    /// Pauses and flags every timer that has run longer than the cap in one stretch.
    @discardableResult
    public func applyTimerCap(maxRunningSeconds: Int, now: Date? = nil) async throws -> [TimerRecord] {
        let now = now ?? clock.now()
        return try await write { tx in
            var capped: [TimerRecord] = []
            for var timer in try tx.runningTimers() {
                guard let next = timer.state.applyingCap(maxRunningSeconds: maxRunningSeconds, at: now) else { continue }
                timer.state = next
                try tx.updateTimer(timer, at: now)
                capped.append(timer)
            }
            return capped
        }
    }

    public func timers(technician: Int? = nil, openOnly: Bool) throws -> [TimerRecord] {
        try read { try $0.timers(technician: technician, openOnly: openOnly) }
    }
}

// MARK: Entries

extension Ledger {
    /// Logs time after the fact; it goes through the same rounding and write-back as a timer.
    public func addEntry(_ entry: NewEntry, now: Date? = nil) async throws -> WorkEntry {
        let now = now ?? clock.now()
        try Self.check(seconds: entry.rawSeconds, start: entry.startedAt, note: entry.note, now: now)
        let book = book
        let work = try await write { tx in try Self.insertEntry(tx, entry, book: book, now: now) }
        await afterWrite(queued: work.approval == .approved, now: now)
        return work
    }

    static func insertEntry(_ tx: any LedgerWriter, _ new: NewEntry, book: ContractBook, now: Date) throws -> WorkEntry {
        let ticket = try requireLiveTicket(tx, new.ticketID)
        let contract = book.contract(ticket.contractID)
        let placement = EntryPlacement.place(rawSeconds: new.rawSeconds, workedAt: new.startedAt, kind: new.kind, on: contract, occasion: .logged)
        var entry = LedgerEntry(source: .hourledger, ticketID: new.ticketID, contractID: nil, periodKey: nil, workedAt: new.startedAt,
                                rawSeconds: new.rawSeconds, billedSeconds: 0, rounding: "", technician: new.technician, isPrivate: true,
                                content: new.note, updatedAt: now, kind: new.kind, key: UUID().uuidString.lowercased(), note: new.note,
                                createdBy: new.createdBy, taskCategory: new.category)
        entry.place(placement)
        entry.id = try tx.insertEntry(entry)
        entry.sourceID = Int(entry.id)
        var deltas = BalanceDeltas()
        deltas.add(placement, rawSeconds: new.rawSeconds, contract: contract)
        try Self.apply(deltas, tx)
        let work = WorkEntry(entry)!
        // An entry waiting for approval is written back once approved.
        if work.approval == .approved { try Self.enqueueCreate(tx, work, contract: contract, category: new.category, now: now) }
        return work
    }

    /// Edits an entry: the entry, the balance, one audit record per changed field and the helpdesk update, in one transaction.
    public func editEntry(key: String, change: EntryChange, reason: String, actor: String, actingAs technician: Int?,
                          now: Date? = nil) async throws -> WorkEntry {
        let now = now ?? clock.now()
        try Self.check(seconds: change.rawSeconds, start: change.startedAt, note: change.note, now: now)
        let (book, finished) = (book, profile.finishedStatuses)
        let (entry, changed) = try await write { tx -> (WorkEntry, Bool) in
            var stored = try Self.ownEntry(tx, key: key, actingAs: technician, reason: reason, finished: finished)
            let old = WorkEntry(stored)!
            let contract = book.contract(stored.contractID)
            let workedAt = change.startedAt ?? old.workedAt
            let rawSeconds = change.rawSeconds ?? old.rawSeconds
            let kind = change.kind ?? old.kind
            let note = change.note ?? old.note
            let counted = rawSeconds != old.rawSeconds || workedAt != old.workedAt || kind != old.kind
            let placement = EntryPlacement.place(rawSeconds: rawSeconds, workedAt: workedAt, kind: kind, on: contract,
                                                 occasion: .edited(was: old.approval, countedFieldsChanged: counted))
            let iso = ISO8601DateFormatter()
            let fields: [(String, String, String)] = [
                ("approval", old.approval.rawValue, placement.approval.rawValue),
                ("duration_seconds", "\(old.rawSeconds)", "\(rawSeconds)"),
                ("started_at", iso.string(from: old.workedAt), iso.string(from: workedAt)),
                ("kind", old.kind.rawValue, kind.rawValue),
                ("note", old.note, note),
            ].filter { $0.1 != $0.2 }
            guard !fields.isEmpty else { return (old, false) }
            var deltas = BalanceDeltas()
            deltas.remove(stored)
            stored.rawSeconds = rawSeconds
            stored.workedAt = workedAt
            stored.kind = kind
            stored.note = note
            stored.content = note
            stored.updatedAt = now
            stored.place(placement)
            deltas.add(placement, rawSeconds: rawSeconds, contract: contract)
            try tx.updateEntry(stored)
            try Self.apply(deltas, tx)
            for (field, before, after) in fields {
                try tx.insertAudit(AuditRecord(at: now, actor: actor, entryKey: key, ticketID: old.ticketID, contractID: old.contractID,
                                               field: field, oldValue: before, newValue: after, reason: reason))
            }
            let new = WorkEntry(stored)!
            if new.approval == .approved {
                try Self.enqueue(tx, action: .update, entry: new, payload: WriteBack(
                    seconds: new.billedSeconds, text: EntrySummary.line(new, contract: contract), technician: new.technician, date: new.workedAt,
                    remoteTaskID: new.remoteTaskID, previous: EntrySummary.summary(old, contract: contract), reason: reason), now: now)
            }
            return (new, true)
        }
        if changed { await afterWrite(queued: entry.approval == .approved, now: now) }
        return entry
    }

    /// Deletes an entry, audits it and queues the withdrawal of its helpdesk task or note.
    public func deleteEntry(key: String, reason: String, actor: String, actingAs technician: Int?, now: Date? = nil) async throws {
        let now = now ?? clock.now()
        let (book, finished) = (book, profile.finishedStatuses)
        let queued = try await write { tx -> Bool in
            let stored = try Self.ownEntry(tx, key: key, actingAs: technician, reason: reason, finished: finished)
            let old = WorkEntry(stored)!
            var deltas = BalanceDeltas()
            deltas.remove(stored)
            try tx.deleteEntry(id: stored.id)
            try Self.apply(deltas, tx)
            try tx.insertAudit(AuditRecord(at: now, actor: actor, entryKey: key, ticketID: old.ticketID, contractID: old.contractID,
                                           field: "deleted", oldValue: "\(old.rawSeconds) s", newValue: nil, reason: reason))
            // Only an approved entry was ever written back. A create that has certainly not reached the helpdesk
            // (never sent, or refused) is cancelled instead of being followed by a withdrawal.
            guard old.approval == .approved else { return false }
            let records = try tx.outboxItems(entryKey: key)
            if let create = records.first(where: { $0.action == .create && $0.isPending }), create.inDoubtSince == nil {
                try Self.cancel(tx, entryKey: key, from: create.id, resolution: .cancelled, now: now)
                return false
            }
            try Self.enqueue(tx, action: .delete, entry: old, payload: WriteBack(
                seconds: 0, text: "", technician: old.technician, date: old.workedAt, remoteTaskID: old.remoteTaskID,
                previous: EntrySummary.summary(old, contract: book.contract(old.contractID)), reason: reason), now: now)
            return true
        }
        await afterWrite(queued: queued, now: now)
    }

    /// A manager approves (the entry counts and is written back) or rejects (it stays out, with the note) a pending entry.
    public func review(key: String, approve: Bool, note: String, actor: String, now: Date? = nil) async throws -> WorkEntry {
        if !approve, note.trimmingCharacters(in: .whitespaces).isEmpty {
            throw LedgerError(code: .invalid, field: "note", message: "a rejection needs a note for the technician")
        }
        let now = now ?? clock.now()
        let (book, finished) = (book, profile.finishedStatuses)
        let entry = try await write { tx -> WorkEntry in
            var stored = try Self.ownEntry(tx, key: key, actingAs: nil, reason: note.isEmpty ? "approved" : note, finished: finished)
            let old = WorkEntry(stored)!
            guard old.approval == .pending else {
                throw LedgerError(code: .transition, field: "key", message: "entry \(key) is \(old.approval.rawValue), not pending")
            }
            stored.approval = approve ? .approved : .rejected
            stored.updatedAt = now
            try tx.updateEntry(stored)
            let new = WorkEntry(stored)!
            let contract = book.contract(old.contractID)
            if approve {
                // The entry now counts as it stands: its billed seconds as stored, in the period holding its day.
                var placement = EntryPlacement.place(rawSeconds: old.rawSeconds, workedAt: old.workedAt, kind: old.kind, on: contract,
                                                     occasion: .moved(.approved))
                placement.billedSeconds = old.billedSeconds
                var deltas = BalanceDeltas()
                deltas.add(placement, rawSeconds: old.rawSeconds, contract: contract)
                try Self.apply(deltas, tx)
                // An entry approved before and sent back by an edit is already in the helpdesk: it is updated, not written again.
                if try tx.outboxItems(entryKey: key).contains(where: { $0.action == .create }) {
                    try Self.enqueue(tx, action: .update, entry: new, payload: WriteBack(
                        seconds: new.billedSeconds, text: EntrySummary.line(new, contract: contract), technician: new.technician, date: new.workedAt,
                        remoteTaskID: new.remoteTaskID, reason: note.isEmpty ? "approved again after an edit" : note), now: now)
                } else {
                    try Self.enqueueCreate(tx, new, contract: contract, category: stored.taskCategory, now: now)
                }
            }
            try tx.insertAudit(AuditRecord(at: now, actor: actor, entryKey: key, ticketID: old.ticketID, contractID: old.contractID,
                                           field: "approval", oldValue: old.approval.rawValue, newValue: new.approval.rawValue, reason: note))
            return new
        }
        await afterWrite(queued: approve, now: now)
        return entry
    }

    public func workEntries(ticketID: Int? = nil, contractID: String? = nil) throws -> [WorkEntry] {
        try read { try $0.ownEntries(ticketID: ticketID, contractID: contractID) }.compactMap(WorkEntry.init)
    }

    /// One technician's entries worked in [from, to), helpdesk tasks and HourLedger's own alike.
    public func entries(technician: Int, from: Date, to: Date) throws -> [LedgerEntry] {
        try read { try $0.entries(technician: technician, from: from, to: to) }
    }

    public func pendingEntries(contractID: String? = nil) throws -> [WorkEntry] {
        try workEntries(contractID: contractID).filter { $0.approval == .pending }
    }

    public func auditTrail(ticketID: Int? = nil, contractID: String? = nil) throws -> [AuditRecord] {
        try read { try $0.auditTrail(ticketID: ticketID, contractID: contractID) }
    }
}

// MARK: Shared steps

extension Ledger {
    /// After a commit: settle what changed, and wake the outbox worker when a write-back was queued. A failed settle
    /// is caught up by the rollover tick.
    func afterWrite(queued: Bool, now: Date) async {
        if queued { outboxQueued.signal() }
        _ = try? await settle(now: now)
    }

    /// Time can be logged only on a ticket the ledger has synced and the helpdesk still has.
    @discardableResult
    static func requireLiveTicket(_ tx: any LedgerReader, _ ticketID: Int) throws -> StoredTicket {
        guard let ticket = try tx.ticket(ticketID) else {
            throw LedgerError(code: .unknownTicket, field: "ticket", message: "ticket \(ticketID) is not known to HourLedger (not synced from the helpdesk)")
        }
        if let removal = ticket.removed {
            throw LedgerError(code: .unknownTicket, field: "ticket", message: "ticket \(ticketID) was \(removal.reason): no time can be logged on it")
        }
        return ticket
    }

    /// The bounds of what a person may log, whichever door it comes through (API, CLI): refused with the field named.
    static func check(seconds: Int?, start: Date?, note: String?, now: Date) throws {
        if let seconds, let problem = Bounds.checkEntrySeconds(seconds) {
            throw LedgerError(code: .invalid, field: "duration_seconds", message: "duration_seconds \(problem)")
        }
        if let start, let problem = Bounds.checkEntryStart(start, now: now) {
            throw LedgerError(code: .invalid, field: "started_at", message: "started_at \(problem)")
        }
        if let note, let problem = TextRules.controlCharacterProblem(note) {
            throw LedgerError(code: .invalid, field: "note", message: "note \(problem)")
        }
    }

    /// One of HourLedger's entries, if `technician` (nil: a manager) may change it; a finished ticket needs a reason.
    static func ownEntry(_ tx: any LedgerReader, key: String, actingAs technician: Int?, reason: String, finished: Set<Int>) throws -> LedgerEntry {
        guard let entry = try tx.entry(key: key), entry.source == .hourledger, let ticket = try tx.ticket(entry.ticketID) else {
            throw LedgerError(code: .unknownEntry, field: "key", message: "no HourLedger entry with key \(key)")
        }
        if let technician, entry.technician != technician {
            throw LedgerError(code: .notYours, field: "key", message: "entry \(key) belongs to technician \(entry.technician)")
        }
        if finished.contains(ticket.facts.status), reason.trimmingCharacters(in: .whitespaces).isEmpty {
            throw LedgerError(code: .invalid, field: "reason", message: "ticket \(entry.ticketID) is solved or closed: give a reason")
        }
        return entry
    }

    static func apply(_ deltas: BalanceDeltas, _ tx: any LedgerWriter) throws {
        for change in deltas.effective { try tx.applyBalanceChange(change) }
        for contractID in deltas.touched { try tx.markUnsettled(contractID: contractID) }
    }

    static func enqueueCreate(_ tx: any LedgerWriter, _ work: WorkEntry, contract: Contract?, category: Int?, now: Date) throws {
        try Self.enqueue(tx, action: .create, entry: work, payload: WriteBack(
            seconds: work.billedSeconds, text: EntrySummary.line(work, contract: contract), technician: work.technician, date: work.workedAt,
            category: category), now: now)
    }

    static func enqueue(_ tx: any LedgerWriter, action: OutboxItem.Action, entry: WorkEntry, payload: WriteBack, now: Date) throws {
        _ = try tx.insertOutboxItem(OutboxItem(entryKey: entry.key, action: action, ticketID: entry.ticketID, payload: payload,
                                               nextAttemptAt: now, createdAt: now))
    }

    /// Ends a create and every later record of its entry, since there is nothing left to write, correct or withdraw.
    static func cancel(_ tx: any LedgerWriter, entryKey: String, from id: Int64, resolution: OutboxItem.Resolution, now: Date) throws {
        for var item in try tx.outboxItems(entryKey: entryKey) where item.id >= id && item.isPending {
            item.doneAt = now
            item.resolution = resolution
            item.inDoubtSince = nil
            try tx.updateOutboxItem(item)
        }
    }
}
