import Foundation
import HourLedgerCore

/// Where the ledger is kept. Every workflow runs its reads and writes through one transaction here, so entries,
/// balances, the outbox and the audit trail never disagree. SQLite is the embedded default; an in-memory repository
/// serves tests and dry runs; both pass the same contract tests, as any further store must.
public protocol LedgerRepository: Sendable {
    /// Runs `body` on a consistent snapshot.
    func read<T>(_ body: (any LedgerReader) throws -> T) throws -> T
    /// Runs `body` in one write transaction: all of it is stored, or none.
    func write<T>(_ body: (any LedgerWriter) throws -> T) throws -> T
    /// The same, off the caller's thread: a sync's big batch does not hold a cooperative thread while it commits.
    func write<T: Sendable>(_ body: @escaping @Sendable (any LedgerWriter) throws -> T) async throws -> T
    /// Makes everything written durable and releases the store; the last thing a stopping daemon does.
    func close() throws
}

/// The ledger cannot be written or read at all (a full disk, a read-only file system, an I/O error, a damaged file),
/// as opposed to a bad request. Nothing of the failed transaction was stored.
public struct LedgerUnavailable: Error, CustomStringConvertible, Sendable {
    /// In the operator's words: "the disk is full".
    public let reason: String
    /// The store's own message, for the log.
    public let detail: String

    public init(reason: String, detail: String) {
        self.reason = reason
        self.detail = detail
    }

    public var description: String { "the ledger cannot be written: \(reason) (\(detail))" }
}

/// A ledger data error the caller cannot fix by retrying: a bug, or a row the store refused.
public struct LedgerStoreError: Error, CustomStringConvertible, Sendable {
    public let description: String

    public init(_ description: String) { self.description = description }
}

/// What the ledger answers. Lists are in a stable order (by id or time) so people and tests see the same order.
public protocol LedgerReader {
    // MARK: Settings of the sync

    func state(_ key: String) throws -> String?

    // MARK: Tickets

    func ticket(_ id: Int) throws -> StoredTicket?
    /// The stored tickets among `ids`, by id.
    func tickets(_ ids: [Int]) throws -> [Int: StoredTicket]
    /// Every ticket still in the helpdesk, by id.
    func liveTickets() throws -> [StoredTicket]
    /// Live tickets linked by hand to a contract in the helpdesk.
    func linkedTickets() throws -> [StoredTicket]
    func liveTicketIDs() throws -> Set<Int>
    /// Every ticket still in the helpdesk with its time as the helpdesk should count it, for reconciliation.
    func ticketSeconds() throws -> [TicketSeconds]
    /// Every stored ticket's contract and the reason it was linked (or not), gone ones included.
    func ticketMatches() throws -> [Int: (contractID: String?, reason: String)]
    /// Live tickets linked to no contract, with the raw seconds logged on each.
    func unmatchedTickets() throws -> [UnmatchedTicket]
    func moves(ticketID: Int) throws -> [ContractMove]

    // MARK: Entries

    func entries(ticketID: Int) throws -> [LedgerEntry]
    /// Tickets solved or closed in `from..<to` (of `contractID` when given, any or none otherwise), still in the
    /// helpdesk, with no entry holding a second of time and no timer still open on them; in the order they were closed.
    func untimedTickets(closedFrom from: Date, to: Date, contractID: String?) throws -> [StoredTicket]
    /// The entries of many tickets at once, by ticket, each in id order: a sync's batch reads them in one pass.
    func entries(ticketIDs: [Int]) throws -> [Int: [LedgerEntry]]
    func entry(key: String) throws -> LedgerEntry?
    /// Every entry, by id: for `verify`.
    func allEntries() throws -> [LedgerEntry]
    /// Every record of the books, by id (see `BookRecord`).
    func bookRecords() throws -> [BookRecord]
    /// A contract's last record of the books ("" for what belongs to no contract).
    func bookHead(contractID: String) throws -> (seq: Int, hash: String)?
    /// Entries read from helpdesk tasks, by task id.
    func helpdeskTaskEntries(taskIDs: [Int]) throws -> [Int: LedgerEntry]
    /// Of these helpdesk task ids, the ones HourLedger wrote itself (an entry's remote task).
    func ownTaskIDs(among taskIDs: [Int]) throws -> Set<Int>
    /// HourLedger's own entries, by day worked, of one ticket and/or one contract (nil: any).
    func ownEntries(ticketID: Int?, contractID: String?) throws -> [LedgerEntry]
    /// Every entry of one technician worked in [from, to), by time worked: the technician's week on the dashboard.
    func entries(technician: Int, from: Date, to: Date) throws -> [LedgerEntry]
    /// The ticket of the counted entry last changed in a period: where an alert's followup goes.
    func latestCountedTicket(contractID: String, periodKey: String) throws -> Int?
    /// Counted entries of one period, by day worked, with their ticket's name: what invoicing reads.
    func countedEntries(contractID: String, periodKey: String) throws -> [(entry: LedgerEntry, ticketName: String)]
    /// The same entries as the period's running total of billed seconds after each, by time worked: a burn chart's
    /// points, without reading whole entries.
    func usageOverTime(contractID: String, periodKey: String) throws -> [(at: Date, usedSeconds: Int)]

