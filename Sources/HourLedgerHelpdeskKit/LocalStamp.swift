import Foundation
import HourLedgerCore

/// A helpdesk's wall-clock stamp, `Y-m-d H:i:s` in its own time zone with no offset: how GLPI and iTop both send
/// dates.
public enum LocalStamp {
    public static func parse(_ text: String, timeZone: TimeZone) -> Date? {
        var parts: [Int] = []
        parts.reserveCapacity(6)
        var current = 0, digits = 0
        for byte in text.utf8 {
            if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                // No field has more than four digits: a longer run is not a date (and could overflow).
                guard digits < 4 else { return nil }
                current = current * 10 + Int(byte - UInt8(ascii: "0"))
                digits += 1
            } else if digits > 0 {
                parts.append(current)
                current = 0
                digits = 0
            }
        }
        if digits > 0 { parts.append(current) }
        // Strict: an impossible day is refused, never moved to the next month; years outside 1970-2199 are data errors.
        guard parts.count >= 5, (1970...2199).contains(parts[0]), CivilDate.isValid(year: parts[0], month: parts[1], day: parts[2]),
              parts[3] < 24, parts[4] < 60, parts.count < 6 || parts[5] < 60 else { return nil }
        let local = CivilDate.daysSince1970(year: parts[0], month: parts[1], day: parts[2]) * 86400 + parts[3] * 3600 + parts[4] * 60
            + (parts.count > 5 ? parts[5] : 0)
        // Local wall time to UTC: take the zone's offset at the guess, then once more in case a DST change lies between.
        let first = timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(local)))
        var utc = local - first
        let second = timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(utc)))
        if second != first { utc = local - second }
        return Date(timeIntervalSince1970: TimeInterval(utc))
    }

    public static func format(_ date: Date, timeZone: TimeZone) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return String(format: "%04d-%02d-%02d %02d:%02d:%02d", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
    }

    /// `stamp` moved back by `seconds`, in the same form; nil when it is not a stamp.
    public static func movedBack(_ stamp: String, by seconds: Int, timeZone: TimeZone) -> String? {
        parse(stamp, timeZone: timeZone).map { format($0.addingTimeInterval(-TimeInterval(seconds)), timeZone: timeZone) }
    }
}
