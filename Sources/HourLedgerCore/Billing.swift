import Foundation

/// How a contract turns time into money. Rates are integer minor units (cents) per hour.
public struct Billing: Sendable, Equatable, Codable {
    public enum Mode: String, Sendable, Codable, CaseIterable {
        /// A quota of hours per period, plus carry-over; time beyond it is overage.
        case block
        /// Every billable entry is billed at the rate.
        case payg
        /// Time is recorded, never invoiced.
        case unlimited
    }

    /// How pay-as-you-go time is laid out on an invoice.
    public enum LineGrouping: String, Sendable, Codable, CaseIterable {
        case entry, ticket
    }

    public var mode: Mode
    /// ISO 4217 code, e.g. EUR.
    public var currency: String
    /// The pay-as-you-go rate per hour.
    public var rate: Int?
    /// The rate per hour of time beyond a block.
    public var overageRate: Int?
    /// A fixed amount invoiced for each block period, if the block is sold per period.
    public var blockFee: Int?
    /// Per-technician rates per hour; they override `rate` (payg) and `overageRate` (block).
    public var technicianRates: [Int: Int]
    public var lines: LineGrouping

    public init(mode: Mode = .block, currency: String = "EUR", rate: Int? = nil, overageRate: Int? = nil, blockFee: Int? = nil,
                technicianRates: [Int: Int] = [:], lines: LineGrouping = .ticket) {
        self.mode = mode
        self.currency = currency
        self.rate = rate
        self.overageRate = overageRate
        self.blockFee = blockFee
        self.technicianRates = technicianRates
        self.lines = lines
    }

    /// The hourly rate that applies to `technician`'s time, if any rate does.
    public func rate(for technician: Int) -> Int? {
        if let own = technicianRates[technician] { return own }
        switch mode {
        case .block: return overageRate
        case .payg: return rate
        case .unlimited: return nil
        }
    }

    /// `seconds` at `ratePerHour`, in minor units, half a minor unit rounding up. Whole hours and the rest are
    /// multiplied apart, so a year of seconds at the highest rate stays far inside 64 bits.
    public static func amount(seconds: Int, ratePerHour: Int) -> Int {
        let (hours, rest) = seconds.quotientAndRemainder(dividingBy: 3600)
        return hours * ratePerHour + (rest * ratePerHour + 1800) / 3600
    }
}

/// Unused block hours that move to the next period.
public struct CarryOverPolicy: Sendable, Equatable, Codable {
    /// At most this much moves into a period; the oldest hours beyond the cap expire.
    public var maxSeconds: Int
    /// Hours from a period can still be used in this many following periods; nil means they never expire.
    public var expiresAfterPeriods: Int?

    public init(maxSeconds: Int, expiresAfterPeriods: Int? = 1) {
        self.maxSeconds = maxSeconds
        self.expiresAfterPeriods = expiresAfterPeriods
    }
}

/// Seconds as signed `h:mm`, the way invoice lines and helpdesk notes show time to people.
public enum HoursText {
    public static func format(_ seconds: Int) -> String {
        (seconds < 0 ? "-" : "") + String(format: "%d:%02d", abs(seconds) / 3600, abs(seconds) % 3600 / 60)
    }

    /// Hours as people type them, exactly: `10`, `2.5` (decimal hours, up to six places) or `1:30`, `1:30:15`. Nil
    /// when the text is none of these, or decimal hours that are not a whole number of seconds (0.0001 h).
    public static func seconds(parsing text: String) -> Int? {
        let text = text.trimmingCharacters(in: .whitespaces)
        guard !text.isEmpty, text.count <= 20 else { return nil }
        func digits(_ part: Substring) -> Int? { part.isEmpty || !part.allSatisfy(\.isASCII) || !part.allSatisfy(\.isNumber) ? nil : Int(part) }
        if text.contains(":") {
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            guard (2...3).contains(parts.count), let h = digits(parts[0]), h <= 1_000_000,
                  let m = digits(parts[1]), parts[1].count == 2, m < 60 else { return nil }
            var s = 0
            if parts.count == 3 {
                guard let value = digits(parts[2]), parts[2].count == 2, value < 60 else { return nil }
                s = value
            }
            return h * 3600 + m * 60 + s
        }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let whole = digits(parts[0]), whole <= 1_000_000 else { return nil }
        guard parts.count == 2 else { return whole * 3600 }
        guard parts[1].count <= 6, let fraction = digits(parts[1]) else { return nil }
        var scale = 1
        for _ in 0..<parts[1].count { scale *= 10 }
        guard fraction * 3600 % scale == 0 else { return nil }
        return whole * 3600 + fraction * 3600 / scale
    }

    /// `h:mm`, or `h:mm:ss` when the seconds are not whole minutes: a 20 s timer is `0:00:20`, never `0:00`.
    public static func precise(_ seconds: Int) -> String {
        abs(seconds) % 60 == 0 ? format(seconds) : format(seconds) + String(format: ":%02d", abs(seconds) % 60)
    }
}

extension Calendar {
    /// The Gregorian calendar in UTC.
    public static var utc: Calendar {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }
}
