import Foundation

/// A period's stored totals: what its counted entries add up to.
public struct PeriodUsage: Sendable, Equatable {
    public var usedSeconds: Int
    public var rawSeconds: Int
    public var entryCount: Int

    public init(usedSeconds: Int, rawSeconds: Int, entryCount: Int) {
        self.usedSeconds = usedSeconds
        self.rawSeconds = rawSeconds
        self.entryCount = entryCount
    }
}

/// One period of a contract's balance: remaining = quota + carried in + top-ups − used − expired.
public struct BalanceRow: Sendable, Equatable {
    public var contractID: String
    public var periodKey: String
    public var periodStart: Date
    public var periodEnd: Date?
    public var quotaSeconds: Int
    public var usedSeconds: Int
    public var rawSeconds: Int
    public var entryCount: Int
    public var carriedInSeconds = 0
    /// Purchased hours usable in this period (see `TopUp`).
    public var topUpSeconds = 0
    public var expiredSeconds = 0
    public var overageSeconds = 0
    /// Unused hours moved on to the next period when this one closed.
    public var carriedOutSeconds = 0
    public var expiringAtEndSeconds = 0
    public var closed = false
    public var movements: [BlockMovement] = []

    public var availableSeconds: Int { quotaSeconds + carriedInSeconds + topUpSeconds }
    /// True when the period holds `instant`.
    public func holds(_ instant: Date) -> Bool { periodStart <= instant && periodEnd.map { instant < $0 } ?? true }
    public var remainingSeconds: Int { availableSeconds - usedSeconds - expiredSeconds }
    /// Used share of the available hours in percent, to two decimals.
    public var percentUsed: Double {
        availableSeconds > 0 ? (Double(usedSeconds) * 10000 / Double(availableSeconds)).rounded() / 100 : 0
    }

    public init(statement: PeriodStatement, contractID: String, rawSeconds: Int, entryCount: Int) {
        self.contractID = contractID
        periodKey = statement.period.key
        periodStart = statement.period.start
        periodEnd = statement.period.end
        quotaSeconds = statement.quotaSeconds
        usedSeconds = statement.usedSeconds
        self.rawSeconds = rawSeconds
        self.entryCount = entryCount
        carriedInSeconds = statement.carriedInSeconds
        topUpSeconds = statement.topUpSeconds
        expiredSeconds = statement.expiredSeconds
        overageSeconds = statement.overageSeconds
        carriedOutSeconds = statement.carriedOutSeconds
        expiringAtEndSeconds = statement.expiringAtEndSeconds
        closed = statement.closed
        movements = statement.movements
    }

    /// Every period of `contract` from its start through the one running at `now`, from the stored totals, with
    /// carry-over and expiry worked out. A stored figure beyond any real one means the ledger row is damaged: that
    /// contract fails, never the rest.
    public static func statements(of contract: Contract, usage: [String: PeriodUsage], topUps: [TopUp] = [], now: Date) throws -> [BalanceRow] {
        for (key, figures) in usage.sorted(by: { $0.key < $1.key }) {
            for (column, value) in [("used_seconds", figures.usedSeconds), ("raw_seconds", figures.rawSeconds)]
            where !Bounds.storedSeconds.contains(value) {
                throw DamagedLedger(description: "contract \(contract.id): the stored \(column) of period \(key) is \(value), beyond any real "
                                    + "figure; the ledger row is damaged (check the entries of that period)")
            }
        }
        return BlockLedger.statements(for: contract, used: usage.mapValues(\.usedSeconds), topUps: topUps, now: now).map {
            BalanceRow(statement: $0, contractID: contract.id, rawSeconds: usage[$0.period.key]?.rawSeconds ?? 0,
                       entryCount: usage[$0.period.key]?.entryCount ?? 0)
        }
    }
}

/// Stored figures that no real ledger can hold: the contract they belong to cannot be worked out until they are fixed.
public struct DamagedLedger: Error, CustomStringConvertible, Sendable, Equatable {
    public let description: String

    public init(description: String) { self.description = description }
}

/// A contract whose balance could not be worked out, and why; the other contracts are unaffected.
public struct ContractFailure: Sendable, Equatable, Codable {
    public var contractID: String
    public var error: String

    public init(contractID: String, error: String) {
        self.contractID = contractID
        self.error = error
    }

    enum CodingKeys: String, CodingKey {
        case error
        case contractID = "contract_id"
    }
}
