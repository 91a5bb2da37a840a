import Foundation
import HourLedgerCore
import HourLedgerUseCases

/// A contract's balance for one period, in the shape the API, the CLI and scripts share.
public struct ContractBalance: Sendable, Codable, Equatable {
    public var id: String
    public var name: String
    public var timezone: String
    public var billingMode: Billing.Mode
    public var periodKey: String
    /// ISO 8601 with the contract's own offset, e.g. 2026-11-01T00:00:00+01:00.
    public var periodStart: String
    public var periodEnd: String?
    public var quotaSeconds: Int
    public var carriedInSeconds: Int
    /// Purchased hours usable in this period (top-ups added in it and what is left of earlier ones).
    public var topUpSeconds: Int
    /// quota + carried in + top-ups.
    public var availableSeconds: Int
    /// Billed seconds, after rounding.
    public var usedSeconds: Int
    public var rawSeconds: Int
    public var expiredSeconds: Int
    public var overageSeconds: Int
    /// available − used − expired; negative in overage.
    public var remainingSeconds: Int
    /// Carried-in hours that expire at the end of this period unless used.
    public var expiringAtEndSeconds: Int
    public var percentUsed: Double
    public var entryCount: Int
    public var closed: Bool
    /// Carry-overs, top-ups and expiries booked in this period.
    public var movements: [BlockMovement]
    /// When the block runs out at the current burn rate; only for the running period of a block contract. Worked
    /// out as of the start of the minute, so that balances read within one minute are equal and their JSON is kept
    /// (`BalanceJSON.Kept`) rather than written again for every read.
    public var forecast: DepletionForecast?

    enum CodingKeys: String, CodingKey {
        case id, name, timezone, closed, movements, forecast
        case billingMode = "billing_mode", periodKey = "period_key", periodStart = "period_start", periodEnd = "period_end"
        case quotaSeconds = "quota_seconds", carriedInSeconds = "carried_in_seconds", availableSeconds = "available_seconds"
        case usedSeconds = "used_seconds", rawSeconds = "raw_seconds", expiredSeconds = "expired_seconds"
        case topUpSeconds = "top_up_seconds"
        case overageSeconds = "overage_seconds", remainingSeconds = "remaining_seconds", expiringAtEndSeconds = "expiring_at_end_seconds"
        case percentUsed = "percent_used", entryCount = "entry_count"
    }

    public init(contract: Contract, row: BalanceRow, now: Date? = nil) {
        let zone = contract.calendar.timeZone
        id = contract.id
        name = contract.name
        timezone = contract.timeZone
        billingMode = contract.billing.mode
        periodKey = row.periodKey
        periodStart = ISOStamp.string(row.periodStart, in: zone)
        periodEnd = row.periodEnd.map { ISOStamp.string($0, in: zone) }
        quotaSeconds = row.quotaSeconds
        carriedInSeconds = row.carriedInSeconds
        topUpSeconds = row.topUpSeconds
        availableSeconds = row.availableSeconds
        usedSeconds = row.usedSeconds
        rawSeconds = row.rawSeconds
        expiredSeconds = row.expiredSeconds
        overageSeconds = row.overageSeconds
        remainingSeconds = row.remainingSeconds
        expiringAtEndSeconds = row.expiringAtEndSeconds
        percentUsed = row.percentUsed
        entryCount = row.entryCount
        closed = row.closed
        movements = row.movements
        if let now, contract.billing.mode == .block, !row.closed, row.periodStart <= now {
            let minute = Date(timeIntervalSince1970: (now.timeIntervalSince1970 / 60).rounded(.down) * 60)
            forecast = DepletionForecast(usedSeconds: row.usedSeconds, remainingSeconds: row.remainingSeconds,
                                         periodStart: row.periodStart, periodEnd: row.periodEnd, now: max(minute, row.periodStart))
        }
    }
}

extension Ledger {
    /// Each contract's balance for the period running at `instant`, in the shape the API, the CLI and scripts share;
    /// contracts whose stored figures are damaged are reported apart, the others are unaffected.
    public func contractBalances(at instant: Date? = nil) throws -> (balances: [ContractBalance], failures: [ContractFailure]) {
        let now = instant ?? clock.now()
        let (current, failures) = try currentBalances(at: now)
        return (current.map { ContractBalance(contract: $0.0, row: $0.1, now: now) }, failures)
    }
}
