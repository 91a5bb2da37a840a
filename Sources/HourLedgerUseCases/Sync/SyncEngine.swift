import Foundation
import HourLedgerCore
import Logging
import Synchronization

/// What one poll did, for logs, the CLI and the benchmark.
public struct SyncReport: Sendable, Codable, Equatable {
    public var since: String?
    public var highWater: String?
    public var ticketsSeen = 0
    public var ticketsWithTasksRead = 0
    public var entriesAdded = 0
    public var entriesUpdated = 0
    public var entriesDeleted = 0
    public var contractMoves = 0
    /// Webhook hints this poll served.
    public var hintsServed = 0
    /// Tickets that could not be read this poll; each is read again on its own at the next.
    public var ticketsFailed = 0
    /// Tickets found gone from the helpdesk (trashed, purged, deleted): their time left the balances.
    public var ticketsRemoved = 0
    public var requests = 0
    public var seconds: Double = 0
    /// Tasks read by the page across tickets (a first sync), rather than ticket by ticket.
    public var tasksListed = 0
    /// Changed tickets whose task list was rebuilt from the ledger and the changed tasks, confirmed by the search's
    /// summary, without a read of their own.
    public var ticketsRebuilt = 0

    enum CodingKeys: String, CodingKey {
        case since, requests, seconds
        case tasksListed = "tasks_listed", ticketsRebuilt = "tickets_rebuilt"
        case highWater = "high_water", ticketsSeen = "tickets_seen", ticketsWithTasksRead = "tickets_with_tasks_read"
        case entriesAdded = "entries_added", entriesUpdated = "entries_updated", entriesDeleted = "entries_deleted"
        case contractMoves = "contract_moves", hintsServed = "hints_served", ticketsFailed = "tickets_failed"
        case ticketsRemoved = "tickets_removed"
    }
}

/// The daemon's view of its helpdesk, for `/status`.
public struct SyncStatus: Sendable, Codable, Equatable {
    public var reachable: Bool?
    public var lastAttempt: Date?
    public var lastSuccess: Date?
    public var lastError: String?
    public var consecutiveFailures = 0
    public var lastReport: SyncReport?
    /// Contracts that could not be settled (damaged stored figures); the others are settled as usual.
    public var contractFailures: [ContractFailure] = []
    /// Contracts whose query rule the helpdesk refused at the last poll: they keep their last known tickets, the
    /// others are synced as usual.
    public var ruleFailures: [ContractFailure] = []
    /// How far the poll in progress has come, while a long one (a first sync) runs.
    public var progress: SyncProgress?
    /// The helpdesk's own contracts, when the config gives terms for them.
    public var helpdeskContracts: HelpdeskContractsStatus?
}

/// What the last poll made of the helpdesk's contracts.
public struct HelpdeskContractsStatus: Sendable, Codable, Equatable {
    /// Contracts the helpdesk listed at the last read that answered.
    public var listed: Int
    /// HourLedger contracts built from them, ended ones included.
    public var billed: [String]
    /// Those not billed here, and why (by helpdesk contract id).
    public var notBilled: [ContractFailure]
    /// Why the last read failed; the contracts as last read stay in force meanwhile.
    public var error: String?

    enum CodingKeys: String, CodingKey {
        case listed, billed, error
        case notBilled = "not_billed"
    }
}

/// A long poll's progress, in `/status` and the log: what it is doing, how much of it is done, how fast, how long left.
public struct SyncProgress: Sendable, Codable, Equatable {
    public enum Phase: String, Sendable, Codable {
        /// Reading every task by the page.
        case tasks
        /// Storing tickets and their entries.
        case storing
    }

    public var phase: Phase
    public var done: Int
    public var total: Int
    public var startedAt: Date
    public var perSecond: Double
    public var secondsLeft: Int?

    enum CodingKeys: String, CodingKey {
        case phase, done, total
        case startedAt = "started_at", perSecond = "per_second", secondsLeft = "seconds_left"
    }

    init(phase: Phase, done: Int, total: Int, startedAt: Date, now: Date) {
        self.phase = phase
        self.done = done
        self.total = total
        self.startedAt = startedAt
        let elapsed = max(0.001, now.timeIntervalSince(startedAt))
        perSecond = Double(done) / elapsed
        secondsLeft = done > 0 && total >= done ? Int((Double(total - done) / perSecond).rounded(.up)) : nil
    }
}