    // MARK: Balances

    /// The stored totals of each period of a contract, by period key.
    func periodUsage(contractID: String) throws -> [String: PeriodUsage]
    /// A number that grows with every change to any contract's stored totals, whoever wrote it (0 before the first):
    /// what tells a process that the balances it worked out earlier are still current.
    func balanceRevision() throws -> Int64
    /// The stored totals of every contract whose totals changed after `revision` (all of them after 0), by contract
    /// and period key; a contract whose rows were all removed maps to no periods.
    func periodUsage(changedAfter revision: Int64) throws -> [String: [String: PeriodUsage]]
    /// Per-ticket usage of one contract period, largest first.
    func ticketBreakdown(contractID: String, periodKey: String) throws -> [TicketUsage]
    /// Stored totals that disagree with the sum of their entries; empty unless the ledger is damaged.
    func balanceDiscrepancies() throws -> [String]
    /// Contracts whose balance changed since they were last settled.
    func dirtyContracts() throws -> Set<String>
    func blockMovements(contractID: String) throws -> [BlockMovement]
    /// Every top-up of a contract (or of all contracts), voided ones included, in the order they were added.
    func topUps(contractID: String?) throws -> [TopUp]
    /// The top-ups of every contract whose balance revision moved after `revision` (see `periodUsage(changedAfter:)`),
    /// by contract; a changed contract with none maps to an empty list.
    func topUps(changedAfter revision: Int64) throws -> [String: [TopUp]]

    // MARK: Timers

    func timer(id: Int64) throws -> TimerRecord?
    func openTimer(technician: Int, ticketID: Int) throws -> TimerRecord?
    func timers(technician: Int?, openOnly: Bool) throws -> [TimerRecord]
    func runningTimers() throws -> [TimerRecord]

    // MARK: Audit

    func auditTrail(ticketID: Int?, contractID: String?) throws -> [AuditRecord]

    // MARK: Outbox

    func outboxItem(id: Int64) throws -> OutboxItem?
    /// Every record of one entry, oldest first.
    func outboxItems(entryKey: String) throws -> [OutboxItem]
    /// Pending records (parked included) oldest first, or only the parked ones.
    func pendingOutboxItems(parkedOnly: Bool, limit: Int) throws -> [OutboxItem]
    /// The next record to deliver. The oldest pending record of each ticket is that ticket's head; of the heads that
    /// are not parked, whose `nextAttemptAt` has come and whose attempt in doubt (if any) started at least
    /// `fenceSeconds` ago, the oldest. So writes stay in order per ticket, and one ticket's refused or doubtful write
    /// holds up only that ticket.
    func nextOutboxItem(now: Date, fenceSeconds: Int) throws -> OutboxItem?
    /// When the next head becomes due (its backoff or its fence ends), for a worker deciding how long to sleep.
    func nextOutboxWakeUp(fenceSeconds: Int) throws -> Date?
    func outboxStats(now: Date) throws -> OutboxStats

    // MARK: Alerts

    /// Newest first.
    func alerts(contractID: String?, limit: Int) throws -> [AlertRecord]
    func alertDeliveries(alertID: Int64?) throws -> [AlertDelivery]
    /// Pending deliveries whose attempt is due, oldest first. A followup whose last attempt is in doubt waits out
    /// `fenceSeconds` from that attempt (a webhook receiver de-duplicates by delivery id instead).
    func dueAlertDeliveries(now: Date, fenceSeconds: Int, limit: Int) throws -> [AlertDelivery]
    func alertDelivery(id: Int64) throws -> AlertDelivery?
    func alertDeliveryStats() throws -> AlertDeliveryStats

    // MARK: Webhook hints and failing tickets

    /// Oldest first.
    func pendingHints(limit: Int) throws -> [TicketHint]
    func ticketFailures(limit: Int) throws -> [TicketFailureRecord]

    // MARK: API tokens

    func principal(tokenHash: String) throws -> Principal?

    // MARK: Reports (counted time only)

    /// Time per technician in each of the given spans.
    func technicianTime(months: [(key: String, start: Date, end: Date)], contractID: String?) throws -> [TechnicianReportRow]
    /// Time per contract period, of entries worked in [from, to).
    func contractTime(from: Date, to: Date) throws -> [(contractID: String, periodKey: String, time: TimeSplit, tickets: Int)]
    /// Time per ticket worked on in [from, to), optionally of one contract, largest first.
    func ticketTime(from: Date, to: Date, contractID: String?) throws -> [TicketReportRow]

    func counts() throws -> LedgerCounts
}

/// What a write transaction may change, on top of reading.
public protocol LedgerWriter: LedgerReader {
    func setState(_ key: String, _ value: String) throws

