import Foundation

/// An instant as ISO 8601 with a zone's offset at that instant (`2026-11-01T00:00:00+01:00`, `Z` in UTC), the text
/// `ISO8601DateFormatter` gives. Written out by hand because the contract list shows two per contract on every read,
/// and a formatter costs far more to make than the read it serves.
public enum ISOStamp {
    public static func string(_ date: Date, in zone: TimeZone) -> String {
        let offset = zone.secondsFromGMT(for: date)
        let local = Int(date.timeIntervalSince1970.rounded(.down)) + offset
        let days = local >= 0 ? local / 86_400 : (local - 86_399) / 86_400
        let secondOfDay = local - days * 86_400
        let (year, month, day) = civil(fromDays: days)
        var text: [UInt8] = []
        text.reserveCapacity(28)
        func digits(_ value: Int, _ width: Int) {
            var divisor = 1
            for _ in 1..<width { divisor *= 10 }
            if value >= divisor * 10 { text.append(contentsOf: String(value).utf8); return }
            while divisor > 0 {
                text.append(UInt8(ascii: "0") + UInt8(value / divisor % 10))
                divisor /= 10
            }
        }
        func separator(_ character: Unicode.Scalar) { text.append(UInt8(ascii: character)) }
        digits(year, 4); separator("-"); digits(month, 2); separator("-"); digits(day, 2); separator("T")
        digits(secondOfDay / 3600, 2); separator(":"); digits(secondOfDay / 60 % 60, 2); separator(":"); digits(secondOfDay % 60, 2)
        if offset == 0 {
            separator("Z")
        } else {
            let minutes = abs(offset) / 60
            separator(offset < 0 ? "-" : "+"); digits(minutes / 60, 2); separator(":"); digits(minutes % 60, 2)
            // Local mean time before standard zones (Paris until 1911: +00:09:21) has seconds too.
            if abs(offset) % 60 != 0 { separator(":"); digits(abs(offset) % 60, 2) }
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// Year, month and day of a count of days since 1970-01-01 in the proleptic Gregorian calendar
    /// (Howard Hinnant's `civil_from_days`).
    static func civil(fromDays days: Int) -> (Int, Int, Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shifted = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shifted + 2) / 5 + 1
        let month = shifted < 10 ? shifted + 3 : shifted - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
