import Foundation
import HourLedgerCore
import HourLedgerUseCases

/// Text renderings shared by the CLI and the API: an aligned table for people, JSON and CSV (with a header row) for tools.
public enum Report {
    public static func balances(_ balances: [ContractBalance], format: String) -> String {
        switch format {
        case "json":
            return json(balances)
        case "csv":
            // New columns go at the end, so scripts written against earlier versions keep working.
            var out = "id,period_start,period_end,quota_seconds,used_seconds,raw_seconds,remaining_seconds,percent_used,entry_count,"
                + "carried_in_seconds,expired_seconds,overage_seconds,depletes_at,top_up_seconds\n"
            for b in balances {
                out += [csv(b.id), b.periodStart, b.periodEnd ?? "", "\(b.quotaSeconds)", "\(b.usedSeconds)", "\(b.rawSeconds)",
                        "\(b.remainingSeconds)", "\(b.percentUsed)", "\(b.entryCount)", "\(b.carriedInSeconds)", "\(b.expiredSeconds)",
                        "\(b.overageSeconds)", b.forecast?.depletesAt.map { isoDate($0) } ?? "", "\(b.topUpSeconds)"].joined(separator: ",") + "\n"
            }
            return out
        default:
            let rows = balances.map { b in
                [b.id, b.billingMode.rawValue, String(b.periodStart.prefix(10)), hours(b.quotaSeconds), hours(b.carriedInSeconds), hours(b.usedSeconds),
                 hours(b.remainingSeconds), String(format: "%.1f%%", b.percentUsed),
                 b.forecast?.alreadyDepleted == true ? "depleted" : (b.forecast?.depletesAt.map { String(isoDate($0).prefix(10)) } ?? "-")]
            }
            return table(["CONTRACT", "BILLING", "PERIOD", "QUOTA", "CARRIED IN", "USED", "REMAINING", "USED %", "RUNS OUT"], rows)
        }
    }

    /// Tickets linked to no contract, in the helpdesk's own words (GLPI entity, group, category; iTop org, team,
    /// subcategory) and with its ticket reference where it has one (iTop R-000042).
    public static func unmatched(_ tickets: [UnmatchedTicket], format: String, terms: HelpdeskTerms) -> String {
        let withRef = tickets.contains { !$0.ref.isEmpty }
        switch format {
        case "json":
            return json(tickets)
        case "csv":
            let header = ["ticket_id"] + (withRef ? ["ref"] : []) + ["name", terms.entity, terms.group + "s", terms.category, "raw_seconds", "reason"]
            return header.joined(separator: ",") + "\n" + tickets.map {
                (["\($0.ticketID)"] + (withRef ? [csv($0.ref)] : []) + [csv($0.name), "\($0.entity)", csv($0.groups.map(String.init).joined(separator: " ")),
                                                                       "\($0.category)", "\($0.rawSeconds)", csv($0.reason)]).joined(separator: ",")
            }.joined(separator: "\n") + (tickets.isEmpty ? "" : "\n")
        default:
            if tickets.isEmpty { return "no unmatched tickets\n" }
            let header = ["TICKET"] + (withRef ? ["REF"] : []) + [terms.entity.uppercased(), terms.group.uppercased() + "S", terms.category.uppercased(),
                                                                "TIME", "REASON"]
            return table(header, tickets.map {
                ["\($0.ticketID)"] + (withRef ? [$0.ref] : []) + ["\($0.entity)", $0.groups.map(String.init).joined(separator: ","), "\($0.category)",
                                                                 hours($0.rawSeconds), $0.reason]
            })
        }
    }