    /// Stores a ticket as given, replacing what was stored.
    func saveTicket(_ ticket: StoredTicket) throws
    func insertMove(_ move: ContractMove) throws

    /// Stores a new entry and returns its id; an entry of HourLedger's own takes its id as its source id.
    func insertEntry(_ entry: LedgerEntry) throws -> Int64
    /// Stores new entries read from helpdesk tasks (never HourLedger's own), all or none; a sync stores a ticket's
    /// tasks with one statement instead of one per task.
    func insertEntries(_ entries: [LedgerEntry]) throws
    /// Replaces the stored entry with the same id.
    func updateEntry(_ entry: LedgerEntry) throws
    func deleteEntry(id: Int64) throws

    /// Applies a balance change to its period (creating the period row when the change knows the period) and marks
    /// the contract for settling.
    func applyBalanceChange(_ change: BalanceDeltas.Change) throws
    /// Has the next settle look at this contract, though its figures did not move.
    func markUnsettled(contractID: String) throws
    /// After settling: only `contractIDs` stay marked (those that could not be settled).
    func resetDirtyContracts(keeping contractIDs: [String]) throws
    /// Records a carry-over or expiry line; a line already stored with other seconds is revised and says when.
    func saveBlockMovement(contractID: String, _ movement: BlockMovement, at: Date) throws
    func deleteBlockMovement(contractID: String, _ movement: BlockMovement) throws
    /// Stores a new top-up, moves its contract's balance revision and marks it for settling; returns its id.
    func insertTopUp(_ topUp: TopUp) throws -> Int64
    /// Voids a live top-up (the same revision and settling as an insert); false when there is none with that id or
    /// it was already voided.
    func voidTopUp(id: Int64, at: Date, by: String, reason: String) throws -> Bool

    func insertTimer(_ timer: TimerRecord, at: Date) throws -> Int64
    func updateTimer(_ timer: TimerRecord, at: Date) throws

    func insertAudit(_ record: AuditRecord) throws

    /// Queues a record and returns its id.
    func insertOutboxItem(_ item: OutboxItem) throws -> Int64
    /// Replaces the stored record with the same id.
    func updateOutboxItem(_ item: OutboxItem) throws
    /// Links an entry to the helpdesk task its write-back created.
    func setRemoteTaskID(_ taskID: Int, entryKey: String) throws

    /// Stores an alert unless its contract, period and threshold already fired; returns its id, or nil.
    func insertAlert(_ alert: AlertRecord) throws -> Int64?
    func insertAlertDelivery(_ delivery: AlertDelivery) throws -> Int64
    func updateAlertDelivery(_ delivery: AlertDelivery) throws

    /// Remembers a webhook signature; false when it was already remembered (a replay).
    func rememberSignature(_ signature: String, at: Date) throws -> Bool
    func forgetSignatures(before: Date) throws
    /// Adds a hint for the ticket, or counts one more on the hint waiting.
    func addHint(ticketID: Int, at: Date) throws
    /// The same for many deliveries, in as few statements as the store can: per signature, in order, whether it was
    /// new (a signature twice in the list is new the first time only).
    func rememberSignatures(_ signatures: [String], at: Date) throws -> [Bool]
    /// One hint per ticket id in the list, counted as many times as it is listed.
    func addHints(ticketIDs: [Int], at: Date) throws
    /// Drops the hint if it was not hinted again since it was read (its count is unchanged).
    func clearHint(_ hint: TicketHint) throws

    /// Records a failed read; returns true when the ticket was not failing before.
    func recordTicketFailure(ticketID: Int, error: String, at: Date) throws -> Bool
    func clearTicketFailures(_ ticketIDs: [Int]) throws

    func insertToken(hash: String, user: String, helpdeskUserID: Int, role: Principal.Role, at: Date) throws
    /// Revokes every active token of `user`; returns how many.
    func revokeTokens(user: String, at: Date) throws -> Int
}

extension LedgerReader {
    public func usageOverTime(contractID: String, periodKey: String) throws -> [(at: Date, usedSeconds: Int)] {
        var total = 0
        return try countedEntries(contractID: contractID, periodKey: periodKey).map { counted in
            total += counted.entry.billedSeconds
            return (counted.entry.workedAt, total)
        }
    }
}

extension LedgerReader {
    public func entries(ticketIDs: [Int]) throws -> [Int: [LedgerEntry]] {
        var result: [Int: [LedgerEntry]] = [:]
        for id in Set(ticketIDs) { result[id] = try entries(ticketID: id) }
        return result
    }
}

extension LedgerWriter {
    public func insertEntries(_ entries: [LedgerEntry]) throws {
        for entry in entries { _ = try insertEntry(entry) }
    }

    public func rememberSignatures(_ signatures: [String], at now: Date) throws -> [Bool] {
        try signatures.map { try rememberSignature($0, at: now) }
    }

    public func addHints(ticketIDs: [Int], at now: Date) throws {
        for id in ticketIDs { try addHint(ticketID: id, at: now) }
    }
}
