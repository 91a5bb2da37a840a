import Foundation

/// An entry as invoicing sees it: who worked, on what, how long after rounding, and what kind of time it was.
public struct InvoiceEntry: Sendable, Equatable {
    /// How the entry is named on an invoice line: its HourLedger key, or `glpi_task:<id>` for time read from the helpdesk.
    public var ref: String
    public var ticketID: Int
    public var ticketName: String
    public var technician: Int
    public var kind: EntryKind
    public var billedSeconds: Int
    public var workedAt: Date

    public init(ref: String, ticketID: Int, ticketName: String, technician: Int, kind: EntryKind, billedSeconds: Int, workedAt: Date) {
        self.ref = ref
        self.ticketID = ticketID
        self.ticketName = ticketName
        self.technician = technician
        self.kind = kind
        self.billedSeconds = billedSeconds
        self.workedAt = workedAt
    }
}

public struct InvoiceLine: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable {
        case block, overage, time
        /// Hours bought on top of the block (a top-up).
        case purchase
    }
    public var kind: Kind
    public var description: String
    public var seconds: Int
    /// Minor units per hour; nil for a fixed-fee line.
    public var ratePerHour: Int?
    /// Minor units.
    public var amount: Int
    public var ticketID: Int?
    public var technician: Int?
    /// The entries this line was computed from.
    public var entries: [String]

    public init(kind: Kind, description: String, seconds: Int, ratePerHour: Int?, amount: Int, ticketID: Int?, technician: Int?,
                entries: [String]) {
        self.kind = kind
        self.description = description
        self.seconds = seconds
        self.ratePerHour = ratePerHour
        self.amount = amount
        self.ticketID = ticketID
        self.technician = technician
        self.entries = entries
    }

    enum CodingKeys: String, CodingKey {
        case kind, description, seconds, amount, technician, entries
        case ratePerHour = "rate_per_hour", ticketID = "ticket_id"
    }
}

/// What a period would invoice, line by line.
public struct InvoicePreview: Sendable, Equatable, Codable {
    public var contractID: String
    public var contractName: String
    public var mode: Billing.Mode
    public var currency: String
    public var periodKey: String
    public var periodStart: Date
    public var periodEnd: Date?
    /// True while the period is still running: the preview is month-to-date.
    public var partial: Bool
    public var lines: [InvoiceLine]
    public var totalAmount: Int
    /// Internal time, and prepaid time on pay-as-you-go, is recorded but never invoiced.
    public var unbilledSeconds: Int
    public var unbilledEntries: [String]
    /// Problems an account manager must fix before invoicing, e.g. a missing rate.
    public var warnings: [String]

    enum CodingKeys: String, CodingKey {
        case mode, currency, partial, lines, warnings
        case contractID = "contract_id", contractName = "contract_name", periodKey = "period_key", periodStart = "period_start"
        case periodEnd = "period_end", totalAmount = "total_amount", unbilledSeconds = "unbilled_seconds", unbilledEntries = "unbilled_entries"
    }
}

