import Foundation
import HourLedgerCore
import HourLedgerUseCases

/// The ledger in memory: every table a value, every transaction a copy that replaces the original only when the
/// body returns. It answers exactly as the SQLite ledger does (the shared repository contract tests hold both to
/// it), so the API and use cases can be tested without a file, and a third store has a readable reference.
public final class MemoryLedger: LedgerRepository, @unchecked Sendable {
    /// Guards `tables`; a write holds it for the whole transaction, so writes are serialised as SQLite's are.
    private let lock = NSLock()
    private var tables = MemoryTables()
    private var closed = false

    public init() {}

    public func read<T>(_ body: (any LedgerReader) throws -> T) throws -> T {
        let snapshot = try lock.withLock {
            try checkOpen()
            return tables
        }
        return try body(MemoryTransaction(snapshot))
    }

    public func write<T>(_ body: (any LedgerWriter) throws -> T) throws -> T { try transact(body) }

    public func write<T: Sendable>(_ body: @escaping @Sendable (any LedgerWriter) throws -> T) async throws -> T { try transact(body) }

    private func transact<T>(_ body: (any LedgerWriter) throws -> T) throws -> T {
        try lock.withLock {
            try checkOpen()
            let transaction = MemoryTransaction(tables)
            let result = try body(transaction)
            try transaction.flushBook()
            tables = transaction.tables
            return result
        }
    }

    public func close() throws { lock.withLock { closed = true } }

    private func checkOpen() throws {
        if closed { throw LedgerUnavailable(reason: "the ledger is closed", detail: "in-memory ledger used after close()") }
    }
}

/// Every stored row. Instants are kept in whole seconds, as SQLite stores them.
struct MemoryTables {
    struct BalanceKey: Hashable { var contractID, periodKey: String }
    struct Balance { var start: Date; var end: Date?; var quota: Int; var usage: PeriodUsage }
    struct MovementKey: Hashable { var contractID, periodKey: String; var kind: BlockMovement.Kind; var originKey: String }
    struct Token { var user: String; var helpdeskUserID: Int; var role: Principal.Role; var revokedAt: Date? }

    var state: [String: String] = [:]
    var tickets: [Int: StoredTicket] = [:]
    var moves: [ContractMove] = []
    var entries: [Int64: LedgerEntry] = [:]
    var balances: [BalanceKey: Balance] = [:]
    /// Each contract's balance revision; the last one handed out is the ledger's.
    var balanceRevisions: [String: Int64] = [:]
    var dirty: Set<String> = []
    var movements: [MovementKey: BlockMovement] = [:]
    var topUps: [Int64: TopUp] = [:]
    var timers: [Int64: TimerRecord] = [:]
    var audit: [AuditRecord] = []
    var outbox: [Int64: OutboxItem] = [:]
    var alerts: [Int64: AlertRecord] = [:]
    var deliveries: [Int64: AlertDelivery] = [:]
    var signatures: [String: Date] = [:]
    var hints: [Int: TicketHint] = [:]
    var failures: [Int: TicketFailureRecord] = [:]
    var tokens: [String: Token] = [:]
    var books: [BookRecord] = []
    /// The last id handed out per table: ids are never reused, as with SQLite's AUTOINCREMENT.
    var lastID: [String: Int64] = [:]

    mutating func nextID(_ table: String) -> Int64 {
        let id = (lastID[table] ?? 0) + 1
        lastID[table] = id
        return id
    }
}

/// Whole seconds since 1970, truncated as the SQLite ledger stores every instant.
func whole(_ date: Date) -> Date { Date(timeIntervalSince1970: TimeInterval(Int(date.timeIntervalSince1970))) }
func wholeIfAny(_ date: Date?) -> Date? { date.map(whole) }
func seconds(_ date: Date) -> Int { Int(date.timeIntervalSince1970) }

/// One transaction: a private copy of the tables.
final class MemoryTransaction: LedgerWriter {
    var tables: MemoryTables
    /// This transaction's changes to the books, chained in at its end.
    let book = BookBuffer()

    init(_ tables: MemoryTables) { self.tables = tables }

    func flushBook() throws {
        try book.flush(at: Date(), head: { try self.bookHead(contractID: $0) }, append: { record in
            var stored = record
            stored.id = tables.nextID("book_record")
            tables.books.append(stored)
        })
    }

