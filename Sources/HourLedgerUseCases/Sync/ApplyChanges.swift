import Foundation
import HourLedgerCore

/// One ticket as a poll read it, matched, ready to be applied.
public struct TicketUpdate: Sendable {
    public var ticket: TicketFacts
    public var dateMod: String
    public var match: MatchResult
    /// The complete task list, or nil when the tasks were not re-read.
    public var tasks: [TaskFacts]?
    /// The search's summary of the tasks that `tasks` was read after; kept to skip the next read if it is unchanged.
    public var taskFingerprint: String?
    /// `dateMod` as an instant, when the helpdesk's time zone let it be read: when a ticket seen solved was solved.
    public var changedAt: Date?

    public init(ticket: TicketFacts, dateMod: String, match: MatchResult, tasks: [TaskFacts]?, taskFingerprint: String? = nil,
                changedAt: Date? = nil) {
        self.ticket = ticket
        self.dateMod = dateMod
        self.match = match
        self.tasks = tasks
        self.taskFingerprint = taskFingerprint
        self.changedAt = changedAt
    }
}

extension Ledger {
    /// Applies many tickets in one transaction: one fsync per batch instead of per ticket. For each: the ticket and
    /// its contract link, its entries from the (complete) task list when given, and the balances, together.
    /// `tasks == nil` means the tasks were not re-read: existing entries stay, but follow the ticket's contract.
    public func apply(_ updates: [TicketUpdate], now: Date? = nil) async throws -> [TicketSyncOutcome] {
        let now = now ?? clock.now()
        let book = book
        let finished = profile.finishedStatuses
        let (outcomes, queued) = try await write { tx -> ([TicketSyncOutcome], Bool) in
            let periods = PeriodLookup()
            var queued = false
            // Timers still running on a ticket seen solved or closed are paused; few run at once, so all are read.
            var running = updates.contains { finished.contains($0.ticket.status) } ? Dictionary(grouping: try tx.runningTimers(), by: \.ticketID) : [:]
            // What the batch's tickets hold is read in two queries rather than two per ticket; a ticket given twice
            // is read again the second time, after its first update. Balances change once per period for the batch.
            let ids = updates.map(\.ticket.id)
            var stored = try tx.tickets(ids)
            var entries = try tx.entries(ticketIDs: ids)
            var deltas = BalanceDeltas()
            var outcomes: [TicketSyncOutcome] = []
            outcomes.reserveCapacity(updates.count)
            for update in updates {
                let id = update.ticket.id
                let known = entries.removeValue(forKey: id)
                outcomes.append(try Self.apply(update, tx, stored: known == nil ? try tx.ticket(id) : stored.removeValue(forKey: id),
                                               entries: try known ?? tx.entries(ticketID: id), book: book, periods: periods, now: now,
                                               finished: finished, running: &running, deltas: &deltas, queued: &queued))
            }
            try Self.apply(deltas, tx)
            return (outcomes, queued)
        }
        if queued { outboxQueued.signal() }
        for timer in outcomes.flatMap(\.timersPaused) {
            logger.notice("timer paused: its ticket was solved or closed while it ran; its technician should review it",
                          metadata: ["timer": "\(timer.id)", "ticket": "\(timer.ticketID)", "technician": "\(timer.technician)"])
        }
        return outcomes
    }

