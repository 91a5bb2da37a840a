import Foundation

/// One carry-over or expiry: each is its own line, so a balance can be explained line by line.
public struct BlockMovement: Sendable, Equatable, Hashable, Codable {
    public enum Kind: String, Sendable, Codable {
        /// Unused hours of `origin` that this period may use.
        case carriedIn = "carried_in"
        /// Hours of `origin` lost at the end of this period.
        case expired
        /// Purchased hours (the top-up `origin`) this period may use after its quota and carried-in hours.
        case topUp = "top_up"
    }

    public var kind: Kind
    /// The period the movement is booked in.
    public var periodKey: String
    /// The period the hours were bought in.
    public var originKey: String
    public var seconds: Int
    public var reason: String

    public init(kind: Kind, periodKey: String, originKey: String, seconds: Int, reason: String) {
        self.kind = kind
        self.periodKey = periodKey
        self.originKey = originKey
        self.seconds = seconds
        self.reason = reason
    }

    enum CodingKeys: String, CodingKey {
        case kind, seconds, reason
        case periodKey = "period_key", originKey = "origin_key"
    }
}

/// One period of a contract, explained: remaining = quota + carried in + top-ups − used − expired.
public struct PeriodStatement: Sendable, Equatable {
    public var index: Int
    public var period: Period
    public var quotaSeconds: Int
    public var carriedInSeconds: Int
    /// Purchased hours usable in this period: those added in it and what is left of earlier ones.
    public var topUpSeconds: Int
    public var usedSeconds: Int
    /// Hours lost when the period closed; zero while it runs.
    public var expiredSeconds: Int
    /// Time used beyond the quota, carried-in and purchased hours (block contracts only).
    public var overageSeconds: Int
    /// Unused hours that move on to the next period.
    public var carriedOutSeconds: Int
    public var closed: Bool
    public var movements: [BlockMovement]

    public var availableSeconds: Int { quotaSeconds + carriedInSeconds + topUpSeconds }
    /// Negative when the period is in overage.
    public var remainingSeconds: Int { availableSeconds - usedSeconds - expiredSeconds }
    /// Unused hours of this period's balance that expire when it ends, if nothing uses them first.
    public var expiringAtEndSeconds: Int
}

/// The running account of a contract's block: quota per period, carry-over consumed oldest first, purchased top-ups
/// after both, and expiry. Pure: the same used seconds, top-ups and clock always give the same statements.
public enum BlockLedger {
    /// Statements from the contract's first period through the one holding `now` (and any later period with usage).
    /// `used` is keyed by period key. Voided top-ups, and any on a contract that is not a block, count for nothing.
    public static func statements(for contract: Contract, used: [String: Int], topUps: [TopUp] = [], now: Date) -> [PeriodStatement] {
        statements(for: contract, used: used, topUps: topUps, now: now, only: nil)
    }