    func allEntries() throws -> [LedgerEntry] { entriesByID }
    func bookRecords() throws -> [BookRecord] { tables.books }
    func bookHead(contractID: String) throws -> (seq: Int, hash: String)? {
        tables.books.last { $0.contractID == contractID }.map { ($0.seq, $0.hash) }
    }

    // MARK: Sync state, tickets, moves

    func state(_ key: String) throws -> String? { tables.state[key] }
    func setState(_ key: String, _ value: String) throws { tables.state[key] = value }

    func ticket(_ id: Int) throws -> StoredTicket? { tables.tickets[id] }

    func tickets(_ ids: [Int]) throws -> [Int: StoredTicket] {
        var result: [Int: StoredTicket] = [:]
        for id in ids { if let ticket = tables.tickets[id] { result[id] = ticket } }
        return result
    }

    func liveTickets() throws -> [StoredTicket] {
        tables.tickets.values.filter { $0.removed == nil }.sorted { $0.id < $1.id }
    }

    func liveTicketIDs() throws -> Set<Int> { Set(tables.tickets.values.filter { $0.removed == nil }.map(\.id)) }

    func linkedTickets() throws -> [StoredTicket] {
        tables.tickets.values.filter { $0.removed == nil && !$0.facts.linkedContracts.isEmpty }.sorted { $0.id < $1.id }
    }

    func ticketSeconds() throws -> [TicketSeconds] {
        var result: [Int: TicketSeconds] = [:]
        for ticket in tables.tickets.values where ticket.removed == nil {
            result[ticket.id] = TicketSeconds(ticketID: ticket.id, contractID: ticket.contractID, dateMod: ticket.dateMod, helpdeskTaskSeconds: 0,
                                              writtenSeconds: 0)
        }
        for entry in tables.entries.values where result[entry.ticketID] != nil {
            switch entry.source {
            case .helpdeskTask: result[entry.ticketID]!.helpdeskTaskSeconds += entry.rawSeconds
            case .hourledger: if entry.remoteTaskID != nil { result[entry.ticketID]!.writtenSeconds += entry.billedSeconds }
            }
        }
        return result.keys.sorted().map { result[$0]! }
    }

    func ticketMatches() throws -> [Int: (contractID: String?, reason: String)] {
        tables.tickets.mapValues { ($0.contractID, $0.matchReason) }
    }

    func unmatchedTickets() throws -> [UnmatchedTicket] {
        var raw: [Int: Int] = [:]
        for entry in tables.entries.values { raw[entry.ticketID, default: 0] += entry.rawSeconds }
        return try liveTickets().filter { $0.contractID == nil }.map {
            UnmatchedTicket(ticketID: $0.id, ref: $0.facts.ref, name: $0.facts.name, entity: $0.facts.entity, groups: $0.facts.groups,
                            category: $0.facts.category, reason: $0.matchReason, rawSeconds: raw[$0.id] ?? 0)
        }
    }

    func saveTicket(_ ticket: StoredTicket) throws {
        var stored = ticket
        // What a round trip through the store keeps: the query verdicts still unknown are not stored.
        stored.facts.queryUnknown = []
        stored.syncedAt = whole(ticket.syncedAt)
        stored.removedAt = wholeIfAny(ticket.removedAt)
        stored.closedAt = wholeIfAny(ticket.closedAt)
        tables.tickets[ticket.id] = stored
    }

    func untimedTickets(closedFrom from: Date, to: Date, contractID: String?) throws -> [StoredTicket] {
        let timed = Set(tables.entries.values.filter { $0.rawSeconds > 0 }.map(\.ticketID))
            .union(tables.timers.values.filter { $0.state.status != .stopped }.map(\.ticketID))
        return tables.tickets.values.filter { ticket in
            guard let closedAt = ticket.closedAt, ticket.removed == nil, !timed.contains(ticket.id) else { return false }
            return from <= closedAt && closedAt < to && (contractID == nil || ticket.contractID == contractID)
        }.sorted { ($0.closedAt!, $0.id) < ($1.closedAt!, $1.id) }
    }

    func insertMove(_ move: ContractMove) throws {
        var move = move
        move.at = whole(move.at)
        tables.moves.append(move)
        BookChange.noteMove(move, in: book)
    }

    func moves(ticketID: Int) throws -> [ContractMove] { tables.moves.filter { $0.ticketID == ticketID } }

    // MARK: Entries