    /// One ticket of a batch, given what the ledger holds of it; its balance changes are added to `deltas`.
    private static func apply(_ update: TicketUpdate, _ tx: any LedgerWriter, stored: StoredTicket?, entries all: [LedgerEntry],
                              book: ContractBook, periods: PeriodLookup, now: Date, finished: Set<Int>, running: inout [Int: [TimerRecord]],
                              deltas: inout BalanceDeltas, queued: inout Bool) throws -> TicketSyncOutcome {
        var outcome = TicketSyncOutcome()
        let ticket = update.ticket
        let contract = book.contract(update.match.contractID)
        let previousContract = stored?.contractID
        // A ticket read again after it was marked gone is back (restored from the trash, visible again).
        let restored = stored?.removed
        // Solved or closed when the helpdesk last changed it (never later than now); kept while it stays so.
        let closedAt = finished.contains(ticket.status) ? stored?.closedAt ?? min(now, update.changedAt ?? now) : nil
        try tx.saveTicket(StoredTicket(facts: ticket, dateMod: update.dateMod, contractID: contract?.id, matchReason: update.match.reason,
                                       taskFingerprint: update.tasks == nil ? stored?.taskFingerprint : update.taskFingerprint, syncedAt: now,
                                       closedAt: closedAt))
        if closedAt != nil, stored?.closedAt == nil, let contract, contract.alertUntimed { deltas.touch(contract.id) }
        if let closedAt, stored?.closedAt == nil {
            for var timer in running.removeValue(forKey: ticket.id) ?? [] {
                guard let paused = timer.state.pausingForClosedTicket(closedAt: closedAt) else { continue }
                timer.state = paused
                try tx.updateTimer(timer, at: now)
                outcome.timersPaused.append(timer)
            }
        }

        let existing = all.filter { $0.source == .helpdeskTask }
        let own = all.filter { $0.source == .hourledger }
        var existingByTask: [Int: LedgerEntry] = [:]
        for entry in existing { existingByTask[entry.sourceID] = entry }

        // Re-attribution: a ticket whose contract changed takes all its entries along, and the move is recorded.
        if stored != nil, previousContract != contract?.id || restored != nil {
            let reason = restored.map { "back in the helpdesk (it had been \($0 == .trashed ? "in the trash" : "gone")); " } ?? ""
            try tx.insertMove(ContractMove(ticketID: ticket.id, fromContract: previousContract, toContract: contract?.id,
                                           rawSeconds: all.reduce(0) { $0 + $1.rawSeconds }, at: now, reason: reason + update.match.reason))
            outcome.movedFrom = previousContract
            outcome.movedTo = contract?.id
        }

        /// Moves an entry whose own facts did not change to the ticket's current contract. An entry HourLedger wrote
        /// back has its task or note brought up to date: it names the contract, and the new rounding may bill differently.
        func move(_ entry: LedgerEntry) throws {
            var moved = entry
            let placement = EntryPlacement.place(rawSeconds: entry.rawSeconds, workedAt: entry.workedAt, kind: entry.kind, on: contract,
                                                 occasion: .moved(entry.approval), periods: periods)
            deltas.remove(entry)
            moved.place(placement)
            moved.updatedAt = now
            try tx.updateEntry(moved)
            deltas.add(placement, rawSeconds: entry.rawSeconds, contract: contract)
            outcome.entriesUpdated += 1
            guard entry.source == .hourledger, entry.approval == .approved, let key = entry.key, let work = WorkEntry(moved),
                  try tx.outboxItems(entryKey: key).contains(where: { $0.action == .create && $0.resolution != .cancelled })
            else { return }
            try Self.enqueue(tx, action: .update, entry: work, payload: WriteBack(
                seconds: work.billedSeconds, text: EntrySummary.line(work, contract: contract), technician: work.technician, date: work.workedAt,
                remoteTaskID: work.remoteTaskID,
                reason: contract.map { "the ticket now counts on contract \($0.id)" } ?? "the ticket matches no contract any more"), now: now)
            queued = true
        }

        if let tasks = update.tasks {
            // Tasks HourLedger wrote itself are already counted by their entry: recognise them by id or by the key
            // their text carries, and link the entry to its task if the write-back had not recorded it yet.
            var mine = Set<Int>()
            for entry in own {
                guard let key = entry.key else { continue }
                if let taskID = entry.remoteTaskID { mine.insert(taskID); continue }
                if let task = tasks.first(where: { $0.content.contains(EntrySource.marker(key)) }) {
                    mine.insert(task.id)
                    try tx.setRemoteTaskID(task.id, entryKey: key)
                }
            }
            let foreign = tasks.filter { !mine.contains($0.id) }
            let seen = Set(foreign.map(\.id))
            for entry in existing where !seen.contains(entry.sourceID) {
                deltas.remove(entry)
                try tx.deleteEntry(id: entry.id)
                outcome.entriesDeleted += 1
            }
            var added: [LedgerEntry] = []
            for task in foreign {
                let placement = EntryPlacement.place(rawSeconds: task.seconds, workedAt: task.date, kind: .billable, on: contract,
                                                     occasion: .helpdeskTask, periods: periods)
                var wanted = LedgerEntry(source: .helpdeskTask, sourceID: task.id, ticketID: ticket.id, contractID: nil, periodKey: nil,
                                         workedAt: Date(timeIntervalSince1970: TimeInterval(Int(task.date.timeIntervalSince1970))),
                                         rawSeconds: task.seconds, billedSeconds: 0, rounding: "", technician: task.technician,
                                         isPrivate: task.isPrivate, content: task.content, updatedAt: now)
                wanted.place(placement)
                if let stored = existingByTask[task.id] {
                    if Self.sameFacts(stored, wanted) { continue }
                    deltas.remove(stored)
                    wanted.id = stored.id
                    wanted.kind = stored.kind
                    wanted.approval = stored.approval
                    try tx.updateEntry(wanted)
                    outcome.entriesUpdated += 1
                } else {
                    added.append(wanted)
                    outcome.entriesAdded += 1
                }
                deltas.add(placement, rawSeconds: task.seconds, contract: contract)
            }
            try tx.insertEntries(added)
            if previousContract != contract?.id { for entry in own { try move(entry) } }
        } else if previousContract != contract?.id {
            for entry in all { try move(entry) }
        } else if let contract {
            // Same contract, perhaps new terms (a reload, a contract changed in the helpdesk: rounding, dates,
            // period): an entry that would now be placed otherwise is placed again, as a re-read task would be.
            for entry in all {
                var candidate = entry
                candidate.place(EntryPlacement.place(rawSeconds: entry.rawSeconds, workedAt: entry.workedAt, kind: entry.kind, on: contract,
                                                     occasion: .moved(entry.approval), periods: periods))
                if !Self.sameFacts(candidate, entry) { try move(entry) }
            }
        }
        return outcome
    }

