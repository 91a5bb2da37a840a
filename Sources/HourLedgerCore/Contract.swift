import Foundation

/// A customer contract as declared in the configuration: who it covers and how its hours are counted.
public struct Contract: Sendable, Equatable, Codable {
    public var id: String
    public var name: String
    /// The helpdesk entity (GLPI) or organization (iTop) the contract covers; nil when its rules say who it covers.
    public var entity: Int?
    public var includeSubentities: Bool
    public var match: MatchRule
    /// Higher wins when several contracts match one ticket; ties go to the contract declared first.
    public var priority: Int
    public var quotaSeconds: Int
    public var period: PeriodKind
    public var starts: CivilDate
    /// The last day covered, inclusive; nil means open-ended.
    public var expires: CivilDate?
    public var timeZone: String
    public var rounding: RoundingPolicy
    /// Entries logged in HourLedger wait for a manager's approval before they count.
    public var approvalRequired: Bool
    public var billing: Billing
    /// Unused block hours that move to the next period; nil means they lapse.
    public var carryOver: CarryOverPolicy?
    /// Percentages of the available hours at which an alert fires, once per period each.
    public var alertThresholds: [Int]
    /// An alert, once per ticket, when one of the contract's tickets is solved or closed with no time logged at all.
    public var alertUntimed: Bool = false
    /// Who besides staff sees the contract on the dashboard; nil means the people of its own entity or organisation.
    public var visibleTo: Audience? = nil
    /// Customers see the money (rates, invoice preview), not only hours.
    public var customersSeeMoney: Bool = false
    /// The customer as the accounting knows them (a name or an account number), for the accounting export; the
    /// contract's name when not given.
    public var customer: String? = nil

    public init(
        id: String, name: String, entity: Int?, includeSubentities: Bool = false, match: MatchRule = .init(),
        priority: Int = 0, quotaSeconds: Int, period: PeriodKind = .monthly, starts: CivilDate, expires: CivilDate? = nil,
        timeZone: String = "UTC", rounding: RoundingPolicy = .none, approvalRequired: Bool = false,
        billing: Billing = Billing(), carryOver: CarryOverPolicy? = nil, alertThresholds: [Int] = []
    ) {
        self.id = id
        self.name = name
        self.entity = entity
        self.includeSubentities = includeSubentities
        self.match = match
        self.priority = priority
        self.quotaSeconds = quotaSeconds
        self.period = period
        self.starts = starts
        self.expires = expires
        self.timeZone = timeZone
        self.rounding = rounding
        self.approvalRequired = approvalRequired
        self.billing = billing
        self.carryOver = carryOver
        self.alertThresholds = alertThresholds
    }

    public var calendar: Calendar {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: timeZone) ?? TimeZone(identifier: "UTC")!
        return calendar
    }

    /// The period that holds `instant`, computed in the contract's own time zone.
    public func period(containing instant: Date) -> Period? {
        PeriodCalculator(kind: period, starts: starts, expires: expires, calendar: calendar).period(containing: instant)
    }
}

/// Ticket attributes a contract requires: AND between keys, OR inside a list, nil means any.
public struct MatchRule: Sendable, Equatable, Codable {
    /// Entities or organizations besides the contract's own `entity`.
    public var entities: [Int]?
    /// Assigned groups (GLPI) or teams (iTop).
    public var groups: [Int]?
    /// ITIL categories (GLPI) or service subcategories (iTop).
    public var categories: [Int]?
    public var services: [Int]?
    /// Ticket classes (iTop: UserRequest, Incident).
    public var classes: [String]?
    /// A query the helpdesk evaluates (iTop OQL, GLPI criteria); the tickets it selects are kept in step by polling.
    public var query: String?
    /// The helpdesk's own contract this one is (a GLPI Contract id): tickets linked to it there count here, whatever
    /// the other rules say, and go back to the rules when the link is removed.
    public var linkedContract: Int? = nil

    public init(entities: [Int]? = nil, groups: [Int]? = nil, categories: [Int]? = nil, services: [Int]? = nil, classes: [String]? = nil,
                query: String? = nil) {
        self.entities = entities
        self.groups = groups
        self.categories = categories
        self.services = services
        self.classes = classes
        self.query = query
    }
}

/// A calendar day without a time zone, as written in the config (`2026-01-01`).
public struct CivilDate: Sendable, Equatable, Hashable, Codable, Comparable, CustomStringConvertible {
    public var year: Int
    public var month: Int
    public var day: Int

    public init(year: Int, month: Int, day: Int) {
        self.year = year
        self.month = month
        self.day = day
    }

    /// Parses `YYYY-MM-DD`, refusing impossible days such as 2026-02-30.
    public init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
              let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]),
              (1...12).contains(m), d >= 1
        else { return nil }
        var utc = Calendar(identifier: .gregorian)
        utc.timeZone = TimeZone(identifier: "UTC")!
        guard let first = utc.date(from: DateComponents(year: y, month: m, day: 1)),
              let days = utc.range(of: .day, in: .month, for: first), days.contains(d)
        else { return nil }
        self.init(year: y, month: m, day: d)
    }

    public var description: String { String(format: "%04d-%02d-%02d", year, month, day) }

    public static func < (a: CivilDate, b: CivilDate) -> Bool {
        (a.year, a.month, a.day) < (b.year, b.month, b.day)
    }

    /// Midnight at the start of this day in `calendar`'s time zone.
    public func startOfDay(in calendar: Calendar) -> Date {
        calendar.date(from: DateComponents(year: year, month: month, day: day))!
    }
}