    private var entriesByID: [LedgerEntry] { tables.entries.values.sorted { $0.id < $1.id } }

    func entries(ticketID: Int) throws -> [LedgerEntry] { entriesByID.filter { $0.ticketID == ticketID } }

    func entry(key: String) throws -> LedgerEntry? { tables.entries.values.first { $0.key == key } }

    func helpdeskTaskEntries(taskIDs: [Int]) throws -> [Int: LedgerEntry] {
        let wanted = Set(taskIDs)
        var result: [Int: LedgerEntry] = [:]
        for entry in tables.entries.values where entry.source == .helpdeskTask && wanted.contains(entry.sourceID) {
            result[entry.sourceID] = entry
        }
        return result
    }

    func ownTaskIDs(among taskIDs: [Int]) throws -> Set<Int> {
        let wanted = Set(taskIDs)
        return Set(tables.entries.values.compactMap(\.remoteTaskID).filter { wanted.contains($0) })
    }

    func ownEntries(ticketID: Int?, contractID: String?) throws -> [LedgerEntry] {
        tables.entries.values.filter {
            $0.source == .hourledger && (ticketID == nil || $0.ticketID == ticketID) && (contractID == nil || $0.contractID == contractID)
        }.sorted { ($0.workedAt, $0.id) < ($1.workedAt, $1.id) }
    }

    func entries(technician: Int, from: Date, to: Date) throws -> [LedgerEntry] {
        tables.entries.values.filter { $0.technician == technician && $0.workedAt >= from && $0.workedAt < to }
            .sorted { ($0.workedAt, $0.id) < ($1.workedAt, $1.id) }
    }

    func latestCountedTicket(contractID: String, periodKey: String) throws -> Int? {
        tables.entries.values.filter { $0.contractID == contractID && $0.periodKey == periodKey && $0.counts }
            .max { ($0.updatedAt, $0.id) < ($1.updatedAt, $1.id) }?.ticketID
    }

    func countedEntries(contractID: String, periodKey: String) throws -> [(entry: LedgerEntry, ticketName: String)] {
        tables.entries.values.filter { $0.contractID == contractID && $0.periodKey == periodKey && $0.approval == .approved }
            .sorted { ($0.workedAt, $0.id) < ($1.workedAt, $1.id) }
            .map { ($0, tables.tickets[$0.ticketID]?.facts.name ?? "") }
    }

    func insertEntry(_ entry: LedgerEntry) throws -> Int64 {
        if let key = entry.key, try self.entry(key: key) != nil {
            throw LedgerStoreError("an entry with key \(key) is already stored")
        }
        if entry.source != .hourledger,
           tables.entries.values.contains(where: { $0.source == entry.source && $0.sourceID == entry.sourceID }) {
            throw LedgerStoreError("an entry of \(entry.source.rawValue) \(entry.sourceID) is already stored")
        }
        var stored = entry.stored(as: tables.nextID("entry"))
        stored.workedAt = whole(entry.workedAt)
        stored.updatedAt = whole(entry.updatedAt)
        tables.entries[stored.id] = stored
        book.note(.entry(stored), contract: stored.contractID)
        return stored.id
    }

    func updateEntry(_ entry: LedgerEntry) throws {
        guard var stored = tables.entries[entry.id] else { return }
        // What never changes once stored: where the entry came from, its ticket, key and author.
        let (source, sourceID, ticketID, key, createdBy) = (stored.source, stored.sourceID, stored.ticketID, stored.key, stored.createdBy)
        stored = entry
        (stored.source, stored.sourceID, stored.ticketID, stored.key, stored.createdBy) = (source, sourceID, ticketID, key, createdBy)
        stored.workedAt = whole(entry.workedAt)
        stored.updatedAt = whole(entry.updatedAt)
        tables.entries[entry.id] = stored
        book.note(.entry(stored), contract: stored.contractID)
    }

    func deleteEntry(id: Int64) throws {
        guard let old = tables.entries.removeValue(forKey: id) else { return }
        book.note(.deleted(old), contract: old.contractID)
    }

    func setRemoteTaskID(_ taskID: Int, entryKey: String) throws {
        for (id, entry) in tables.entries where entry.key == entryKey { tables.entries[id]?.remoteTaskID = taskID }
    }

    // MARK: Balances and carry-over

