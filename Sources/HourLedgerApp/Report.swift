import Foundation
import HourLedgerStore

/// Text renderings shared by the CLI commands.
public enum Report {
    public static func balances(_ balances: [ContractBalance], format: String) -> String {
        switch format {
        case "json":
            return json(balances)
        case "csv":
            var out = "id,period_start,period_end,quota_seconds,used_seconds,raw_seconds,remaining_seconds,percent_used,entry_count\n"
            for b in balances {
                out += [csv(b.id), b.periodStart, b.periodEnd ?? "", "\(b.quotaSeconds)", "\(b.usedSeconds)", "\(b.rawSeconds)",
                        "\(b.remainingSeconds)", "\(b.percentUsed)", "\(b.entryCount)"].joined(separator: ",") + "\n"
            }
            return out
        default:
            let rows = balances.map { b in
                [b.id, String(b.periodStart.prefix(10)), hours(b.quotaSeconds), hours(b.usedSeconds), hours(b.remainingSeconds),
                 String(format: "%.1f%%", b.percentUsed)]
            }
            return table(["CONTRACT", "PERIOD", "QUOTA", "USED", "REMAINING", "USED %"], rows)
        }
    }

    public static func unmatched(_ tickets: [UnmatchedTicket], format: String) -> String {
        switch format {
        case "json":
            return json(tickets)
        case "csv":
            return "ticket_id,name,entity,groups,category,raw_seconds,reason\n" + tickets.map {
                ["\($0.ticketID)", csv($0.name), "\($0.entity)", csv($0.groups.map(String.init).joined(separator: " ")), "\($0.category)",
                 "\($0.rawSeconds)", csv($0.reason)].joined(separator: ",")
            }.joined(separator: "\n") + (tickets.isEmpty ? "" : "\n")
        default:
            if tickets.isEmpty { return "no unmatched tickets\n" }
            return table(["TICKET", "ENTITY", "GROUPS", "CATEGORY", "TIME", "REASON"], tickets.map {
                ["\($0.ticketID)", "\($0.entity)", $0.groups.map(String.init).joined(separator: ","), "\($0.category)", hours($0.rawSeconds), $0.reason]
            })
        }
    }

    /// Seconds as h:mm:ss, signed, so an overrun shows as negative remaining time.
    public static func hours(_ seconds: Int) -> String {
        let sign = seconds < 0 ? "-" : ""
        let s = abs(seconds)
        return String(format: "%@%d:%02d:%02d", sign, s / 3600, s % 3600 / 60, s % 60)
    }

    static func json(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(value)) ?? Data("[]".utf8), as: UTF8.self) + "\n"
    }

    static func csv(_ field: String) -> String {
        field.contains(where: { ",\"\n".contains($0) }) ? "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : field
    }

    static func table(_ header: [String], _ rows: [[String]]) -> String {
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces)
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n") + "\n"
    }
}