public enum InvoiceCalculator {
    /// The lines `period` produces for `contract`, from the period's counted entries and the top-ups bought in it.
    /// `availableSeconds` holds `topUpSeconds`, the purchased hours usable in the period.
    public static func preview(contract: Contract, period: Period, availableSeconds: Int, topUpSeconds: Int = 0, closed: Bool,
                               entries: [InvoiceEntry], purchases: [TopUp] = [], now: Date) -> InvoicePreview {
        let billing = contract.billing
        let ordered = entries.sorted { ($0.workedAt, $0.ref) < ($1.workedAt, $1.ref) }
        var lines: [InvoiceLine] = []
        var warnings: [String] = []
        var unbilled: [InvoiceEntry] = []

        func rated(_ items: [(entry: InvoiceEntry, seconds: Int)], kind: InvoiceLine.Kind, label: String, ticket: Int?) {
            // One line per rate: a technician with a rate of their own gets their own line.
            var byRate: [(technician: Int?, rate: Int?, items: [(entry: InvoiceEntry, seconds: Int)])] = []
            for item in items {
                let own = billing.technicianRates[item.entry.technician] != nil ? item.entry.technician : nil
                let rate = billing.rate(for: item.entry.technician)
                if let i = byRate.firstIndex(where: { $0.technician == own && $0.rate == rate }) {
                    byRate[i].items.append(item)
                } else {
                    byRate.append((own, rate, [item]))
                }
            }
            for group in byRate {
                let seconds = group.items.reduce(0) { $0 + $1.seconds }
                if group.rate == nil {
                    let technicians = Set(group.items.map(\.entry.technician)).sorted().map(String.init).joined(separator: ", ")
                    warnings.append("no \(billing.mode == .block ? "overage_rate" : "rate") set for the contract, nor a rate for technician \(technicians): these lines are at 0")
                }
                lines.append(InvoiceLine(kind: kind, description: label + (group.technician.map { ", technician \($0)" } ?? ""),
                                         seconds: seconds, ratePerHour: group.rate,
                                         amount: group.rate.map { Billing.amount(seconds: seconds, ratePerHour: $0) } ?? 0,
                                         ticketID: ticket, technician: group.technician, entries: group.items.map(\.entry.ref)))
            }
        }

        switch billing.mode {
        case .block:
            var left = availableSeconds
            var inBlock: [InvoiceEntry] = []
            var inBlockSeconds = 0
            var over: [(entry: InvoiceEntry, seconds: Int)] = []
            for entry in ordered {
                guard entry.kind.drawsFromBalance else { unbilled.append(entry); continue }
                let covered = min(entry.billedSeconds, max(0, left))
                left -= covered
                if covered > 0 || entry.billedSeconds == 0 { inBlock.append(entry); inBlockSeconds += covered }
                if entry.billedSeconds > covered { over.append((entry, entry.billedSeconds - covered)) }
            }
            let size = HoursText.format(availableSeconds - topUpSeconds) + " h"
                + (topUpSeconds > 0 ? " and \(HoursText.format(topUpSeconds)) h purchased" : "")
            lines.append(InvoiceLine(kind: .block, description: "Block of \(size), \(HoursText.format(inBlockSeconds)) h used",
                                     seconds: inBlockSeconds, ratePerHour: nil, amount: billing.blockFee ?? 0, ticketID: nil, technician: nil,
                                     entries: inBlock.map(\.ref)))
            if !over.isEmpty { rated(over, kind: .overage, label: "Overage", ticket: nil) }
            // A purchase is invoiced at its own price, or as that many hours at the overage rate.
            let periods = PeriodCalculator(kind: contract.period, starts: contract.starts, expires: contract.expires, calendar: contract.calendar)
            for topUp in purchases.sorted(by: { $0.id < $1.id })
            where topUp.voidedAt == nil && topUp.firstPeriodIndex(periods).map({ periods.period(index: $0).key == period.key }) == true {
                let rate = topUp.price == nil ? billing.overageRate : nil
                if topUp.price == nil && rate == nil {
                    warnings.append("top-up #\(topUp.id) has no price and the contract no overage_rate: its line is at 0")
                }
                lines.append(InvoiceLine(kind: .purchase, description: "Purchased hours: \(HoursText.precise(topUp.seconds)) h, \(topUp.label)",
                                         seconds: topUp.seconds, ratePerHour: rate,
                                         amount: topUp.price ?? rate.map { Billing.amount(seconds: topUp.seconds, ratePerHour: $0) } ?? 0,
                                         ticketID: nil, technician: nil, entries: [topUp.ref]))
            }
        case .payg:
            var billable: [InvoiceEntry] = []
            for entry in ordered {
                if entry.kind == .billable { billable.append(entry) } else { unbilled.append(entry) }
            }
            switch billing.lines {
            case .entry:
                for entry in billable {
                    rated([(entry, entry.billedSeconds)], kind: .time, label: "Ticket \(entry.ticketID) \(entry.ticketName)", ticket: entry.ticketID)
                }
            case .ticket:
                var tickets: [Int] = []
                var byTicket: [Int: [InvoiceEntry]] = [:]
                for entry in billable {
                    if byTicket[entry.ticketID] == nil { tickets.append(entry.ticketID) }
                    byTicket[entry.ticketID, default: []].append(entry)
                }
                for ticket in tickets.sorted() {
                    let items = byTicket[ticket]!
                    rated(items.map { ($0, $0.billedSeconds) }, kind: .time, label: "Ticket \(ticket) \(items[0].ticketName)", ticket: ticket)
                }
            }
        case .unlimited:
            unbilled = ordered
        }
        // One warning per missing rate is enough.
        var seen = Set<String>()
        warnings = warnings.filter { seen.insert($0).inserted }
        return InvoicePreview(contractID: contract.id, contractName: contract.name, mode: billing.mode, currency: billing.currency,
                              periodKey: period.key, periodStart: period.start, periodEnd: period.end,
                              partial: !closed && (period.end.map { now < $0 } ?? true),
                              lines: lines, totalAmount: lines.reduce(0) { $0 + $1.amount },
                              unbilledSeconds: unbilled.reduce(0) { $0 + $1.billedSeconds }, unbilledEntries: unbilled.map(\.ref),
                              warnings: warnings)
    }

}

