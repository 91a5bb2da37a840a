import Foundation

public enum PeriodKind: String, Sendable, Codable, CaseIterable {
    case monthly, quarterly, yearly, none

    var months: Int? {
        switch self {
        case .monthly: 1
        case .quarterly: 3
        case .yearly: 12
        case .none: nil
        }
    }
}

/// A half-open interval [start, end) of a contract's life, over which its quota applies.
public struct Period: Sendable, Equatable, Hashable, Codable {
    public var start: Date
    /// Exclusive; nil for a one-off block with no expiry.
    public var end: Date?
    /// The first day of the period in the contract's time zone, used as the period's key.
    public var key: String

    public init(start: Date, end: Date?, key: String) {
        self.start = start
        self.end = end
        self.key = key
    }

    public func contains(_ instant: Date) -> Bool {
        instant >= start && (end.map { instant < $0 } ?? true)
    }
}

/// Period arithmetic anchored at the contract's start date. Each boundary is the anchor plus n whole periods, so a
/// contract starting on the 31st renews on the last day of shorter months and back on the 31st after them.
public struct PeriodCalculator: Sendable {
    public let kind: PeriodKind
    public let starts: CivilDate
    public let expires: CivilDate?
    public let calendar: Calendar

    public init(kind: PeriodKind, starts: CivilDate, expires: CivilDate?, calendar: Calendar) {
        self.kind = kind
        self.starts = starts
        self.expires = expires
        self.calendar = calendar
    }

    private var anchor: Date { starts.startOfDay(in: calendar) }

    private var hardEnd: Date? {
        guard let expires else { return nil }
        return calendar.date(byAdding: .day, value: 1, to: expires.startOfDay(in: calendar))
    }

    public func boundary(_ index: Int) -> Date {
        guard let months = kind.months else { return anchor }
        let components = DateComponents(year: starts.year, month: starts.month + index * months, day: 1)
        let firstOfMonth = calendar.date(from: components)!
        let daysInMonth = calendar.range(of: .day, in: .month, for: firstOfMonth)!.count
        let day = min(starts.day, daysInMonth)
        return calendar.date(byAdding: .day, value: day - 1, to: firstOfMonth)!
    }

    public func period(containing instant: Date) -> Period? {
        guard instant >= anchor else { return nil }
        if let hardEnd, instant >= hardEnd { return nil }
        guard let index = index(containing: instant) else { return nil }
        return period(index: index)
    }

    /// The index of the period holding `instant`, from the months between it and the anchor: at most two boundary
    /// checks, whatever the distance. Nil before the anchor or after the contract expired.
    public func index(containing instant: Date) -> Int? {
        guard instant >= anchor else { return nil }
        if let hardEnd, instant >= hardEnd { return nil }
        guard let months = kind.months else { return 0 }
        let local = calendar.dateComponents([.year, .month], from: instant)
        let monthsSinceAnchor = (local.year! - starts.year) * 12 + (local.month! - starts.month)
        var index = max(0, monthsSinceAnchor / months)
        while index > 0, boundary(index) > instant { index -= 1 }
        while boundary(index + 1) <= instant { index += 1 }
        return index
    }

    /// The period with this index (0 is the first), in constant time. A one-off block (`none`) has only period 0.
    public func period(index: Int) -> Period {
        guard kind.months != nil else { return Period(start: anchor, end: hardEnd, key: starts.description) }
        let start = boundary(index)
        var end = boundary(index + 1)
        if let hardEnd, hardEnd < end { end = hardEnd }
        let day = calendar.dateComponents([.year, .month, .day], from: start)
        return Period(start: start, end: end, key: CivilDate(year: day.year!, month: day.month!, day: day.day!).description)
    }
}

extension Contract {
    /// Resolves how people name a period: `current`, `previous`, `2026-11` (the period that starts in that month, else
    /// the one holding its first day) or `2026-11-15` (the period holding that day). Nil when the contract has no such period.
    public func period(named spec: String, now: Date) -> Period? {
        let calendar = self.calendar
        switch spec {
        case "", "current":
            return period(containing: now)
        case "previous":
            guard let current = period(containing: now) else { return nil }
            return period(containing: current.start.addingTimeInterval(-1))
        default:
            if let day = CivilDate(spec) { return period(containing: day.startOfDay(in: calendar)) }
            guard let first = CivilDate(spec + "-01") else { return nil }
            let monthStart = first.startOfDay(in: calendar)
            let nextMonth = calendar.date(byAdding: .month, value: 1, to: monthStart)!
            if let holding = period(containing: monthStart) {
                if holding.start >= monthStart { return holding }
                if let end = holding.end, end < nextMonth, let next = period(containing: end) { return next }
                return holding
            }
            // The contract may start later in that month.
            let start = starts.startOfDay(in: calendar)
            return start >= monthStart && start < nextMonth ? period(containing: start) : nil
        }
    }
}
