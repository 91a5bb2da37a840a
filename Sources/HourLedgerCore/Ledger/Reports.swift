import Foundation

/// Time per kind of work: what is billed, what was paid ahead, and what is never billed.
public struct TimeSplit: Sendable, Equatable, Codable {
    public var billableSeconds = 0
    public var prepaidSeconds = 0
    public var internalSeconds = 0
    public var entryCount = 0

    public var totalSeconds: Int { billableSeconds + prepaidSeconds + internalSeconds }

    enum CodingKeys: String, CodingKey {
        case billableSeconds = "billable_seconds", prepaidSeconds = "prepaid_seconds", internalSeconds = "internal_seconds"
        case entryCount = "entry_count", totalSeconds = "total_seconds"
    }

    public init() {}

    public init(billableSeconds: Int, prepaidSeconds: Int, internalSeconds: Int, entryCount: Int) {
        self.billableSeconds = billableSeconds
        self.prepaidSeconds = prepaidSeconds
        self.internalSeconds = internalSeconds
        self.entryCount = entryCount
    }

    /// Adds one entry's billed time under its kind.
    public mutating func add(_ kind: EntryKind, billedSeconds: Int) {
        switch kind {
        case .billable: billableSeconds += billedSeconds
        case .prepaid: prepaidSeconds += billedSeconds
        case .internal: internalSeconds += billedSeconds
        }
        entryCount += 1
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        billableSeconds = try c.decode(Int.self, forKey: .billableSeconds)
        prepaidSeconds = try c.decode(Int.self, forKey: .prepaidSeconds)
        internalSeconds = try c.decode(Int.self, forKey: .internalSeconds)
        entryCount = try c.decode(Int.self, forKey: .entryCount)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(billableSeconds, forKey: .billableSeconds)
        try c.encode(prepaidSeconds, forKey: .prepaidSeconds)
        try c.encode(internalSeconds, forKey: .internalSeconds)
        try c.encode(totalSeconds, forKey: .totalSeconds)
        try c.encode(entryCount, forKey: .entryCount)
    }
}

public struct TechnicianReportRow: Sendable, Equatable, Codable {
    public var technician: Int
    /// The calendar month, `YYYY-MM`, in the report's time zone.
    public var month: String
    public var time: TimeSplit

    public init(technician: Int, month: String, time: TimeSplit) {
        self.technician = technician
        self.month = month
        self.time = time
    }
}

public struct ContractReportRow: Sendable, Equatable, Codable {
    public var contractID: String
    public var name: String
    public var periodKey: String
    public var time: TimeSplit
    public var ticketCount: Int

    public init(contractID: String, name: String, periodKey: String, time: TimeSplit, ticketCount: Int) {
        self.contractID = contractID
        self.name = name
        self.periodKey = periodKey
        self.time = time
        self.ticketCount = ticketCount
    }

    enum CodingKeys: String, CodingKey {
        case name, time
        case contractID = "contract_id", periodKey = "period_key", ticketCount = "ticket_count"
    }
}

/// A ticket solved or closed with no time logged on it at all: work nobody recorded, or nothing to bill.
public struct UntimedTicketRow: Sendable, Equatable, Codable {
    public var ticketID: Int
    /// The helpdesk's reference (iTop's R-000042); empty on GLPI, whose tickets go by id.
    public var ref: String
    public var name: String
    public var contractID: String?
    /// `solved` or `closed`, the same words on both helpdesks.
    public var status: String
    public var closedAt: Date

    public init(ticketID: Int, ref: String, name: String, contractID: String?, status: String, closedAt: Date) {
        self.ticketID = ticketID
        self.ref = ref
        self.name = name
        self.contractID = contractID
        self.status = status
        self.closedAt = closedAt
    }

    enum CodingKeys: String, CodingKey {
        case ref, name, status
        case ticketID = "ticket_id", contractID = "contract_id", closedAt = "closed_at"
    }
}

public struct TicketReportRow: Sendable, Equatable, Codable {
    public var ticketID: Int
    public var name: String
    public var contractID: String?
    /// The helpdesk's type (GLPI Incident or Request, iTop UserRequest or Incident) and category (GLPI) or service (iTop).
    public var type: String
    public var category: String
    public var time: TimeSplit
    public var firstWorkedAt: Date
    public var lastWorkedAt: Date