/// One invoice line in the columns an accounting import takes: who, which contract and period, what, how many
/// hours at what price, the amount, and the ledger entries behind it. Money stays in integer minor units; the hours are
/// written from the line's whole seconds.
public struct AccountingLine: Sendable, Equatable, Encodable {
    public var customer: String
    public var contractID: String
    public var contractName: String
    public var periodKey: String
    public var periodStart: Date
    public var periodEnd: Date?
    /// The period is still running: the figures are to date.
    public var partial: Bool
    public var kind: InvoiceLine.Kind
    public var description: String
    public var quantitySeconds: Int
    /// `quantitySeconds` as hours to four decimals (see `hours`).
    public var quantityHours: String
    /// Minor units per hour; nil for a fixed fee (a block), whose amount is the price.
    public var unitPrice: Int?
    /// Minor units.
    public var amount: Int
    public var currency: String
    public var entries: [String]

    /// Every line of `preview`, for the contract's `customer` (or its name).
    public static func lines(_ preview: InvoicePreview, customer: String?) -> [AccountingLine] {
        preview.lines.map { line in
            AccountingLine(customer: customer ?? preview.contractName, contractID: preview.contractID, contractName: preview.contractName,
                           periodKey: preview.periodKey, periodStart: preview.periodStart, periodEnd: preview.periodEnd, partial: preview.partial,
                           kind: line.kind, description: line.description, quantitySeconds: line.seconds, quantityHours: hours(line.seconds),
                           unitPrice: line.ratePerHour, amount: line.amount, currency: preview.currency, entries: line.entries)
        }
    }

    /// Hours to four decimals, rounded half up: exact for any whole number of minutes (and any multiple of 9 s).
    public static func hours(_ seconds: Int) -> String {
        let tenThousandths = (abs(seconds) * 10_000 * 2 + 3600) / (3600 * 2)
        return (seconds < 0 ? "-" : "") + "\(tenThousandths / 10_000)." + String(String(tenThousandths % 10_000 + 10_000).dropFirst())
    }

    enum CodingKeys: String, CodingKey {
        case customer, partial, kind, description, amount, currency, entries
        case contractID = "contract_id", contractName = "contract_name", periodKey = "period_key", periodStart = "period_start"
        case periodEnd = "period_end", quantitySeconds = "quantity_seconds", quantityHours = "quantity_hours", unitPrice = "unit_price"
    }
}