    /// The ledger against the helpdesk: a summary line, each contract's totals, then every drift with its cause.
    public static func reconciliation(_ result: Reconciliation, format: String) -> String {
        switch format {
        case "json":
            return json(result)
        case "csv":
            return "ticket_id,contract_id,ledger_seconds,helpdesk_seconds,drift_seconds,cause,detail\n" + result.drifts.map {
                ["\($0.ticketID)", csv($0.contractID ?? ""), "\($0.ledgerSeconds)", "\($0.helpdeskSeconds)", "\($0.driftSeconds)", $0.cause.rawValue,
                 csv($0.detail)].joined(separator: ",")
            }.joined(separator: "\n") + (result.drifts.isEmpty ? "" : "\n")
        default:
            var text = "\(result.ticketsCompared) tickets compared in \(result.requests) requests: ledger \(hours(result.ledgerSeconds)), "
                + "helpdesk \(hours(result.helpdeskSeconds)), \(result.drifts.count) drifting\n\n"
            text += table(["CONTRACT", "TICKETS", "LEDGER", "HELPDESK", "DRIFT"], result.contracts.map {
                [$0.contractID ?? "(none)", "\($0.tickets)", hours($0.ledgerSeconds), hours($0.helpdeskSeconds), hours($0.driftSeconds)]
            })
            if !result.drifts.isEmpty {
                text += "\n" + table(["TICKET", "CONTRACT", "LEDGER", "HELPDESK", "DRIFT", "CAUSE", "DETAIL"], result.drifts.map {
                    ["\($0.ticketID)", $0.contractID ?? "-", hours($0.ledgerSeconds), hours($0.helpdeskSeconds), hours($0.driftSeconds),
                     $0.cause.rawValue, $0.detail]
                })
            }
            return text
        }
    }

    /// Seconds as h:mm:ss, signed, so an overrun shows as negative remaining time.
    public static func hours(_ seconds: Int) -> String {
        let s = abs(seconds)
        let minutes = s % 3600 / 60, rest = s % 60
        return (seconds < 0 ? "-" : "") + "\(s / 3600):" + (minutes < 10 ? "0" : "") + "\(minutes):" + (rest < 10 ? "0" : "") + "\(rest)"
    }

    static func json(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        // ISO 8601, as the API writes every instant: the encoder's default is seconds since 2001.
        encoder.dateEncodingStrategy = .iso8601
        return String(decoding: (try? encoder.encode(value)) ?? Data("[]".utf8), as: UTF8.self) + "\n"
    }

    /// RFC 4180 quoting, and a leading quote on text a spreadsheet would run as a formula (`=`, `+`, `-`, `@`).
    static func csv(_ field: String) -> String {
        var field = field
        if let first = field.first, "=+-@\t\r".contains(first), Int(field) == nil { field = "'" + field }
        return field.contains(where: { ",\"\n\r".contains($0) }) ? "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : field
    }

    static func table(_ header: [String], _ rows: [[String]]) -> String {
        // Widths in Unicode scalars: cheaper than grapheme counting over thousands of rows, and the same for the ASCII we print.
        var widths = header.map(\.unicodeScalars.count)
        for row in rows {
            for (column, cell) in row.enumerated() where column < widths.count { widths[column] = max(widths[column], cell.unicodeScalars.count) }
        }
        var out = ""
        for cells in [header] + rows {
            var line = ""
            for (column, cell) in cells.enumerated() {
                if column > 0 { line += "  " }
                line += cell
                if column < cells.count - 1 { line += String(repeating: " ", count: max(0, widths[column] - cell.unicodeScalars.count)) }
            }
            out += line
            out += "\n"
        }
        return out
    }

    static func isoDate(_ date: Date) -> String { date.formatted(.iso8601) }

    /// Minor units as a decimal amount with two places, e.g. 12345 → 123.45.
    public static func money(_ minor: Int) -> String {
        (minor < 0 ? "-" : "") + String(format: "%d.%02d", abs(minor) / 100, abs(minor) % 100)
    }

    public static func invoice(_ preview: InvoicePreview, format: String) -> String {
        switch format {
        case "json":
            return json(preview)
        case "csv":
            var out = "kind,description,ticket_id,technician,seconds,rate_per_hour,amount,currency,entries\n"
            for line in preview.lines {
                let ticket: String = line.ticketID.map(String.init) ?? ""
                let technician: String = line.technician.map(String.init) ?? ""
                let rate: String = line.ratePerHour.map(String.init) ?? ""
                let fields: [String] = [line.kind.rawValue, csv(line.description), ticket, technician, "\(line.seconds)", rate, "\(line.amount)",
                                        preview.currency, csv(line.entries.joined(separator: " "))]
                out += fields.joined(separator: ",") + "\n"
            }
            return out
        default:
            var out = "\(preview.contractName) (\(preview.contractID)), \(preview.mode.rawValue), period \(preview.periodKey)"
                + (preview.partial ? " (to date)" : "") + "\n"
            out += table(["LINE", "TIME", "RATE/H", "AMOUNT", "ENTRIES"], preview.lines.map {
                [$0.description, hours($0.seconds), $0.ratePerHour.map(money) ?? "-", money($0.amount), "\($0.entries.count)"]
            })
            out += "TOTAL \(money(preview.totalAmount)) \(preview.currency); not billed: \(hours(preview.unbilledSeconds)) in \(preview.unbilledEntries.count) entries\n"
            for warning in preview.warnings { out += "warning: \(warning)\n" }
            return out
        }
    }