    /// With `only`, just that period's statement. Without carry-over or top-ups periods are independent, so it is
    /// computed directly (constant time); otherwise the chain from the first period is needed.
    static func statements(for contract: Contract, used: [String: Int], topUps: [TopUp] = [], now: Date, only: Int?) -> [PeriodStatement] {
        let calculator = PeriodCalculator(kind: contract.period, starts: contract.starts, expires: contract.expires,
                                          calendar: contract.calendar)
        let carry = contract.billing.mode == .block ? contract.carryOver : nil
        // Each live top-up becomes usable in the period it was added in (the first, if added before the contract
        // began) and lapses when the period holding its expiry day ends.
        let purchases: [(topUp: TopUp, firstIndex: Int, lastIndex: Int)] = contract.billing.mode != .block ? [] : topUps
            .filter { $0.voidedAt == nil && $0.seconds > 0 && $0.contractID == contract.id }
            .sorted { $0.id < $1.id }
            .compactMap { topUp in
                guard let first = topUp.firstPeriodIndex(calculator) else { return nil }
                let last = topUp.expires.map { calculator.index(containing: $0.startOfDay(in: contract.calendar)) ?? Int.max / 2 } ?? Int.max / 2
                return (topUp, first, max(first, last))
            }
        // Purchased hours left: the top-up, seconds left, last period index they can be used in.
        var bought: [(topUp: TopUp, seconds: Int, lastIndex: Int)] = []
        // Keys are the periods' first days (YYYY-MM-DD), so they sort as dates: usage after now is followed up to the
        // last key, and a key no period produces (the contract's start moved) cannot keep the walk going.
        let lastUsedKey = used.filter { $0.value != 0 }.keys.max()
        // Lots of unused hours: origin period, seconds left, last period index they can be used in.
        var lots: [(origin: String, seconds: Int, lastIndex: Int)] = []
        var result: [PeriodStatement] = []
        var index = carry == nil && purchases.isEmpty ? (only ?? 0) : 0
        while true {
            let period = calculator.period(index: index)
            if let end = period.end, end <= period.start { break }
            if period.start > now && lastUsedKey.map({ period.key > $0 }) ?? true { break }
            if index > 100_000 { break }
            let usedSeconds = used[period.key] ?? 0
            var movements: [BlockMovement] = lots.map {
                BlockMovement(kind: .carriedIn, periodKey: period.key, originKey: $0.origin, seconds: $0.seconds, reason: "unused hours carried over")
            }
            let carriedIn = lots.reduce(0) { $0 + $1.seconds }
            let lastIndex = index + (carry.map { $0.expiresAfterPeriods ?? Int.max / 2 } ?? 0)
            lots.append((period.key, contract.quotaSeconds, lastIndex))
            for purchase in purchases where purchase.firstIndex == index {
                bought.append((purchase.topUp, purchase.topUp.seconds, purchase.lastIndex))
            }
            // The soonest to lapse is used first.
            bought.sort { ($0.lastIndex, $0.topUp.id) < ($1.lastIndex, $1.topUp.id) }
            let topUpSeconds = bought.reduce(0) { $0 + $1.seconds }
            movements += bought.map {
                BlockMovement(kind: .topUp, periodKey: period.key, originKey: $0.topUp.ref, seconds: $0.seconds,
                              reason: $0.seconds == $0.topUp.seconds ? "purchased hours, \($0.topUp.label)" : "purchased hours left of \($0.topUp.label)")
            }
            // Consume the oldest hours first, then the purchased ones.
            var toConsume = usedSeconds
            for i in lots.indices where toConsume > 0 {
                let take = min(lots[i].seconds, toConsume)
                lots[i].seconds -= take
                toConsume -= take
            }
            for i in bought.indices where toConsume > 0 {
                let take = min(bought[i].seconds, toConsume)
                bought[i].seconds -= take
                toConsume -= take
            }
            let overage = contract.billing.mode == .block ? toConsume : 0
            lots.removeAll { $0.seconds <= 0 }
            bought.removeAll { $0.seconds <= 0 }
            let closed = period.end.map { $0 <= now } ?? false
            var expired = 0
            let expiring = (carry == nil ? 0 : lots.filter { $0.lastIndex <= index }.reduce(0) { $0 + $1.seconds })
                + bought.filter { $0.lastIndex <= index }.reduce(0) { $0 + $1.seconds }
            if closed {
                for lot in bought where lot.lastIndex <= index {
                    expired += lot.seconds
                    movements.append(BlockMovement(kind: .expired, periodKey: period.key, originKey: lot.topUp.ref, seconds: lot.seconds,
                                                   reason: "\(lot.topUp.label) lapsed" + (lot.topUp.expires.map { " (usable through \($0))" } ?? "")))
                }
                bought.removeAll { $0.lastIndex <= index }
            }
            if closed, let carry {
                var kept: [(origin: String, seconds: Int, lastIndex: Int)] = []
                for lot in lots {
                    if lot.lastIndex <= index {
                        expired += lot.seconds
                        movements.append(BlockMovement(kind: .expired, periodKey: period.key, originKey: lot.origin, seconds: lot.seconds,
                                                       reason: "unused \(carry.expiresAfterPeriods ?? 0) period(s) after its own"))
                    } else {
                        kept.append(lot)
                    }
                }
                // Over the cap, the oldest hours go first: they are the nearest to expiring anyway.
                var excess = kept.reduce(0) { $0 + $1.seconds } - carry.maxSeconds
                for i in kept.indices where excess > 0 {
                    let cut = min(kept[i].seconds, excess)
                    kept[i].seconds -= cut
                    excess -= cut
                    expired += cut
                    movements.append(BlockMovement(kind: .expired, periodKey: period.key, originKey: kept[i].origin, seconds: cut,
                                                   reason: "over the carry-over cap"))
                }
                lots = kept.filter { $0.seconds > 0 }
            } else if closed || carry == nil {
                lots = []
            }
            let carriedOut = closed && carry != nil ? lots.reduce(0) { $0 + $1.seconds } : 0
            result.append(PeriodStatement(index: index, period: period, quotaSeconds: contract.quotaSeconds, carriedInSeconds: carriedIn,
                                          topUpSeconds: topUpSeconds, usedSeconds: usedSeconds, expiredSeconds: expired, overageSeconds: overage,
                                          carriedOutSeconds: carriedOut, closed: closed, movements: movements,
                                          expiringAtEndSeconds: closed ? 0 : expiring))
            // Hours move on only from a closed period; the running one's are not lent to later ones.
            if !closed { lots = []; bought = [] }
            if let only, index >= only { break }
            // A one-off block has one period; an open-ended one never ends.
            guard period.end != nil, contract.period != .none else { break }
            index += 1
        }
        return only.map { only in result.filter { $0.index == only } } ?? result
    }

