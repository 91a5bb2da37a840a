import Foundation

/// The ranges every number and date must lie in where it enters HourLedger (API, CLI, config, helpdesk data).
/// Beyond them a value is refused with an error naming it, so no later sum, product or calendar walk can overflow
/// or run for minutes.
public enum Bounds {
    /// The earliest and latest instants HourLedger stores at all: 1970-01-01 to 2199-12-31, UTC.
    public static let firstInstant = Date(timeIntervalSince1970: 0)
    public static let lastInstant = Date(timeIntervalSince1970: 7_258_118_400)  // 2200-01-01T00:00:00Z

    /// Time logged in HourLedger (a manual entry or an edit): at most one day per entry.
    public static let entrySeconds = 0...86_400
    /// A manual entry may not start before this day, nor more than a day after now.
    public static let earliestEntry = Date(timeIntervalSince1970: 946_684_800)  // 2000-01-01T00:00:00Z
    public static let entryLeadSeconds: TimeInterval = 86_400

    /// A helpdesk task's duration: anything beyond a year is a data error, not work.
    public static let helpdeskTaskSeconds = 0...31_622_400

    /// Hours in the config (quota, carry-over cap).
    public static let configHours = 0.0...1_000_000.0
    /// Contract days in the config (starts, expires).
    public static let configYears = 2000...2199
    /// One top-up: a second to 100,000 hours.
    public static let topUpSeconds = 1...360_000_000
    /// A top-up's price in minor units: up to a billion in major units.
    public static let topUpPrice = 0...100_000_000_000
    /// Contract priorities.
    public static let priority = -1_000_000...1_000_000

    /// Seconds a stored balance or entry can plausibly hold (about 31,700 years); beyond, the stored data is damaged.
    public static let storedSeconds = 0...1_000_000_000_000

    /// Reports and lists span at most this many years.
    public static let reportYears = 25

    /// Checks the start of a manual entry or an edit.
    public static func checkEntryStart(_ date: Date, now: Date) -> String? {
        if date < earliestEntry { return "must not be before 2000-01-01" }
        if date > now.addingTimeInterval(entryLeadSeconds) { return "must not be more than a day in the future" }
        return nil
    }

    /// Checks a manual entry's duration.
    public static func checkEntrySeconds(_ seconds: Int) -> String? {
        entrySeconds.contains(seconds) ? nil : "must be between 0 and 86400 seconds (one day), got \(seconds)"
    }

    /// True when an instant can be stored and calendared.
    public static func isStorable(_ date: Date) -> Bool { date >= firstInstant && date < lastInstant }
}

/// RFC 3339 date-times as people and scripts send them: `2026-11-21T09:00:00Z`, `…T09:00:00.5+01:00`.
/// Strict: an impossible day (2026-02-30) or hour is refused, never moved. Fractions of a second are dropped, since
/// the ledger counts whole seconds.
public enum Timestamp {
    public static func parse(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        var index = 0
        func number(_ digits: Int) -> Int? {
            guard index + digits <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[index..<(index + digits)] {
                guard byte >= 0x30, byte <= 0x39 else { return nil }
                value = value * 10 + Int(byte - 0x30)
            }
            index += digits
            return value
        }
        func expect(_ allowed: Set<UInt8>) -> Bool {
            guard index < bytes.count, allowed.contains(bytes[index]) else { return false }
            index += 1
            return true
        }
        guard let year = number(4), expect([UInt8(ascii: "-")]), let month = number(2), expect([UInt8(ascii: "-")]), let day = number(2),
              expect([UInt8(ascii: "T"), UInt8(ascii: "t"), UInt8(ascii: " ")]),
              let hour = number(2), expect([UInt8(ascii: ":")]), let minute = number(2), expect([UInt8(ascii: ":")]), let second = number(2)
        else { return nil }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            let start = index
            while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 { index += 1 }
            guard index > start else { return nil }
        }
        guard index < bytes.count else { return nil }
        var offset = 0
        switch bytes[index] {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            index += 1
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            let sign = bytes[index] == UInt8(ascii: "-") ? -1 : 1
            index += 1
            guard let hours = number(2), expect([UInt8(ascii: ":")]), let minutes = number(2), hours <= 23, minutes <= 59 else { return nil }
            offset = sign * (hours * 3600 + minutes * 60)
        default:
            return nil
        }
        guard index == bytes.count, CivilDate.isValid(year: year, month: month, day: day), hour <= 23, minute <= 59, second <= 60 else {
            return nil
        }
        // A leap second counts as the last second of its minute.
        let seconds = CivilDate.daysSince1970(year: year, month: month, day: day) * 86_400 + hour * 3600 + minute * 60 + min(second, 59)
        return Date(timeIntervalSince1970: TimeInterval(seconds - offset))
    }
}

extension CivilDate {
    /// True for a day that exists in the proleptic Gregorian calendar.
    public static func isValid(year: Int, month: Int, day: Int) -> Bool {
        guard (1...12).contains(month), day >= 1 else { return false }
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
        let lengths = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        return day <= lengths[month - 1]
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm): constant time, any year.
    public static func daysSince1970(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}

/// Text people send (notes, reasons): kept exactly as given or refused, never cut.
public enum TextRules {
    /// Why `text` cannot be stored as given: a control character other than tab and line breaks. NUL in particular
    /// would end the text early in SQLite's and the helpdesks' C strings.
    public static func controlCharacterProblem(_ text: String) -> String? {
        for (offset, scalar) in text.unicodeScalars.enumerated()
        where (scalar.value < 0x20 && scalar != "\t" && scalar != "\n" && scalar != "\r") || scalar.value == 0x7F {
            let name = scalar.value == 0 ? "NUL" : String(format: "U+%04X", scalar.value)
            return "must not contain control characters (\(name) at character \(offset + 1))"
        }
        return nil
    }
}

extension TextRules {
    /// Helpdesk text as the ledger can store it. SQLite's C strings would end it at a NUL, so a NUL becomes "␀"
    /// (U+2400) and everything after it is kept.
    public static func storable(_ text: String) -> String {
        guard text.utf8.contains(0) else { return text }
        return text.replacingOccurrences(of: "\u{0}", with: "\u{2400}")
    }
}