    /// `Ledger.accountingLines` in the columns an accounting import takes: CSV with money in major units, JSON in
    /// minor units. A period not written as one of the forms it takes is refused.
    public static func accounting(ledger: Ledger, period spec: String, contractID: String?, format: String, now: Date) throws -> String {
        guard ["current", "previous"].contains(spec) || CivilDate(spec) != nil || CivilDate(spec + "-01") != nil else {
            throw APIFailure(.badRequest, "period must be current, previous, YYYY-MM or YYYY-MM-DD, got '\(spec.prefix(40))'", field: "period")
        }
        let lines = try ledger.accountingLines(period: spec, contractID: contractID, now: now)
        if format == "json" { return json(lines) }
        return "customer,contract_id,contract_name,period,description,quantity_hours,unit_price,amount,currency,entry_refs\n" + lines.map { line in
            [csv(line.customer), csv(line.contractID), csv(line.contractName), line.periodKey, csv(line.description), line.quantityHours,
             line.unitPrice.map(money) ?? "", money(line.amount), line.currency, csv(line.entries.joined(separator: " "))].joined(separator: ",") + "\n"
        }.joined()
    }

    public enum Kind: String, CaseIterable, Sendable {
        case technicians, contracts, tickets, types, categories, blocks, untimed
    }