    /// An unchanged task leaves its entry untouched.
    static func sameFacts(_ a: LedgerEntry, _ b: LedgerEntry) -> Bool {
        a.contractID == b.contractID && a.periodKey == b.periodKey && Int(a.workedAt.timeIntervalSince1970) == Int(b.workedAt.timeIntervalSince1970)
            && a.rawSeconds == b.rawSeconds && a.billedSeconds == b.billedSeconds && a.rounding == b.rounding && a.technician == b.technician
            && a.isPrivate == b.isPrivate && a.content == b.content
    }

    /// Of tasks the helpdesk says changed, the tickets whose stored entries differ from them in any field the ledger
    /// keeps (seconds, date, technician, privacy, text), or that the ledger has not seen. Tasks HourLedger wrote are
    /// its own entries' and never differ.
    public func ticketsWhoseTasksDiffer(_ tasks: [Int: [TaskFacts]]) throws -> Set<Int> {
        let all = tasks.values.flatMap { $0 }
        guard !all.isEmpty else { return [] }
        let ids = all.map(\.id)
        let (stored, own) = try read { tx in (try tx.helpdeskTaskEntries(taskIDs: ids), try tx.ownTaskIDs(among: ids)) }
        var differ = Set<Int>()
        for task in all where !own.contains(task.id) {
            guard let entry = stored[task.id] else { differ.insert(task.ticketID); continue }
            let same = Int(entry.workedAt.timeIntervalSince1970) == Int(task.date.timeIntervalSince1970) && entry.rawSeconds == task.seconds
                && entry.technician == task.technician && entry.isPrivate == task.isPrivate && entry.content == task.content
            if !same { differ.insert(task.ticketID) }
        }
        return differ
    }