    func periodUsage(contractID: String) throws -> [String: PeriodUsage] {
        var usage: [String: PeriodUsage] = [:]
        for (key, balance) in tables.balances where key.contractID == contractID { usage[key.periodKey] = balance.usage }
        return usage
    }

    func balanceRevision() throws -> Int64 { tables.lastID["balance_revision"] ?? 0 }

    func periodUsage(changedAfter revision: Int64) throws -> [String: [String: PeriodUsage]] {
        var usage: [String: [String: PeriodUsage]] = [:]
        for (contractID, revised) in tables.balanceRevisions where revised > revision { usage[contractID] = [:] }
        for (key, balance) in tables.balances where usage[key.contractID] != nil { usage[key.contractID]![key.periodKey] = balance.usage }
        return usage
    }

    func markUnsettled(contractID: String) throws { tables.dirty.insert(contractID) }

    func applyBalanceChange(_ change: BalanceDeltas.Change) throws {
        revise(change.contractID)
        let key = MemoryTables.BalanceKey(contractID: change.contractID, periodKey: change.periodKey)
        if var balance = tables.balances[key] {
            if change.period != nil, let quota = change.quotaSeconds { balance.quota = quota }
            balance.usage.usedSeconds += change.usedSeconds
            balance.usage.rawSeconds += change.rawSeconds
            balance.usage.entryCount += change.entryCount
            tables.balances[key] = balance
        } else if let period = change.period, let quota = change.quotaSeconds {
            tables.balances[key] = .init(start: whole(period.start), end: wholeIfAny(period.end), quota: quota,
                                         usage: PeriodUsage(usedSeconds: change.usedSeconds, rawSeconds: change.rawSeconds,
                                                            entryCount: change.entryCount))
        }
    }

    func ticketBreakdown(contractID: String, periodKey: String) throws -> [TicketUsage] {
        var usage: [Int: TicketUsage] = [:]
        for entry in tables.entries.values where entry.contractID == contractID && entry.periodKey == periodKey {
            var row = usage[entry.ticketID]
                ?? TicketUsage(ticketID: entry.ticketID, name: tables.tickets[entry.ticketID]?.facts.name ?? "", usedSeconds: 0, rawSeconds: 0,
                               entryCount: 0)
            row.usedSeconds += entry.billedSeconds
            row.rawSeconds += entry.rawSeconds
            row.entryCount += 1
            usage[entry.ticketID] = row
        }
        return usage.values.sorted { ($1.usedSeconds, $0.ticketID) < ($0.usedSeconds, $1.ticketID) }
    }

    func balanceDiscrepancies() throws -> [String] {
        var sums: [MemoryTables.BalanceKey: PeriodUsage] = [:]
        for entry in tables.entries.values where entry.counts {
            guard let contract = entry.contractID, let period = entry.periodKey else { continue }
            let key = MemoryTables.BalanceKey(contractID: contract, periodKey: period)
            var sum = sums[key] ?? PeriodUsage(usedSeconds: 0, rawSeconds: 0, entryCount: 0)
            sum.usedSeconds += entry.billedSeconds
            sum.rawSeconds += entry.rawSeconds
            sum.entryCount += 1
            sums[key] = sum
        }
        return tables.balances.sorted { ($0.key.contractID, $0.key.periodKey) < ($1.key.contractID, $1.key.periodKey) }.compactMap { key, balance in
            let stored = balance.usage
            let actual = sums[key] ?? PeriodUsage(usedSeconds: 0, rawSeconds: 0, entryCount: 0)
            guard stored != actual else { return nil }
            return "\(key.contractID) \(key.periodKey): stored \(stored.usedSeconds)/\(stored.rawSeconds)/\(stored.entryCount), "
                + "entries \(actual.usedSeconds)/\(actual.rawSeconds)/\(actual.entryCount)"
        }
    }

    func dirtyContracts() throws -> Set<String> { tables.dirty }

    func resetDirtyContracts(keeping contractIDs: [String]) throws { tables.dirty = Set(contractIDs) }

    func blockMovements(contractID: String) throws -> [BlockMovement] {
        tables.movements.filter { $0.key.contractID == contractID }
            .sorted { ($0.key.periodKey, $0.key.kind.rawValue, $0.key.originKey) < ($1.key.periodKey, $1.key.kind.rawValue, $1.key.originKey) }
            .map(\.value)
    }