    /// One report over `range`, rendered; the API and `hourledger report` both call this.
    public static func render(_ kind: Kind, ledger: Ledger, range: ReportRange, timeZone: TimeZone, contractID: String?, format: String,
                              now: Date? = nil) throws -> String {
        func split(_ t: TimeSplit) -> [String] { ["\(t.billableSeconds)", "\(t.prepaidSeconds)", "\(t.internalSeconds)", "\(t.totalSeconds)", "\(t.entryCount)"] }
        func splitHours(_ t: TimeSplit) -> [String] { [hours(t.billableSeconds), hours(t.prepaidSeconds), hours(t.internalSeconds), hours(t.totalSeconds)] }
        let splitHeader = ["billable_seconds", "prepaid_seconds", "internal_seconds", "total_seconds", "entry_count"]
        let splitTable = ["BILLABLE", "PREPAID", "INTERNAL", "TOTAL"]
        switch kind {
        case .technicians:
            let rows = try ledger.technicianReport(range: range, timeZone: timeZone, contractID: contractID)
            return shaped(rows, format: format, csvHeader: ["technician", "month"] + splitHeader, csvRow: { ["\($0.technician)", $0.month] + split($0.time) },
                          tableHeader: ["TECHNICIAN", "MONTH"] + splitTable + ["BILLABLE %"],
                          tableRow: { ["\($0.technician)", $0.month] + splitHours($0.time) + [percent($0.time.billableSeconds, of: $0.time.totalSeconds)] })
        case .contracts:
            let rows = try ledger.contractReport(range: range, contractID: contractID)
            return shaped(rows, format: format, csvHeader: ["contract_id", "name", "period_key"] + splitHeader + ["ticket_count"],
                          csvRow: { [csv($0.contractID), csv($0.name), $0.periodKey] + split($0.time) + ["\($0.ticketCount)"] },
                          tableHeader: ["CONTRACT", "PERIOD"] + splitTable + ["TICKETS"],
                          tableRow: { [$0.contractID, $0.periodKey] + splitHours($0.time) + ["\($0.ticketCount)"] })
        case .tickets:
            let rows = try ledger.ticketReport(range: range, contractID: contractID)
            return shaped(rows, format: format,
                          csvHeader: ["ticket_id", "name", "contract_id"] + splitHeader + ["first_worked_at", "last_worked_at", "type", "category"],
                          csvRow: { ["\($0.ticketID)", csv($0.name), csv($0.contractID ?? "")] + split($0.time)
                                    + [isoDate($0.firstWorkedAt), isoDate($0.lastWorkedAt), csv($0.type), csv($0.category)] },
                          tableHeader: ["TICKET", "CONTRACT"] + splitTable + ["TYPE", "NAME"],
                          tableRow: { ["\($0.ticketID)", $0.contractID ?? "-"] + splitHours($0.time) + [$0.type.isEmpty ? "-" : $0.type, $0.name] })
        case .types, .categories:
            let rows = kind == .types ? try ledger.typeReport(range: range, contractID: contractID)
                                      : try ledger.categoryReport(range: range, contractID: contractID)
            let column = kind == .types ? "type" : "category"
            return shaped(rows, format: format, csvHeader: ["contract_id", column, "ticket_count"] + splitHeader,
                          csvRow: { [csv($0.contractID ?? ""), csv($0.group), "\($0.ticketCount)"] + split($0.time) },
                          tableHeader: ["CONTRACT", column.uppercased(), "TICKETS"] + splitTable + ["BILLABLE %"],
                          tableRow: { [$0.contractID ?? "-", $0.group.isEmpty ? "-" : $0.group, "\($0.ticketCount)"] + splitHours($0.time)
                                      + [percent($0.time.billableSeconds, of: $0.time.totalSeconds)] })
        case .untimed:
            let rows = try ledger.untimedTicketReport(range: range, contractID: contractID)
            return shaped(rows, format: format, csvHeader: ["ticket_id", "ref", "name", "contract_id", "status", "closed_at"],
                          csvRow: { ["\($0.ticketID)", csv($0.ref), csv($0.name), csv($0.contractID ?? ""), $0.status, isoDate($0.closedAt)] },
                          tableHeader: ["TICKET", "CONTRACT", "STATUS", "CLOSED", "NAME"],
                          tableRow: { [$0.ref.isEmpty ? "\($0.ticketID)" : $0.ref, $0.contractID ?? "-", $0.status, isoDate($0.closedAt), $0.name] })
        case .blocks:
            let rows = try ledger.blockUsageReport(range: range, contractID: contractID, now: now)
            return shaped(rows, format: format,
                          csvHeader: ["contract_id", "name", "mode", "period_key", "quota_seconds", "carried_in_seconds", "used_seconds", "overage_seconds",
                                      "expired_seconds", "remaining_seconds", "carried_out_seconds", "closed", "top_up_seconds"],
                          csvRow: { [csv($0.contractID), csv($0.name), $0.mode.rawValue, $0.periodKey, "\($0.quotaSeconds)", "\($0.carriedInSeconds)",
                                     "\($0.usedSeconds)", "\($0.overageSeconds)", "\($0.expiredSeconds)", "\($0.remainingSeconds)",
                                     "\($0.carriedOutSeconds)", "\($0.closed)", "\($0.topUpSeconds)"] },
                          tableHeader: ["CONTRACT", "PERIOD", "QUOTA", "CARRIED IN", "TOP-UPS", "USED", "OVERAGE", "EXPIRED", "REMAINING", "CARRIED OUT"],
                          tableRow: { [$0.contractID, $0.periodKey + ($0.closed ? "" : "*"), hours($0.quotaSeconds), hours($0.carriedInSeconds),
                                       hours($0.topUpSeconds),
                                       hours($0.usedSeconds), hours($0.overageSeconds), hours($0.expiredSeconds), hours($0.remainingSeconds),
                                       hours($0.carriedOutSeconds)] })
        }
    }

    static func percent(_ part: Int, of whole: Int) -> String {
        whole > 0 ? String(format: "%.1f%%", Double(part) * 100 / Double(whole)) : "-"
    }

    static func shaped<Row: Encodable>(_ rows: [Row], format: String, csvHeader: [String], csvRow: (Row) -> [String],
                                       tableHeader: [String], tableRow: (Row) -> [String]) -> String {
        switch format {
        case "json": return json(rows)
        case "csv": return csvHeader.joined(separator: ",") + "\n" + rows.map { csvRow($0).joined(separator: ",") + "\n" }.joined()
        default: return rows.isEmpty ? "no data in this range\n" : table(tableHeader, rows.map(tableRow))
        }
    }
}