/// Turns helpdesk changes into ledger entries: read changed tickets, re-read tasks only where they may have changed,
/// match each ticket to a contract, and store ticket, entries and balances in one transaction per batch.
public actor SyncEngine {
    public let connector: any HelpdeskPort
    public let ledger: Ledger
    /// The contracts in force, as the ledger's book holds them.
    public var contracts: [Contract] { ledger.contracts }
    /// Seconds re-read before the last high-water mark, so a change stamped in the same second is not missed.
    public let overlapSeconds: Int
    /// How often the poll also counts the helpdesk's tickets and looks in its trash, to notice tickets that left it.
    public let deletionCheckSeconds: Int
    private let logger: Logger
    private var syncStatus = SyncStatus()
    /// How the last polls went, and the contracts the last settlement could not settle.
    public var status: SyncStatus {
        var status = syncStatus
        status.contractFailures = ledger.unsettledContracts
        status.progress = progressBox.withLock { $0.progress }
        return status
    }
    private var running: Task<SyncReport, any Error>?
    /// Written from the pages as they arrive, read by `/status`.
    private let progressBox = Mutex<(progress: SyncProgress?, logged: Date)>((nil, .distantPast))

    static let highWaterKey = "helpdesk.high_water"
    static let contractsKey = "contracts.fingerprint"
    static let lastSuccessKey = "sync.last_success"
    static let censusKey = "census.last"
    static let censusMarkKey = "census.mark"
    /// The helpdesk's contracts as last read, with the day each was seen ended (JSON of `[KnownHelpdeskContract]`).
    public static let helpdeskContractsKey = "helpdesk.contracts"

    public init(connector: any HelpdeskPort, ledger: Ledger, overlapSeconds: Int = 120, deletionCheckSeconds: Int = 600,
                logger: Logger = Logger(label: "hourledger.sync")) {
        self.connector = connector
        self.deletionCheckSeconds = deletionCheckSeconds
        self.ledger = ledger
        self.overlapSeconds = overlapSeconds
        self.logger = logger
        if let text = try? ledger.state(Self.lastSuccessKey), let seconds = Double(text) {
            syncStatus.lastSuccess = Date(timeIntervalSince1970: seconds)
        }
    }

    /// Replaces the contract list and alert channels; stored tickets are re-matched on the next sync.
    public func updateContracts(_ contracts: [Contract], alertChannels: AlertChannels? = nil, terms: HelpdeskContractTerms? = nil) {
        ledger.book.replace(contracts, alertChannels: alertChannels, terms: terms)
    }

    /// Brings carry-over lines and alerts up to date (see `Ledger.settle`).
    @discardableResult
    public func settle(all: Bool = false, now: Date? = nil) async throws -> [AlertRecord] {
        try await ledger.settle(all: all, now: now).fired
    }

    /// Runs one poll. Concurrent callers share the poll already in flight instead of starting another.
    @discardableResult
    public func syncOnce(now: Date? = nil) async throws -> SyncReport {
        if let running { return try await running.value }
        let now = now ?? ledger.clock.now()
        let task = Task { try await self.performSync(now: now) }
        running = task
        defer { running = nil }
        syncStatus.lastAttempt = now
        do {
            let report = try await task.value
            let success = ledger.clock.now()
            syncStatus.reachable = true
            syncStatus.lastSuccess = success
            syncStatus.lastError = nil
            syncStatus.consecutiveFailures = 0
            syncStatus.lastReport = report
            try? ledger.setState(Self.lastSuccessKey, String(success.timeIntervalSince1970))
            return report
        } catch {
            syncStatus.lastError = "\(error)"
            syncStatus.consecutiveFailures += 1
            if let helpdeskError = error as? HelpdeskError {
                syncStatus.reachable = helpdeskError.kind != .unreachable
            }
            throw error
        }
    }

    static let chunkSize = 1000

    /// Records a long poll's progress, and logs it every 10 s: pages done of all, items a second, time left.
    nonisolated func noteProgress(_ phase: SyncProgress.Phase, done: Int, total: Int, startedAt: Date) {
        let now = Date()
        let progress = SyncProgress(phase: phase, done: done, total: total, startedAt: startedAt, now: now)
        let log = progressBox.withLock { box -> Bool in
            box.progress = progress
            guard now.timeIntervalSince(box.logged) >= 10 || done == total else { return false }
            box.logged = now
            return true
        }
        if log {
            logger.info("sync progress", metadata: [
                "phase": "\(phase.rawValue)", "done": "\(done)", "total": "\(total)", "per_second": "\(Int(progress.perSecond))",
                "seconds_left": "\(progress.secondsLeft.map(String.init) ?? "-")",
            ])
        }
    }

    /// Stores one chunk of tickets with the tasks read for them; returns the tickets stored.
    private func store(_ chunk: [ChangedTicket], _ reads: TaskReads, read: Int, rebuilt: Int = 0, entities: EntityTree, now: Date,
                       report: inout SyncReport, failures: inout [TicketReadFailure]) async throws -> [Int] {
        report.ticketsWithTasksRead += read
        report.ticketsRebuilt += rebuilt
        failures += reads.failures
        // A ticket whose tasks could not be read keeps what the ledger knows of it, and is read again next poll.
        let unreadable = Set(reads.failures.map(\.ticketID))
        var updates: [TicketUpdate] = []
        var synced: [Int] = []
        updates.reserveCapacity(chunk.count)
        let stored = try ledger.read { try $0.tickets(chunk.map(\.facts.id)) }
        for changed in chunk where !unreadable.contains(changed.facts.id) {
            let id = changed.facts.id
            let match = ContractMatcher.match(changed.facts, contracts: contracts, entities: entities, terms: connector.profile.terms)
            synced.append(id)
            // The overlap window re-reads tickets the last poll stored: one whose row, match and tasks are all as
            // stored is not written again.
            if let known = stored[id], known.removed == nil, known.dateMod == changed.dateMod, known.facts == changed.facts,
               known.taskFingerprint == changed.taskFingerprint, known.contractID == match.contractID, known.matchReason == match.reason,
               reads.tasks[id] == nil || (changed.taskCount == 0 && reads.tasks[id]?.isEmpty == true) {
                continue
            }
            updates.append(.init(ticket: changed.facts, dateMod: changed.dateMod, match: match, tasks: reads.tasks[id],
                                 taskFingerprint: changed.taskFingerprint, changedAt: changed.changedAt))
        }
        for outcome in try await ledger.apply(updates, now: now) {
            report.entriesAdded += outcome.entriesAdded
            report.entriesUpdated += outcome.entriesUpdated
            report.entriesDeleted += outcome.entriesDeleted
            if outcome.movedFrom != outcome.movedTo { report.contractMoves += 1 }
        }
        return synced
    }

    /// Tasks of the tickets in `chunk` that may have changed. A ticket the search says has no task needs no read;
    /// one whose task summary equals the summary its tasks were last read under is left as stored (nil). With `listed`
    /// (every task, read by the page), a ticket whose listed tasks are as many as the search counts needs no read.
    /// With `changed` (an incremental poll's changed tasks), a ticket's list is rebuilt from the ledger and those
    /// tasks, and kept without a read when the search's summary agrees; tickets in `mustRead` are always read.
    private func readTasks(_ chunk: [ChangedTicket], edited: Set<Int>, listed: TaskReads? = nil, changed: TaskReads? = nil,
                           mustRead: Set<Int> = []) async throws -> (reads: TaskReads, read: Int, rebuilt: Int) {
        let known = try ledger.read { try $0.tickets(chunk.map(\.facts.id)) }.compactMapValues(\.taskFingerprint)
        var reads = TaskReads()
        var need: [Int] = []
        let unlisted = listed?.failedTickets ?? []
        for ticket in chunk {
            if ticket.taskCount == 0 {
                reads.tasks[ticket.facts.id] = []
            } else if ticket.taskFingerprint == nil || known[ticket.facts.id] != ticket.taskFingerprint || edited.contains(ticket.facts.id) {
                if let listed, let tasks = listed.tasks[ticket.facts.id] ?? (ticket.taskCount == nil ? [] : nil),
                   ticket.taskCount == nil || tasks.count == ticket.taskCount, !unlisted.contains(ticket.facts.id) {
                    reads.tasks[ticket.facts.id] = tasks
                } else {
                    need.append(ticket.facts.id)
                }
            }
        }
        var rebuilt = 0
        if let changed, !need.isEmpty {
            let unreadable = changed.failedTickets.union(mustRead)
            let candidates = try ledger.rebuiltTaskLists(need.filter { !unreadable.contains($0) }, changed: changed.tasks)
            let searched = Dictionary(chunk.map { ($0.facts.id, $0) }, uniquingKeysWith: { first, _ in first })
            need.removeAll { id in
                guard let candidate = candidates[id], let ticket = searched[id], let summary = ticket.taskFingerprint,
                      let tasks = confirmed(candidate, summary: summary, count: ticket.taskCount)
                else { return false }
                reads.tasks[id] = tasks
                rebuilt += 1
                return true
            }
        }
        let read = try await connector.tasks(ofTickets: need)
        for (id, list) in read.tasks { reads.tasks[id] = list }
        reads.failures = read.failures
        return (reads, need.count, rebuilt)
    }

    /// The rebuilt list if the search's summary confirms it; else, when the search counts one or two tasks fewer,
    /// the list without the deleted ones, if exactly one choice of them gives the summary (two tasks alike in time,
    /// day and privacy cannot be told apart: the ticket is then read). Nil: read the ticket.
    nonisolated func confirmed(_ candidate: [TaskFacts], summary: String, count: Int?) -> [TaskFacts]? {
        if connector.taskFingerprint(of: candidate) == summary { return candidate }
        guard let count, count < candidate.count else { return nil }
        var found: [TaskFacts]?
        switch candidate.count - count {
        case 1:
            for index in candidate.indices {
                var rest = candidate
                rest.remove(at: index)
                guard connector.taskFingerprint(of: rest) == summary else { continue }
                if found != nil { return nil }
                found = rest
            }
        case 2 where candidate.count <= 60:
            for first in candidate.indices {
                for second in (first + 1)..<candidate.count {
                    var rest = candidate
                    rest.remove(at: second)
                    rest.remove(at: first)
                    guard connector.taskFingerprint(of: rest) == summary else { continue }
                    if found != nil { return nil }
                    found = rest
                }
            }
        default:
            return nil
        }
        return found
    }

    /// Reads the helpdesk's contracts when the config gives terms for them: one added, changed or ended there is in
    /// the book from this poll on, and the re-match that follows moves tickets with their hours. A refused or failed
    /// read leaves the contracts as last read in force and says so in `/status`; it does not stop the poll.
    private func refreshHelpdeskContracts(now: Date) async throws {
        let book = ledger.book
        guard !book.terms.isEmpty else {
            syncStatus.helpdeskContracts = nil
            return
        }
        var status = syncStatus.helpdeskContracts ?? HelpdeskContractsStatus(listed: 0, billed: [], notBilled: [])
        do {
            let listed = try await connector.helpdeskContracts()
            let known = KnownHelpdeskContract.merge(book.knownHelpdeskContracts, listed: listed, now: now)
            if known != book.knownHelpdeskContracts {
                let encoder = JSONEncoder()
                encoder.outputFormatting = .sortedKeys
                try ledger.setState(Self.helpdeskContractsKey, String(decoding: try encoder.encode(known), as: UTF8.self))
                if book.replaceHelpdeskContracts(known) {
                    logger.notice("helpdesk contracts changed", metadata: ["listed": "\(listed.count)"])
                }
            }
            status.listed = listed.count
            status.error = nil
        } catch let error as HelpdeskError where error.kind != .authentication && error.kind != .unreachable {
            status.error = "\(error)"
            logger.warning("could not read the helpdesk's contracts; those last read stay in force", metadata: ["error": "\(error)"])
        }
        let prefix = book.helpdeskPrefix
        status.billed = book.helpdeskContractIDs
        status.notBilled = book.skippedHelpdeskContracts.map {
            ContractFailure(contractID: HelpdeskContractTerms.contractID($0.id, prefix: prefix), error: $0.reason)
        }
        syncStatus.helpdeskContracts = status
    }

    /// Query rules the helpdesk refused during the poll in progress, by contract.
    private var refusedRules: [String: String] = [:]

    /// This poll's explicit links, by contract: every ticket linked by hand to each contract's helpdesk contract. Nil
    /// when no contract names one. A contract whose links the helpdesk refused this poll is in `unknownLinks`: its
    /// tickets keep the links the ledger holds, and nothing else is affected (as with a refused query rule).
    private var links: [String: Set<Int>]?
    private var unknownLinks: Set<String> = []

    private func currentLinks() async throws -> [String: Set<Int>]? {
        var result: [String: Set<Int>] = [:]
        unknownLinks = []
        for contract in contracts {
            guard let id = contract.match.linkedContract else { continue }
            do {
                result[contract.id] = try await connector.ticketsLinked(toContract: id)
            } catch let error as HelpdeskError where error.concernsOneTicket {
                let named = HelpdeskError(error.kind, operation: "\(error.operation) of contract \(contract.id)", code: error.code, detail: error.detail)
                refusedRules[contract.id] = "\(named)"
                unknownLinks.insert(contract.id)
            } catch let error as HelpdeskError where error.kind != .authentication {
                throw HelpdeskError(error.kind, operation: "\(error.operation) of contract \(contract.id)", code: error.code, detail: error.detail,
                                    requestNeverSent: error.requestNeverSent)
            }
        }
        return result.isEmpty && unknownLinks.isEmpty ? nil : result
    }

    /// The contracts a ticket is linked to: as the helpdesk says this poll, or as stored where it could not say.
    private func linkedContracts(of id: Int, stored: [String]) -> [String] {
        contracts.filter { unknownLinks.contains($0.id) ? stored.contains($0.id) : links?[$0.id]?.contains(id) == true }.map(\.id)
    }

    private func markLinks(_ facts: inout [TicketFacts]) throws {
        guard links != nil else { return }
        let stored = unknownLinks.isEmpty ? [:] : try ledger.read { try $0.tickets(facts.map(\.id)) }.mapValues(\.facts.linkedContracts)
        for index in facts.indices {
            facts[index].linkedContracts = linkedContracts(of: facts[index].id, stored: stored[facts[index].id] ?? [])
        }
    }

    /// Tickets whose links changed without the ticket being polled (a link may leave date_mod alone) are matched
    /// again from what the ledger holds, and move with their hours.
    private func applyLinkChanges(entities: EntityTree, now: Date, report: inout SyncReport) async throws {
        guard let links else { return }
        let linkedNow = links.values.reduce(into: Set<Int>()) { $0.formUnion($1) }
        var candidates = try ledger.read { try $0.linkedTickets() }
        let known = Set(candidates.map(\.id))
        candidates += try ledger.read { try $0.tickets(Array(linkedNow.subtracting(known))) }.values.filter { $0.removed == nil }
        var updates: [TicketUpdate] = []
        for ticket in candidates {
            var facts = ticket.facts
            facts.linkedContracts = linkedContracts(of: ticket.id, stored: ticket.facts.linkedContracts)
            guard facts.linkedContracts != ticket.facts.linkedContracts else { continue }
            updates.append(TicketUpdate(ticket: facts, dateMod: ticket.dateMod,
                                        match: ContractMatcher.match(facts, contracts: contracts, entities: entities, terms: connector.profile.terms),
                                        tasks: nil, taskFingerprint: nil))
        }
        guard !updates.isEmpty else { return }
        for outcome in try await ledger.apply(updates, now: now) where outcome.movedFrom != outcome.movedTo {
            report.contractMoves += 1
        }
        logger.info("explicit links changed", metadata: ["tickets": "\(updates.count)"])
    }

    private func performSync(now: Date) async throws -> SyncReport {
        let started = ContinuousClock.now
        defer { progressBox.withLock { $0.progress = nil } }
        let requestsBefore = await connector.requestCount()
        var report = SyncReport()
        refusedRules = [:]
        try await refreshHelpdeskContracts(now: now)
        links = try await currentLinks()
        try await rematchIfContractsChanged(now: now, report: &report)

        let previousHighWater = try ledger.state(Self.highWaterKey)
        let since = previousHighWater.flatMap { connector.stamp($0, movedBackBy: overlapSeconds) }
        report.since = since
        // Webhook hints, and tickets that failed to read before, that this poll did not return are re-read by id,
        // in one batched read. They are taken before the poll reads anything: a hint that arrives meanwhile may be
        // about a change the read already missed, so it stays for the next poll.
        ledger.hintsArrived.reset()
        let hints = try ledger.pendingHints()
        let failing = try ledger.ticketFailures().map(\.ticketID)
        var synced: [Int] = []
        var failures: [TicketReadFailure] = []
        var tree: EntityTree?
        var batch: ChangeBatch
        let polled: Set<Int>
        var streamed = 0
        var moved = Set<Int>()
        if since == nil, connector.listsTicketsByPage {
            // A first sync without tasks to page (iTop): each page of tickets is stored while the next ones download.
            let entities = contracts.contains(where: \.includeSubentities) ? try await connector.entityTree() : EntityTree()
            tree = entities
            let stored = try await storePages(entities: entities, now: now, report: &report, synced: &synced, failures: &failures)
            batch = stored.batch
            polled = stored.seen.subtracting(stored.moved)
            streamed = stored.tickets - stored.moved.count
            moved = stored.moved
        } else {
            batch = try await connector.changedTickets(since: since)
            polled = Set(batch.tickets.map(\.facts.id) + batch.failures.map(\.ticketID))
        }
        let reread = Array(Set(hints.map(\.ticketID) + failing).union(moved).subtracting(polled)).sorted()
        let extra = reread.isEmpty ? ChangeBatch(tickets: []) : try await connector.tickets(ids: reread)
        try await markQueryMatches(&batch.tickets, since: since)
        var extraTickets = extra.tickets
        try await markQueryMatches(&extraTickets, among: extra.tickets.map(\.facts.id))
        batch.tickets += extraTickets
        failures += batch.failures + extra.failures
        // Tasks whose technician or text alone changed leave the search's task summary as it was: the task list,
        // newest change first, names their tickets.
        var edited = Set<Int>()
        var changedTasks: TaskReads?
        if let since {
            let changed = try await connector.changedTasks(since: since)
            edited = try ledger.ticketsWhoseTasksDiffer(changed.tasks).union(changed.failures.map(\.ticketID))
            changedTasks = changed
        }
        let mustRead = Set(failing)
        report.ticketsSeen = streamed + batch.tickets.count
        report.hintsServed = hints.count

        let entities = if let tree { tree } else {
            contracts.contains(where: \.includeSubentities) ? try await connector.entityTree() : EntityTree()
        }
        let newHighWater = batch.complete ? (batch.highWater.map { max($0, previousHighWater ?? "") } ?? previousHighWater) : previousHighWater

        let withTasks = batch.tickets.reduce(0) { $0 + (($1.taskCount ?? 1) > 0 ? 1 : 0) }
        if since == nil, withTasks > Self.chunkSize, let pageSize = connector.taskPageSize {
            // A first sync's tasks by the page across tickets, in ticket order, a few pages ahead of what is stored:
            // each ticket is stored as soon as the list has moved past it, so downloading overlaps storing and memory
            // holds only the pages in flight. A ticket whose listed tasks are not as many as the search counts (the
            // list moved while it was paged) is read on its own.
            // Sorted in place, and the batch lets go of its copy: a hundred thousand tickets are held once.
            var tickets = batch.tickets
            batch.tickets = []
            tickets.sort { $0.facts.id < $1.facts.id }
            let connector = self.connector
            let startedAt = Date()
            let first = try await connector.taskPage(0)
            let total = max(first.total ?? first.tasks.count, first.tasks.count)
            let pages = max(1, (total + pageSize - 1) / pageSize)
            let ahead = 3
            var window: [Int: Task<TaskPage, any Error>] = [:]
            defer { for task in window.values { task.cancel() } }
            for number in 1..<max(1, min(pages, ahead)) { window[number] = Task { try await connector.taskPage(number) } }
            var pending: [Int: [TaskFacts]] = [:]
            var unreadable: [Int: TicketReadFailure] = [:]
            var cursor = 0
            for number in 0..<pages {
                let page = number == 0 ? first : try await window.removeValue(forKey: number)!.value
                if number + ahead < pages { window[number + ahead] = Task { [next = number + ahead] in try await connector.taskPage(next) } }
                for task in page.tasks where !(pending[task.ticketID]?.contains { $0.id == task.id } ?? false) {
                    pending[task.ticketID, default: []].append(task)
                    report.tasksListed += 1
                }
                for failure in page.failures { unreadable[failure.ticketID] = failure }
                // The list is in ticket order: every ticket below the page's last is complete (the last may go on).
                let bound = number == pages - 1 ? Int.max : (page.tasks.last?.ticketID ?? Int.max)
                var ready: [ChangedTicket] = []
                while cursor < tickets.count, tickets[cursor].facts.id < bound {
                    ready.append(tickets[cursor])
                    cursor += 1
                }
                for start in stride(from: 0, to: ready.count, by: Self.chunkSize) {
                    let chunk = Array(ready[start..<min(start + Self.chunkSize, ready.count)])
                    var listed = TaskReads()
                    for ticket in chunk {
                        listed.tasks[ticket.facts.id] = pending.removeValue(forKey: ticket.facts.id) ?? []
                        if let failure = unreadable.removeValue(forKey: ticket.facts.id) { listed.failures.append(failure) }
                    }
                    let (reads, read, _) = try await readTasks(chunk, edited: edited, listed: listed)
                    synced += try await store(chunk, reads, read: read, entities: entities, now: now, report: &report, failures: &failures)
                }
                // Tasks of tickets the search did not return (not visible, or created since): nothing to store them with.
                if let lowest = pending.keys.min(), lowest < bound { pending = pending.filter { $0.key >= bound } }
                noteProgress(.tasks, done: min((number + 1) * pageSize, total), total: total, startedAt: startedAt)
            }
        } else {
            // Chunks are pipelined: the next chunk's tasks are read while this chunk is written.
            let chunks = stride(from: 0, to: batch.tickets.count, by: Self.chunkSize).map {
                Array(batch.tickets[$0..<min($0 + Self.chunkSize, batch.tickets.count)])
            }
            let changed = changedTasks
            var pending = chunks.first.map { chunk in Task { try await self.readTasks(chunk, edited: edited, changed: changed, mustRead: mustRead) } }
            for (index, chunk) in chunks.enumerated() {
                let (reads, read, rebuilt) = try await pending!.value
                pending = index + 1 < chunks.count
                    ? Task { [next = chunks[index + 1]] in try await self.readTasks(next, edited: edited, changed: changed, mustRead: mustRead) } : nil
                do {
                    synced += try await store(chunk, reads, read: read, rebuilt: rebuilt, entities: entities, now: now, report: &report,
                                              failures: &failures)
                } catch {
                    pending?.cancel()
                    throw error
                }
            }
        }
        try await applyLinkChanges(entities: entities, now: now, report: &report)
        if let newHighWater, newHighWater != previousHighWater { try ledger.setState(Self.highWaterKey, newHighWater) }
        if !hints.isEmpty { try await ledger.clearHints(hints) }
        // Failures are kept by ticket and reported; the high-water mark may move on, since they are read by id.
        let firstTime = try await ledger.recordTicketReads(failed: failures.map { ($0.ticketID, "\($0.error)") }, synced: synced, now: now)
        for failure in failures where firstTime.contains(failure.ticketID) {
            logger.warning("ticket could not be read; the others are synced, it is read again at each poll",
                           metadata: ["ticket": "\(failure.ticketID)", "error": "\(failure.error)"])
        }
        report.ticketsFailed = failures.count
        // Tickets asked for by id that did not come back have left the helpdesk, or the daemon's sight.
        let returned = Set(extra.tickets.map(\.facts.id) + extra.failures.map(\.ticketID))
        report.ticketsRemoved += try await markGone(reread.filter { !returned.contains($0) }, now: now)
        // A full read has just seen every ticket: the first check comes one interval after it.
        if since == nil, try ledger.state(Self.censusKey) == nil {
            try ledger.setState(Self.censusKey, String(now.timeIntervalSince1970))
            if let newHighWater { try ledger.setState(Self.censusMarkKey, newHighWater) }
        } else if try censusDue(now) {
            report.ticketsRemoved += try await census(now: now, highWater: newHighWater)
        }
        try await settle(now: now)
        report.highWater = newHighWater
        report.requests = await connector.requestCount() - requestsBefore
        try finishRuleFailures()
        let elapsed = ContinuousClock.now - started
        report.seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        logger.info("sync done", metadata: [
            "tickets": "\(report.ticketsSeen)", "failed": "\(report.ticketsFailed)", "tasks_read_for": "\(report.ticketsWithTasksRead)",
            "added": "\(report.entriesAdded)",
            "updated": "\(report.entriesUpdated)", "deleted": "\(report.entriesDeleted)", "moves": "\(report.contractMoves)",
            "requests": "\(report.requests)", "tasks_listed": "\(report.tasksListed)", "rebuilt": "\(report.ticketsRebuilt)",
        ])
        return report
    }

    /// Marks tickets of the ledger that the helpdesk no longer returns: those in its trash as trashed, the rest as
    /// gone for good. Returns how many were marked.
    private func markGone(_ ids: [Int], now: Date) async throws -> Int {
        let live = try ledger.liveTicketIDs().intersection(ids)
        guard !live.isEmpty else { return 0 }
        let trashed = try await connector.trashed(among: Array(live))
        var marked = try await ledger.markRemoved(Array(trashed), as: .trashed, now: now)
        marked += try await ledger.markRemoved(Array(live.subtracting(trashed)), as: connector.profile.vanished, now: now)
        for id in marked { logger.notice("ticket left the helpdesk; its time left the balances", metadata: ["ticket": "\(id)"]) }
        return marked.count
    }

    private func censusDue(_ now: Date) throws -> Bool {
        guard let text = try ledger.state(Self.censusKey), let last = Double(text) else { return true }
        return now.timeIntervalSince1970 - last >= Double(deletionCheckSeconds)
    }

    /// The deletion check: tickets moved to the trash since the last check, then the helpdesk's count of tickets
    /// against the ledger's; only when they differ, every id is listed to find which ones left (or came back).
    /// Costs two small requests when nothing was deleted.
    private func census(now: Date, highWater: String?) async throws -> Int {
        let mark = try ledger.state(Self.censusMarkKey).flatMap { connector.stamp($0, movedBackBy: overlapSeconds) }
        var live = try ledger.liveTicketIDs()
        var removed = try await ledger.markRemoved(Array(try await connector.trashed(since: mark).intersection(live)), as: .trashed, now: now).count
        live = try ledger.liveTicketIDs()
        let count = try await connector.ticketCount()
        if count != live.count {
            let ids = try await connector.allTicketIDs()
            removed += try await markGone(Array(live.subtracting(ids)), now: now)
            // Tickets the ledger does not have, or had marked gone (restored without a new date_mod), are read next poll.
            let back = ids.subtracting(live)
            if !back.isEmpty {
                try await ledger.addHints(Array(back), now: now)
            }
            logger.info("deletion check: the helpdesk's ticket count differed from the ledger's", metadata: [
                "helpdesk": "\(count)", "ledger": "\(live.count)", "removed": "\(removed)", "to_read": "\(back.count)",
            ])
        }
        try ledger.setState(Self.censusKey, String(now.timeIntervalSince1970))
        if let highWater { try ledger.setState(Self.censusMarkKey, highWater) }
        return removed
    }

    /// After a contract edit, every stored ticket is matched again without re-reading its tasks.
    private func rematchIfContractsChanged(now: Date, report: inout SyncReport) async throws {
        let fingerprint = Self.fingerprint(contracts)
        guard try ledger.state(Self.contractsKey) != fingerprint else { return }
        let stored = try ledger.liveTickets()
        if !stored.isEmpty {
            let entities = contracts.contains(where: \.includeSubentities) ? try await connector.entityTree() : EntityTree()
            // A changed query rule is asked again in full: the stored answers were for the old rules.
            var facts = stored.map(\.facts)
            try await markQueryMatches(&facts)
            let updates = zip(facts, stored).map { facts, ticket in
                TicketUpdate(ticket: facts, dateMod: ticket.dateMod,
                                         match: ContractMatcher.match(facts, contracts: contracts, entities: entities, terms: connector.profile.terms),
                                         tasks: nil, taskFingerprint: nil)
            }
            for outcome in try await ledger.apply(updates, now: now) where outcome.movedFrom != outcome.movedTo {
                report.contractMoves += 1
            }
            logger.info("contracts changed, stored tickets re-matched", metadata: ["tickets": "\(stored.count)"])
        }
        try ledger.setState(Self.contractsKey, fingerprint)
    }

    /// Asks the helpdesk which of these tickets each contract's query rule selects. Polled tickets were all modified
    /// after `since`, so the rule narrowed to `since` answers for all of them in one paged read per rule.
    private func markQueryMatches(_ tickets: inout [ChangedTicket], since: String? = nil, among: [Int]? = nil) async throws {
        var facts = tickets.map(\.facts)
        try await markQueryMatches(&facts, since: since, among: among)
        for index in tickets.indices { tickets[index].facts = facts[index] }
    }

    private func markQueryMatches(_ facts: inout [TicketFacts], since: String? = nil, among: [Int]? = nil) async throws {
        guard !facts.isEmpty else { return try mark(&facts, []) }
        try mark(&facts, try await ruleSelections(since: since, among: among))
        try markLinks(&facts)
    }

    /// Each query rule's answer: the tickets it selects, or nil when the helpdesk refused it (noted in `refusedRules`).
    private func ruleSelections(since: String?, among: [Int]?) async throws -> [(contractID: String, selected: Set<Int>?)] {
        var selections: [(contractID: String, selected: Set<Int>?)] = []
        for contract in contracts {
            guard let query = contract.match.query else { continue }
            do {
                selections.append((contract.id, try await connector.ticketIDs(matching: query, since: since, among: among)))
            } catch let error as HelpdeskError where error.concernsOneTicket {
                // The helpdesk refuses this rule: its contract keeps the tickets it last selected, and nothing else
                // is affected.
                let named = HelpdeskError(error.kind, operation: "\(error.operation) of contract \(contract.id)", code: error.code, detail: error.detail)
                refusedRules[contract.id] = "\(named)"
                selections.append((contract.id, nil))
            } catch let error as HelpdeskError where error.kind != .authentication {
                throw HelpdeskError(error.kind, operation: "\(error.operation) of contract \(contract.id)", code: error.code, detail: error.detail,
                                    requestNeverSent: error.requestNeverSent)
            }
        }
        return selections
    }

    /// Marks which rules select each ticket. Under a refused rule a ticket keeps what the ledger stored; one it never
    /// answered for is marked unknown, so its reason says why.
    private func mark(_ facts: inout [TicketFacts], _ selections: [(contractID: String, selected: Set<Int>?)]) throws {
        for index in facts.indices {
            facts[index].queryMatches = []
            facts[index].queryUnknown = []
        }
        guard !selections.isEmpty, !facts.isEmpty else { return }
        var stored: [Int: [String]]?
        for (contractID, selected) in selections {
            if let selected {
                for index in facts.indices where selected.contains(facts[index].id) { facts[index].queryMatches.append(contractID) }
                continue
            }
            if stored == nil { stored = try ledger.read { try $0.tickets(facts.map(\.id)) }.mapValues(\.facts.queryMatches) }
            for index in facts.indices {
                if stored?[facts[index].id]?.contains(contractID) == true {
                    facts[index].queryMatches.append(contractID)
                } else {
                    facts[index].queryUnknown.append(contractID)
                }
            }
        }
    }

    /// A first sync's tickets stored page by page as the adapter hands them over: it reads the next pages
    /// meanwhile. Query rules are asked once, in full, before the first page. A ticket handed over again (it moved
    /// while the list was paged) is stored again only if it is not older than what this poll stored. The rules are
    /// asked again after the last page: tickets whose selection changed meanwhile (`moved`) are read again by id with
    /// the others. Returns the combined high-water mark and completeness, every ticket id seen, and how many tickets
    /// were read.
    private func storePages(entities: EntityTree, now: Date, report: inout SyncReport, synced: inout [Int], failures: inout [TicketReadFailure])
        async throws -> (batch: ChangeBatch, seen: Set<Int>, tickets: Int, moved: Set<Int>)
    {
        let queried = contracts.contains { $0.match.query != nil }
        let selections = queried ? try await ruleSelections(since: nil, among: nil) : []
        let pages = connector.changedTicketPages(since: nil)
        var newest: [Int: String] = [:]
        var seen = Set<Int>()
        var summary = ChangeBatch(tickets: [])
        for try await page in pages {
            summary.complete = summary.complete && page.complete
            if let mark = page.highWater, mark > summary.highWater ?? "" { summary.highWater = mark }
            failures += page.failures
            seen.formUnion(page.failures.map(\.ticketID))
            var tickets = page.tickets.filter { ticket in newest[ticket.facts.id].map { ticket.dateMod >= $0 } ?? true }
            for ticket in tickets {
                newest[ticket.facts.id] = ticket.dateMod
                seen.insert(ticket.facts.id)
            }
            var facts = tickets.map(\.facts)
            try mark(&facts, selections)
            for index in tickets.indices { tickets[index].facts = facts[index] }
            for start in stride(from: 0, to: tickets.count, by: Self.chunkSize) {
                let chunk = Array(tickets[start..<min(start + Self.chunkSize, tickets.count)])
                let (reads, read, _) = try await readTasks(chunk, edited: [])
                synced += try await store(chunk, reads, read: read, entities: entities, now: now, report: &report, failures: &failures)
            }
        }
        var moved = Set<Int>()
        if queried {
            for (before, after) in zip(selections, try await ruleSelections(since: nil, among: nil)) {
                guard let selectedBefore = before.selected, let selectedAfter = after.selected else { continue }
                moved.formUnion(selectedBefore.symmetricDifference(selectedAfter).intersection(newest.keys))
            }
        }
        return (summary, seen, newest.count, moved)
    }

    /// Publishes the rules refused in this poll. A rule that was refused before and was answered now is asked again
    /// in full at the next poll, so the tickets that changed meanwhile are matched by it.
    private func finishRuleFailures() throws {
        let failures = refusedRules.keys.sorted().map { ContractFailure(contractID: $0, error: refusedRules[$0]!) }
        let queried = Set(contracts.filter { $0.match.query != nil }.map(\.id))
        let recovered = syncStatus.ruleFailures.map(\.contractID).filter { queried.contains($0) && refusedRules[$0] == nil }
        for failure in failures where !syncStatus.ruleFailures.contains(failure) {
            logger.error("a query rule is refused by the helpdesk; its contract keeps its last known tickets, the others sync",
                         metadata: ["contract": "\(failure.contractID)", "error": "\(failure.error)"])
        }
        if !recovered.isEmpty {
            logger.notice("query rules answered again; every stored ticket is matched again at the next poll", metadata: ["contracts": "\(recovered)"])
            try ledger.setState(Self.contractsKey, "")
        }
        syncStatus.ruleFailures = failures
    }

    static func fingerprint(_ contracts: [Contract]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return (try? encoder.encode(contracts)).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }
}

extension Ledger {
    /// Puts the helpdesk's contracts, as the last poll read them, in the book: for commands that do not poll (the
    /// CLI sees the contracts `serve` sees) and for a daemon before its first poll.
    public func loadHelpdeskContracts() throws {
        guard !book.terms.isEmpty, let text = try state(SyncEngine.helpdeskContractsKey), !text.isEmpty else { return }
        do {
            book.replaceHelpdeskContracts(try JSONDecoder().decode([KnownHelpdeskContract].self, from: Data(text.utf8)))
        } catch {
            throw DamagedLedger(description: "the helpdesk contracts kept in the ledger cannot be read (\(error)); the next poll reads them again")
        }
    }
}
