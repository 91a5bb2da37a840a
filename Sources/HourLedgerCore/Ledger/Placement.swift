import Foundation

/// Where an entry lands: its contract and period, what it bills after rounding, and whether it counts yet.
///
/// Every way time enters or moves (a helpdesk task read, a timer stopped, a manual entry, an edit, a ticket moving to
/// another contract) places it through `place`, so the rules are written once.
public struct EntryPlacement: Sendable, Equatable {
    public var contractID: String?
    public var period: Period?
    public var billedSeconds: Int
    /// The rounding applied, stored with the entry.
    public var rounding: String
    public var approval: Approval
    public var kind: EntryKind

    /// Why the entry is being placed, which decides its approval.
    public enum Occasion: Sendable, Equatable {
        /// Time read from a helpdesk task: the helpdesk is the record, so it counts at once.
        case helpdeskTask
        /// A person logs new time: on a contract that requires approval it waits for a manager.
        case logged
        /// A person edits an entry that stood at `was`. A rejected entry is resubmitted; on a contract that requires
        /// approval, an approved entry whose time, day or kind changed is too: what was approved is not what it says now.
        case edited(was: Approval, countedFieldsChanged: Bool)
        /// The entry follows its ticket to another contract (or none): its approval stays.
        case moved(Approval)
    }

    /// Places `rawSeconds` worked at `workedAt` on `contract` (nil: the ticket matches no contract). `periods` caches
    /// period lookups across many placements in one write.
    public static func place(rawSeconds: Int, workedAt: Date, kind: EntryKind, on contract: Contract?, occasion: Occasion,
                             periods: PeriodLookup? = nil) -> EntryPlacement {
        let approval: Approval
        switch occasion {
        case .helpdeskTask: approval = .approved
        case .logged: approval = contract?.approvalRequired == true ? .pending : .approved
        case .edited(let was, let changed):
            if was == .rejected {
                approval = .pending
            } else if was == .approved, changed, contract?.approvalRequired == true {
                approval = .pending
            } else {
                approval = was
            }
        case .moved(let was): approval = was
        }
        guard let contract else {
            return EntryPlacement(contractID: nil, period: nil, billedSeconds: rawSeconds, rounding: RoundingPolicy.none.description,
                                  approval: approval, kind: kind)
        }
        let period = periods?.period(of: contract, containing: workedAt) ?? (periods == nil ? contract.period(containing: workedAt) : nil)
        return EntryPlacement(contractID: contract.id, period: period, billedSeconds: contract.rounding.billedSeconds(forRaw: rawSeconds),
                              rounding: contract.rounding.description, approval: approval, kind: kind)
    }

    /// Whether the placed entry draws from its period's balance.
    public var counts: Bool { contractID != nil && period != nil && kind.drawsFromBalance && approval == .approved }
}

/// Period lookups for one write: calendars are built once per contract, and the last period found is tried first.
/// Not shared between threads: one lives for one transaction.
public final class PeriodLookup {
    private var calculators: [String: PeriodCalculator] = [:]
    private var recent: [String: Period] = [:]

    public init() {}

    public func period(of contract: Contract, containing instant: Date) -> Period? {
        if let period = recent[contract.id], period.contains(instant) { return period }
        let calculator = calculators[contract.id] ?? PeriodCalculator(kind: contract.period, starts: contract.starts,
                                                                       expires: contract.expires, calendar: contract.calendar)
        calculators[contract.id] = calculator
        let period = calculator.period(containing: instant)
        if let period { recent[contract.id] = period }
        return period
    }
}

/// How one write changes the stored balances: integer deltas per contract period, applied in the same transaction
/// as the entries, so entries and balances never disagree.
public struct BalanceDeltas: Sendable {
    public struct Key: Hashable, Sendable {
        public var contractID: String
        public var periodKey: String
    }

    /// One period's change. `period` and `quotaSeconds` are known when time was added there, so a period row can be
    /// created; a removal alone only adjusts an existing row.
    public struct Change: Sendable, Equatable {
        public var contractID: String
        public var periodKey: String
        public var usedSeconds = 0
        public var rawSeconds = 0
        public var entryCount = 0
        public var period: Period?
        public var quotaSeconds: Int?
    }

    public private(set) var changes: [Key: Change] = [:]
    /// Contracts to settle after the write though no figure moved: a ticket of theirs was just solved or closed, and
    /// the untimed alert should look at it now, not at the next minute's tick.
    public private(set) var touched: Set<String> = []

    public init() {}

    public mutating func touch(_ contractID: String) { touched.insert(contractID) }

    /// Takes a stored entry out of its period, if it counted there.
    public mutating func remove(_ entry: LedgerEntry) {
        guard entry.counts, let contract = entry.contractID, let period = entry.periodKey else { return }
        let key = Key(contractID: contract, periodKey: period)
        var change = changes[key] ?? Change(contractID: contract, periodKey: period)
        change.usedSeconds -= entry.billedSeconds
        change.rawSeconds -= entry.rawSeconds
        change.entryCount -= 1
        changes[key] = change
    }

    /// Adds placed time to its period, if it counts there.
    public mutating func add(_ placement: EntryPlacement, rawSeconds: Int, contract: Contract?) {
        guard placement.counts, let contract, let period = placement.period else { return }
        let key = Key(contractID: contract.id, periodKey: period.key)
        var change = changes[key] ?? Change(contractID: contract.id, periodKey: period.key)
        change.usedSeconds += placement.billedSeconds
        change.rawSeconds += rawSeconds
        change.entryCount += 1
        change.period = period
        change.quotaSeconds = contract.quotaSeconds
        changes[key] = change
    }

    /// The changes worth writing: any figure moved, or a period that gained an entry. Their contracts are settled
    /// (carry-over, alerts) after the write.
    public var effective: [Change] {
        changes.values.filter { $0.usedSeconds != 0 || $0.rawSeconds != 0 || $0.entryCount != 0 || $0.period != nil }
            .sorted { ($0.contractID, $0.periodKey) < ($1.contractID, $1.periodKey) }
    }
}