    public init(ticketID: Int, name: String, contractID: String?, type: String = "", category: String = "", time: TimeSplit, firstWorkedAt: Date,
                lastWorkedAt: Date) {
        self.ticketID = ticketID
        self.name = name
        self.contractID = contractID
        self.type = type
        self.category = category
        self.time = time
        self.firstWorkedAt = firstWorkedAt
        self.lastWorkedAt = lastWorkedAt
    }

    enum CodingKeys: String, CodingKey {
        case name, type, category, time
        case ticketID = "ticket_id", contractID = "contract_id", firstWorkedAt = "first_worked_at", lastWorkedAt = "last_worked_at"
    }
}

/// Time per contract and ticket type, or per contract and category (GLPI) or service (iTop): where the hours go.
public struct TicketGroupReportRow: Sendable, Equatable, Codable {
    public var contractID: String?
    /// The type or the category; empty for tickets the helpdesk gave none.
    public var group: String
    public var ticketCount: Int
    public var time: TimeSplit

    public init(contractID: String?, group: String, ticketCount: Int, time: TimeSplit) {
        self.contractID = contractID
        self.group = group
        self.ticketCount = ticketCount
        self.time = time
    }

    enum CodingKeys: String, CodingKey {
        case group, time
        case contractID = "contract_id", ticketCount = "ticket_count"
    }

    /// Ticket rows summed per contract and `key` (the type or the category), the largest first.
    public static func grouping(_ tickets: [TicketReportRow], by key: (TicketReportRow) -> String) -> [TicketGroupReportRow] {
        struct Key: Hashable { var contractID: String?; var group: String }
        var rows: [Key: TicketGroupReportRow] = [:]
        for ticket in tickets {
            let k = Key(contractID: ticket.contractID, group: key(ticket))
            var row = rows[k] ?? TicketGroupReportRow(contractID: k.contractID, group: k.group, ticketCount: 0, time: TimeSplit())
            row.ticketCount += 1
            row.time.billableSeconds += ticket.time.billableSeconds
            row.time.prepaidSeconds += ticket.time.prepaidSeconds
            row.time.internalSeconds += ticket.time.internalSeconds
            row.time.entryCount += ticket.time.entryCount
            rows[k] = row
        }
        return rows.values.sorted {
            ($0.contractID ?? "~", $1.time.totalSeconds, $0.group) < ($1.contractID ?? "~", $0.time.totalSeconds, $1.group)
        }
    }
}

public struct BlockUsageRow: Sendable, Equatable, Codable {
    public var contractID: String
    public var name: String
    public var mode: Billing.Mode
    public var periodKey: String
    public var quotaSeconds: Int
    public var carriedInSeconds: Int
    public var usedSeconds: Int
    public var overageSeconds: Int
    public var expiredSeconds: Int
    public var remainingSeconds: Int
    public var carriedOutSeconds: Int
    public var closed: Bool
    /// Purchased hours usable in the period.
    public var topUpSeconds: Int

    public init(contractID: String, name: String, mode: Billing.Mode, periodKey: String, quotaSeconds: Int, carriedInSeconds: Int, usedSeconds: Int, overageSeconds: Int, expiredSeconds: Int, remainingSeconds: Int, carriedOutSeconds: Int, closed: Bool, topUpSeconds: Int = 0) {
        self.contractID = contractID
        self.name = name
        self.mode = mode
        self.periodKey = periodKey
        self.quotaSeconds = quotaSeconds
        self.carriedInSeconds = carriedInSeconds
        self.usedSeconds = usedSeconds
        self.overageSeconds = overageSeconds
        self.expiredSeconds = expiredSeconds
        self.remainingSeconds = remainingSeconds
        self.carriedOutSeconds = carriedOutSeconds
        self.closed = closed
        self.topUpSeconds = topUpSeconds
    }

    enum CodingKeys: String, CodingKey {
        case name, mode, closed
        case contractID = "contract_id", periodKey = "period_key", quotaSeconds = "quota_seconds", carriedInSeconds = "carried_in_seconds"
        case usedSeconds = "used_seconds", overageSeconds = "overage_seconds", expiredSeconds = "expired_seconds"
        case remainingSeconds = "remaining_seconds", carriedOutSeconds = "carried_out_seconds", topUpSeconds = "top_up_seconds"
    }
}

/// The span a report covers: [from, to).
public struct ReportRange: Sendable, Equatable {
    public var from: Date
    public var to: Date

    public init(from: Date, to: Date) {
        self.from = from
        self.to = to
    }
}