    func saveBlockMovement(contractID: String, _ movement: BlockMovement, at: Date) throws {
        let key = MemoryTables.MovementKey(contractID: contractID, periodKey: movement.periodKey, kind: movement.kind, originKey: movement.originKey)
        if tables.movements[key] != movement { book.note(.movement(movement), contract: contractID) }
        tables.movements[key] = movement
    }

    func deleteBlockMovement(contractID: String, _ movement: BlockMovement) throws {
        let key = MemoryTables.MovementKey(contractID: contractID, periodKey: movement.periodKey, kind: movement.kind, originKey: movement.originKey)
        if tables.movements.removeValue(forKey: key) != nil { book.note(.movementDeleted(movement), contract: contractID) }
    }

    func topUps(contractID: String?) throws -> [TopUp] {
        tables.topUps.values.filter { contractID == nil || $0.contractID == contractID }.sorted { $0.id < $1.id }
    }

    func topUps(changedAfter revision: Int64) throws -> [String: [TopUp]] {
        var result: [String: [TopUp]] = [:]
        for (contractID, revised) in tables.balanceRevisions where revised > revision { result[contractID] = [] }
        for topUp in tables.topUps.values.sorted(by: { $0.id < $1.id }) where result[topUp.contractID] != nil {
            result[topUp.contractID]!.append(topUp)
        }
        return result
    }

    func insertTopUp(_ topUp: TopUp) throws -> Int64 {
        var stored = topUp
        stored.id = tables.nextID("top_up")
        stored.addedAt = whole(topUp.addedAt)
        tables.topUps[stored.id] = stored
        revise(topUp.contractID)
        book.note(.topUp(stored), contract: stored.contractID)
        return stored.id
    }

    func voidTopUp(id: Int64, at: Date, by: String, reason: String) throws -> Bool {
        guard var topUp = tables.topUps[id], topUp.voidedAt == nil else { return false }
        topUp.voidedAt = whole(at)
        topUp.voidedBy = by
        topUp.voidReason = reason
        tables.topUps[id] = topUp
        revise(topUp.contractID)
        book.note(.topUpVoided(topUp), contract: topUp.contractID)
        return true
    }

    /// What a change to a contract's figures does besides itself: a new balance revision, and settling.
    private func revise(_ contractID: String) {
        tables.dirty.insert(contractID)
        tables.balanceRevisions[contractID] = tables.nextID("balance_revision")
    }

    // MARK: Timers and audit

    private var timersByID: [TimerRecord] { tables.timers.values.sorted { $0.id < $1.id } }

    func timer(id: Int64) throws -> TimerRecord? { tables.timers[id] }

    func openTimer(technician: Int, ticketID: Int) throws -> TimerRecord? {
        timersByID.first { $0.technician == technician && $0.ticketID == ticketID && $0.state.status != .stopped }
    }

    func timers(technician: Int?, openOnly: Bool) throws -> [TimerRecord] {
        timersByID.filter { (technician == nil || $0.technician == technician) && (!openOnly || $0.state.status != .stopped) }
    }

    func runningTimers() throws -> [TimerRecord] { timersByID.filter { $0.state.status == .running } }

    func insertTimer(_ timer: TimerRecord, at: Date) throws -> Int64 {
        if timer.state.status != .stopped, try openTimer(technician: timer.technician, ticketID: timer.ticketID) != nil {
            throw LedgerStoreError("technician \(timer.technician) already has an open timer on ticket \(timer.ticketID)")
        }
        var stored = timer
        stored.id = tables.nextID("timer")
        stored.startedAt = whole(timer.startedAt)
        tables.timers[stored.id] = stored
        return stored.id
    }

    func updateTimer(_ timer: TimerRecord, at: Date) throws {
        tables.timers[timer.id]?.state = timer.state
        tables.timers[timer.id]?.entryID = timer.entryID
    }

    func insertAudit(_ record: AuditRecord) throws {
        var record = record
        record.at = whole(record.at)
        tables.audit.append(record)
    }

    func auditTrail(ticketID: Int?, contractID: String?) throws -> [AuditRecord] {
        tables.audit.filter { (ticketID == nil || $0.ticketID == ticketID) && (contractID == nil || $0.contractID == contractID) }
    }

    // MARK: Outbox

    private var pendingOutbox: [OutboxItem] { tables.outbox.values.filter(\.isPending).sorted { $0.id < $1.id } }