    /// The statement of the period holding `instant`.
    public static func statement(for contract: Contract, used: [String: Int], topUps: [TopUp] = [], at instant: Date, now: Date) -> PeriodStatement? {
        let calculator = PeriodCalculator(kind: contract.period, starts: contract.starts, expires: contract.expires, calendar: contract.calendar)
        guard let index = calculator.index(containing: instant) else { return nil }
        let start = calculator.period(index: index).start
        return statements(for: contract, used: used, topUps: topUps, now: max(now, start), only: index).first
    }
}

/// When a block runs out at the current burn rate.
public struct DepletionForecast: Sendable, Equatable, Codable {
    /// Seconds used per day so far this period.
    public var burnSecondsPerDay: Int
    /// nil when nothing was used yet, so there is no rate to project.
    public var depletesAt: Date?
    public var alreadyDepleted: Bool
    /// True when the projected date falls inside the current period.
    public var withinPeriod: Bool

    enum CodingKeys: String, CodingKey {
        case burnSecondsPerDay = "burn_seconds_per_day", depletesAt = "depletes_at", alreadyDepleted = "already_depleted"
        case withinPeriod = "within_period"
    }

    public init(usedSeconds: Int, remainingSeconds: Int, periodStart: Date, periodEnd: Date?, now: Date) {
        let elapsed = max(60, now.timeIntervalSince(periodStart))
        let rate = Double(usedSeconds) / elapsed
        burnSecondsPerDay = Int((rate * 86_400).rounded())
        alreadyDepleted = usedSeconds > 0 && remainingSeconds <= 0
        if !alreadyDepleted, rate > 0 {
            depletesAt = now.addingTimeInterval((Double(remainingSeconds) / rate).rounded(.up))
        } else {
            depletesAt = nil
        }
        withinPeriod = alreadyDepleted || (depletesAt.map { date in periodEnd.map { date < $0 } ?? true } ?? false)
    }
}