    /// Each ticket's task list as it should now stand in the helpdesk: the tasks its entries were read from, and the
    /// tasks HourLedger wrote for it, overlaid with the tasks the helpdesk says changed since the last poll. Only a
    /// candidate: the caller keeps it when the helpdesk's own summary of the ticket's tasks agrees, and reads the
    /// ticket otherwise (a task was deleted, or was changed before the window the changed tasks cover).
    public func rebuiltTaskLists(_ ticketIDs: [Int], changed: [Int: [TaskFacts]]) throws -> [Int: [TaskFacts]] {
        try read { tx in
            var lists: [Int: [TaskFacts]] = [:]
            for id in ticketIDs {
                var tasks: [Int: TaskFacts] = [:]
                for entry in try tx.entries(ticketID: id) {
                    switch entry.source {
                    case .helpdeskTask:
                        tasks[entry.sourceID] = TaskFacts(id: entry.sourceID, ticketID: id, date: entry.workedAt, seconds: entry.rawSeconds,
                                                          technician: entry.technician, isPrivate: entry.isPrivate, content: entry.content)
                    case .hourledger:
                        // Written as a private task of the billed time on the entry's day (OutboxWorker).
                        guard let taskID = entry.remoteTaskID else { continue }
                        tasks[taskID] = TaskFacts(id: taskID, ticketID: id, date: entry.workedAt, seconds: entry.billedSeconds,
                                                  technician: entry.technician, isPrivate: true, content: entry.note)
                    }
                }
                for task in changed[id] ?? [] { tasks[task.id] = task }
                lists[id] = tasks.keys.sorted().map { tasks[$0]! }
            }
            return lists
        }
    }

    /// Marks tickets that left the helpdesk: each loses its contract, its entries leave the balances, and the move is
    /// recorded with why. Tickets not in the ledger, or already marked, are left alone. Returns the ids marked.
    @discardableResult
    public func markRemoved(_ ids: [Int], as removal: TicketRemoval, now: Date? = nil) async throws -> [Int] {
        guard !ids.isEmpty else { return [] }
        let now = now ?? clock.now()
        return try await write { tx in
            var marked: [Int] = []
            for id in Set(ids).sorted() {
                guard var ticket = try tx.ticket(id), ticket.removed == nil else { continue }
                let previous = ticket.contractID
                ticket.removed = removal
                ticket.removedAt = now
                ticket.contractID = nil
                ticket.matchReason = removal.reason
                try tx.saveTicket(ticket)
                var deltas = BalanceDeltas()
                var moved = 0
                for var entry in try tx.entries(ticketID: id) {
                    deltas.remove(entry)
                    moved += entry.rawSeconds
                    entry.place(EntryPlacement.place(rawSeconds: entry.rawSeconds, workedAt: entry.workedAt, kind: entry.kind, on: nil,
                                                     occasion: .moved(entry.approval)))
                    entry.updatedAt = now
                    try tx.updateEntry(entry)
                }
                try Self.apply(deltas, tx)
                try tx.insertMove(ContractMove(ticketID: id, fromContract: previous, toContract: nil, rawSeconds: moved, at: now, reason: removal.reason))
                marked.append(id)
            }
            return marked
        }
    }

    public func liveTicketIDs() throws -> Set<Int> { try read { try $0.liveTicketIDs() } }

    /// Every stored ticket still in the helpdesk, for matching again after the contracts changed.
    public func liveTickets() throws -> [StoredTicket] { try read { try $0.liveTickets() } }

    /// Records this poll's failed tickets and forgets the ones that synced; returns the tickets that failed for the
    /// first time (for the log).
    @discardableResult
    public func recordTicketReads(failed: [(ticketID: Int, error: String)], synced: [Int], now: Date? = nil) async throws -> [Int] {
        guard !failed.isEmpty || !synced.isEmpty else { return [] }
        let now = now ?? clock.now()
        let failed = failed.map { Failed(ticketID: $0.ticketID, error: $0.error) }
        return try await write { tx in
            var new: [Int] = []
            for failure in failed where try tx.recordTicketFailure(ticketID: failure.ticketID, error: failure.error, at: now) {
                new.append(failure.ticketID)
            }
            try tx.clearTicketFailures(synced)
            return new
        }
    }

    private struct Failed: Sendable {
        var ticketID: Int
        var error: String
    }
}