    /// The oldest pending record of each ticket: the only one of its ticket that may be delivered.
    private var outboxHeads: [OutboxItem] {
        var seen = Set<Int>()
        return pendingOutbox.filter { seen.insert($0.ticketID).inserted }
    }

    func outboxItem(id: Int64) throws -> OutboxItem? { tables.outbox[id] }

    func outboxItems(entryKey: String) throws -> [OutboxItem] {
        tables.outbox.values.filter { $0.entryKey == entryKey }.sorted { $0.id < $1.id }
    }

    func pendingOutboxItems(parkedOnly: Bool, limit: Int) throws -> [OutboxItem] {
        Array(pendingOutbox.filter { !parkedOnly || $0.parkedAt != nil }.prefix(max(0, limit)))
    }

    func nextOutboxItem(now: Date, fenceSeconds: Int) throws -> OutboxItem? {
        outboxHeads.first {
            $0.parkedAt == nil && seconds($0.nextAttemptAt) <= seconds(now)
                && ($0.inDoubtSince.map { seconds($0) <= seconds(now) - fenceSeconds } ?? true)
        }
    }

    func nextOutboxWakeUp(fenceSeconds: Int) throws -> Date? {
        outboxHeads.filter { $0.parkedAt == nil }
            .map { max(seconds($0.nextAttemptAt), $0.inDoubtSince.map { seconds($0) + fenceSeconds } ?? 0) }
            .min().map { Date(timeIntervalSince1970: TimeInterval($0)) }
    }

    func outboxStats(now: Date) throws -> OutboxStats {
        let pending = pendingOutbox
        return OutboxStats(depth: pending.count, parked: pending.filter { $0.parkedAt != nil }.count,
                           inDoubt: pending.filter { $0.inDoubtSince != nil }.count,
                           oldestAgeSeconds: pending.map { seconds($0.createdAt) }.min().map { seconds(now) - $0 },
                           lastError: pending.first { $0.lastError != nil }?.lastError)
    }

    func insertOutboxItem(_ item: OutboxItem) throws -> Int64 {
        var stored = Self.wholeSeconds(item)
        stored.id = tables.nextID("outbox")
        tables.outbox[stored.id] = stored
        return stored.id
    }

    func updateOutboxItem(_ item: OutboxItem) throws {
        guard var stored = tables.outbox[item.id] else { return }
        let update = Self.wholeSeconds(item)
        stored.attempts = update.attempts
        stored.failures = update.failures
        stored.nextAttemptAt = update.nextAttemptAt
        stored.lastError = update.lastError
        stored.inDoubtSince = update.inDoubtSince
        stored.parkedAt = update.parkedAt
        stored.doneAt = update.doneAt
        stored.resolution = update.resolution
        tables.outbox[item.id] = stored
    }

    private static func wholeSeconds(_ item: OutboxItem) -> OutboxItem {
        var item = item
        item.nextAttemptAt = whole(item.nextAttemptAt)
        item.inDoubtSince = wholeIfAny(item.inDoubtSince)
        item.parkedAt = wholeIfAny(item.parkedAt)
        item.createdAt = whole(item.createdAt)
        item.doneAt = wholeIfAny(item.doneAt)
        return item
    }

    // MARK: Alerts

    func alerts(contractID: String?, limit: Int) throws -> [AlertRecord] {
        Array(tables.alerts.values.filter { contractID == nil || $0.contractID == contractID }.sorted { $0.id > $1.id }.prefix(max(0, limit)))
    }

    func alertDeliveries(alertID: Int64?) throws -> [AlertDelivery] {
        tables.deliveries.values.filter { alertID == nil || $0.alertID == alertID }.sorted { $0.id < $1.id }
    }

    func alertDelivery(id: Int64) throws -> AlertDelivery? { tables.deliveries[id] }

    func dueAlertDeliveries(now: Date, fenceSeconds: Int, limit: Int) throws -> [AlertDelivery] {
        Array(tables.deliveries.values.filter {
            $0.isPending && seconds($0.nextAttemptAt) <= seconds(now)
                && !fencedFollowup($0, now: now, fenceSeconds: fenceSeconds)
        }.sorted { $0.id < $1.id }.prefix(max(0, limit)))
    }

