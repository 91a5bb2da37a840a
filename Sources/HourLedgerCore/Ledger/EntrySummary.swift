import Foundation

/// How an entry is described to people in the helpdesk, in plain text; each helpdesk's adapter adds its markup.
public enum EntrySummary {
    /// One line: "0:15 h billable, worked 0:00:20 on 2026-11-21 by technician 7, rounded up to 15 min, on contract
    /// ACME (acme)". The day is the contract's own.
    public static func summary(_ entry: WorkEntry, contract: Contract?) -> String {
        let calendar = contract?.calendar ?? Calendar.utc
        let day = calendar.dateComponents([.year, .month, .day], from: entry.workedAt)
        let date = CivilDate(year: day.year ?? 1970, month: day.month ?? 1, day: day.day ?? 1)
        var text = "\(HoursText.format(entry.billedSeconds)) h \(entry.kind.rawValue), worked \(HoursText.precise(entry.rawSeconds)) on \(date) "
            + "by technician \(entry.technician)"
        if entry.billedSeconds != entry.rawSeconds { text += ", rounded \(contract?.rounding.spoken ?? entry.rounding)" }
        text += contract.map { ", on contract \($0.name) (\($0.id))" } ?? " (no contract matched)"
        return text
    }

    /// The write-back's text after the marker: the summary, then the technician's note.
    public static func line(_ entry: WorkEntry, contract: Contract?) -> String {
        summary(entry, contract: contract) + (entry.note.isEmpty ? "" : ": " + entry.note)
    }
}