    func alertDeliveryStats() throws -> AlertDeliveryStats {
        let all = tables.deliveries.values.sorted { $0.id < $1.id }
        return AlertDeliveryStats(pending: all.filter(\.isPending).count, failed: all.filter { $0.failedAt != nil }.count,
                                  lastError: all.last { $0.doneAt == nil && $0.lastError != nil }?.lastError)
    }

    func insertAlert(_ alert: AlertRecord) throws -> Int64? {
        guard !tables.alerts.values.contains(where: {
            $0.contractID == alert.contractID && $0.periodKey == alert.periodKey && $0.threshold == alert.threshold
        }) else { return nil }
        var stored = alert
        stored.id = tables.nextID("alert")
        stored.firedAt = whole(alert.firedAt)
        stored.depletesAt = wholeIfAny(alert.depletesAt)
        tables.alerts[stored.id] = stored
        return stored.id
    }

    func insertAlertDelivery(_ delivery: AlertDelivery) throws -> Int64 {
        guard tables.alerts[delivery.alertID] != nil else { throw LedgerStoreError("alert \(delivery.alertID) does not exist") }
        var stored = Self.wholeSeconds(delivery)
        stored.id = tables.nextID("alert_delivery")
        tables.deliveries[stored.id] = stored
        return stored.id
    }

    func updateAlertDelivery(_ delivery: AlertDelivery) throws {
        guard var stored = tables.deliveries[delivery.id] else { return }
        let update = Self.wholeSeconds(delivery)
        stored.attempts = update.attempts
        stored.nextAttemptAt = update.nextAttemptAt
        stored.lastError = update.lastError
        stored.doneAt = update.doneAt
        stored.failedAt = update.failedAt
        stored.inDoubtSince = update.inDoubtSince
        tables.deliveries[delivery.id] = stored
    }

    private static func wholeSeconds(_ delivery: AlertDelivery) -> AlertDelivery {
        var delivery = delivery
        delivery.nextAttemptAt = whole(delivery.nextAttemptAt)
        delivery.createdAt = whole(delivery.createdAt)
        delivery.doneAt = wholeIfAny(delivery.doneAt)
        delivery.failedAt = wholeIfAny(delivery.failedAt)
        delivery.inDoubtSince = wholeIfAny(delivery.inDoubtSince)
        return delivery
    }

    // MARK: Hints, failing tickets, tokens

    func pendingHints(limit: Int) throws -> [TicketHint] {
        Array(tables.hints.values.sorted { ($0.receivedAt, $0.ticketID) < ($1.receivedAt, $1.ticketID) }.prefix(max(0, limit)))
    }

    func rememberSignature(_ signature: String, at now: Date) throws -> Bool {
        guard tables.signatures[signature] == nil else { return false }
        tables.signatures[signature] = whole(now)
        return true
    }

    func forgetSignatures(before: Date) throws {
        tables.signatures = tables.signatures.filter { seconds($0.value) >= seconds(before) }
    }

    func addHint(ticketID: Int, at now: Date) throws {
        tables.hints[ticketID, default: TicketHint(ticketID: ticketID, receivedAt: whole(now), count: 0)].count += 1
    }

    func clearHint(_ hint: TicketHint) throws {
        if tables.hints[hint.ticketID]?.count == hint.count { tables.hints[hint.ticketID] = nil }
    }

    func ticketFailures(limit: Int) throws -> [TicketFailureRecord] {
        Array(tables.failures.values.sorted { ($0.firstFailedAt, $0.ticketID) < ($1.firstFailedAt, $1.ticketID) }.prefix(max(0, limit)))
    }

    func recordTicketFailure(ticketID: Int, error: String, at now: Date) throws -> Bool {
        if var known = tables.failures[ticketID] {
            known.error = error
            known.lastFailedAt = whole(now)
            known.attempts += 1
            tables.failures[ticketID] = known
            return false
        }
        tables.failures[ticketID] = TicketFailureRecord(ticketID: ticketID, error: error, firstFailedAt: whole(now), lastFailedAt: whole(now), attempts: 1)
        return true
    }

    func clearTicketFailures(_ ticketIDs: [Int]) throws {
        for id in ticketIDs { tables.failures[id] = nil }
    }

    func principal(tokenHash: String) throws -> Principal? {
        guard let token = tables.tokens[tokenHash], token.revokedAt == nil else { return nil }
        return Principal(user: token.user, helpdeskUserID: token.helpdeskUserID, role: token.role)
    }

    func insertToken(hash: String, user: String, helpdeskUserID: Int, role: Principal.Role, at: Date) throws {
        guard tables.tokens[hash] == nil else { throw LedgerStoreError("this token is already stored") }
        tables.tokens[hash] = .init(user: user, helpdeskUserID: helpdeskUserID, role: role, revokedAt: nil)
    }

    func revokeTokens(user: String, at now: Date) throws -> Int {
        var revoked = 0
        for (hash, token) in tables.tokens where token.user == user && token.revokedAt == nil {
            tables.tokens[hash]?.revokedAt = whole(now)
            revoked += 1
        }
        return revoked
    }

    // MARK: Reports and counts

    private func approved(from: Date, to: Date, contractID: String?) -> [LedgerEntry] {
        let (from, to) = (seconds(from), seconds(to))
        return tables.entries.values.filter {
            $0.approval == .approved && seconds($0.workedAt) >= from && seconds($0.workedAt) < to && (contractID == nil || $0.contractID == contractID)
        }
    }

    func technicianTime(months: [(key: String, start: Date, end: Date)], contractID: String?) throws -> [TechnicianReportRow] {
        var rows: [TechnicianReportRow] = []
        for month in months {
            var split: [Int: TimeSplit] = [:]
            for entry in approved(from: month.start, to: month.end, contractID: contractID) {
                split[entry.technician, default: TimeSplit()].add(entry.kind, billedSeconds: entry.billedSeconds)
            }
            rows += split.map { TechnicianReportRow(technician: $0.key, month: month.key, time: $0.value) }
        }
        return rows.sorted { ($0.month, $0.technician) < ($1.month, $1.technician) }
    }

    func contractTime(from: Date, to: Date) throws -> [(contractID: String, periodKey: String, time: TimeSplit, tickets: Int)] {
        var groups: [MemoryTables.BalanceKey: (time: TimeSplit, tickets: Set<Int>)] = [:]
        for entry in approved(from: from, to: to, contractID: nil) {
            guard let contract = entry.contractID, let period = entry.periodKey else { continue }
            let key = MemoryTables.BalanceKey(contractID: contract, periodKey: period)
            groups[key, default: (TimeSplit(), [])].time.add(entry.kind, billedSeconds: entry.billedSeconds)
            groups[key]?.tickets.insert(entry.ticketID)
        }
        return groups.sorted { ($0.key.contractID, $0.key.periodKey) < ($1.key.contractID, $1.key.periodKey) }
            .map { ($0.key.contractID, $0.key.periodKey, $0.value.time, $0.value.tickets.count) }
    }

    func ticketTime(from: Date, to: Date, contractID: String?) throws -> [TicketReportRow] {
        var rows: [Int: TicketReportRow] = [:]
        for entry in approved(from: from, to: to, contractID: contractID) {
            let ticket = tables.tickets[entry.ticketID]
            var row = rows[entry.ticketID] ?? TicketReportRow(ticketID: entry.ticketID, name: ticket?.facts.name ?? "", contractID: ticket?.contractID,
                                                              type: ticket?.facts.ticketClass ?? "", category: ticket?.facts.categoryName ?? "",
                                                              time: TimeSplit(), firstWorkedAt: entry.workedAt, lastWorkedAt: entry.workedAt)
            row.time.add(entry.kind, billedSeconds: entry.billedSeconds)
            row.firstWorkedAt = min(row.firstWorkedAt, entry.workedAt)
            row.lastWorkedAt = max(row.lastWorkedAt, entry.workedAt)
            rows[entry.ticketID] = row
        }
        return rows.values.sorted { ($1.time.totalSeconds, $0.ticketID) < ($0.time.totalSeconds, $1.ticketID) }
    }

    func counts() throws -> LedgerCounts {
        let live = tables.tickets.values.filter { $0.removed == nil }
        return LedgerCounts(tickets: live.count, unmatched: live.filter { $0.contractID == nil }.count, entries: tables.entries.count,
                            alerts: tables.alerts.count, pendingHints: tables.hints.count, failingTickets: tables.failures.count)
    }
}

/// A followup whose attempt is in doubt waits out the fence; a webhook receiver de-duplicates by delivery id instead.
private func fencedFollowup(_ delivery: AlertDelivery, now: Date, fenceSeconds: Int) -> Bool {
    delivery.isFollowup && delivery.inDoubtSince.map { seconds($0) > seconds(now) - fenceSeconds } ?? false
}
