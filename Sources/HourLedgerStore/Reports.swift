import Foundation
import GRDB
import HourLedgerCore

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

    init(_ row: Row) {
        billableSeconds = row["billable"]
        prepaidSeconds = row["prepaid"]
        internalSeconds = row["internal"]
        entryCount = row["n"]
    }

    /// The SQL that fills `init(_ row:)`: one pass, no grouping by kind.
    static let sums = """
        SUM(CASE WHEN e.kind = 'billable' THEN e.billed_seconds ELSE 0 END) AS billable,
        SUM(CASE WHEN e.kind = 'prepaid' THEN e.billed_seconds ELSE 0 END) AS prepaid,
        SUM(CASE WHEN e.kind = 'internal' THEN e.billed_seconds ELSE 0 END) AS internal, COUNT(*) AS n
        """

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
}

public struct ContractReportRow: Sendable, Equatable, Codable {
    public var contractID: String
    public var name: String
    public var periodKey: String
    public var time: TimeSplit
    public var ticketCount: Int

    enum CodingKeys: String, CodingKey {
        case name, time
        case contractID = "contract_id", periodKey = "period_key", ticketCount = "ticket_count"
    }
}

public struct TicketReportRow: Sendable, Equatable, Codable {
    public var ticketID: Int
    public var name: String
    public var contractID: String?
    public var time: TimeSplit
    public var firstWorkedAt: Date
    public var lastWorkedAt: Date

    enum CodingKeys: String, CodingKey {
        case name, time
        case ticketID = "ticket_id", contractID = "contract_id", firstWorkedAt = "first_worked_at", lastWorkedAt = "last_worked_at"
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

    enum CodingKeys: String, CodingKey {
        case name, mode, closed
        case contractID = "contract_id", periodKey = "period_key", quotaSeconds = "quota_seconds", carriedInSeconds = "carried_in_seconds"
        case usedSeconds = "used_seconds", overageSeconds = "overage_seconds", expiredSeconds = "expired_seconds"
        case remainingSeconds = "remaining_seconds", carriedOutSeconds = "carried_out_seconds"
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

extension LedgerStore {
    /// Billable against internal time per technician and calendar month in `timeZone`. Only counted (approved) time.
    public func technicianReport(range: ReportRange, timeZone: TimeZone, contractID: String? = nil) throws -> [TechnicianReportRow] {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        // Month boundaries are computed here, in the zone, and handed to SQLite as bound values.
        var months: [(key: String, start: Int, end: Int)] = []
        var cursor = calendar.date(from: calendar.dateComponents([.year, .month], from: range.from))!
        while cursor < range.to {
            let next = calendar.date(byAdding: .month, value: 1, to: cursor)!
            let parts = calendar.dateComponents([.year, .month], from: cursor)
            months.append((String(format: "%04d-%02d", parts.year!, parts.month!), Int(max(cursor, range.from).timeIntervalSince1970),
                           Int(min(next, range.to).timeIntervalSince1970)))
            cursor = next
        }
        guard !months.isEmpty else { return [] }
        let placeholders = months.map { _ in "(?, ?, ?)" }.joined(separator: ", ")
        let values: [(any DatabaseValueConvertible)?] = months.flatMap { [$0.key, $0.start, $0.end] as [(any DatabaseValueConvertible)?] }
            + [contractID, contractID]
        let arguments = StatementArguments(values)
        return try writer.read { db in
            try Row.fetchAll(db, sql: """
                WITH month(key, start, stop) AS (VALUES \(placeholders))
                SELECT e.technician, month.key, \(TimeSplit.sums)
                FROM month JOIN entry e INDEXED BY entry_report ON e.worked_at >= month.start AND e.worked_at < month.stop
                WHERE e.approval = 'approved' AND (? IS NULL OR e.contract_id = ?)
                GROUP BY month.key, e.technician ORDER BY month.key, e.technician
                """, arguments: arguments).map { TechnicianReportRow(technician: $0["technician"], month: $0["key"], time: TimeSplit($0)) }
        }
    }

    /// Time per contract and contract period, for periods that start inside the range.
    public func contractReport(_ contracts: [Contract], range: ReportRange) throws -> [ContractReportRow] {
        let names = Dictionary(contracts.map { ($0.id, $0.name) }, uniquingKeysWith: { a, _ in a })
        let keys = periodKeys(contracts, range: range)
        return try writer.read { db in
            var rows: [String: ContractReportRow] = [:]
            for row in try Row.fetchAll(db, sql: """
                SELECT e.contract_id, e.period_key, \(TimeSplit.sums), COUNT(DISTINCT e.ticket_id) AS tickets
                FROM entry e INDEXED BY entry_contract_report
                WHERE e.contract_id IS NOT NULL AND e.worked_at >= ? AND e.worked_at < ? AND e.approval = 'approved'
                GROUP BY e.contract_id, e.period_key
                """, arguments: [Int(keys.earliest.timeIntervalSince1970), Int(keys.latest.timeIntervalSince1970)]) {
                let contract: String = row["contract_id"]
                guard let periodKey = row["period_key"] as String?, keys.wanted[contract]?.contains(periodKey) == true else { continue }
                rows[contract + "|" + periodKey] = ContractReportRow(contractID: contract, name: names[contract] ?? contract, periodKey: periodKey,
                                                                     time: TimeSplit(row), ticketCount: row["tickets"])
            }
            // Periods without any time still belong in the report.
            for contract in contracts {
                for key in keys.wanted[contract.id] ?? [] where rows[contract.id + "|" + key] == nil {
                    rows[contract.id + "|" + key] = ContractReportRow(contractID: contract.id, name: contract.name, periodKey: key,
                                                                      time: TimeSplit(), ticketCount: 0)
                }
            }
            return rows.values.sorted { ($0.contractID, $0.periodKey) < ($1.contractID, $1.periodKey) }
        }
    }

    /// Time per ticket worked on inside the range, optionally for one contract.
    public func ticketReport(range: ReportRange, contractID: String? = nil) throws -> [TicketReportRow] {
        try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT s.*, COALESCE(t.name, '') AS name, t.contract_id FROM (
                    SELECT e.ticket_id, \(TimeSplit.sums), MIN(e.worked_at) AS first, MAX(e.worked_at) AS last
                    FROM entry e INDEXED BY entry_report
                    WHERE e.worked_at >= ? AND e.worked_at < ? AND e.approval = 'approved' AND (? IS NULL OR e.contract_id = ?)
                    GROUP BY e.ticket_id
                ) s LEFT JOIN ticket t ON t.id = s.ticket_id
                ORDER BY s.billable + s.prepaid + s.internal DESC, s.ticket_id
                """, arguments: [Int(range.from.timeIntervalSince1970), Int(range.to.timeIntervalSince1970), contractID, contractID]).map { row in
                TicketReportRow(ticketID: row["ticket_id"], name: row["name"], contractID: row["contract_id"], time: TimeSplit(row),
                                firstWorkedAt: Date(timeIntervalSince1970: TimeInterval(row["first"] as Int)),
                                lastWorkedAt: Date(timeIntervalSince1970: TimeInterval(row["last"] as Int)))
            }
        }
    }

    /// Quota, carried in, used, overage and expired per contract period, for periods that start inside the range.
    public func blockUsageReport(_ contracts: [Contract], range: ReportRange, now: Date = Date()) throws -> [BlockUsageRow] {
        try writer.read { db in
            var result: [BlockUsageRow] = []
            for contract in contracts {
                for row in try Self.balances(db, of: contract, now: now) where row.periodStart >= range.from && row.periodStart < range.to {
                    result.append(BlockUsageRow(contractID: contract.id, name: contract.name, mode: contract.billing.mode, periodKey: row.periodKey,
                                                quotaSeconds: row.quotaSeconds, carriedInSeconds: row.carriedInSeconds, usedSeconds: row.usedSeconds,
                                                overageSeconds: row.overageSeconds, expiredSeconds: row.expiredSeconds,
                                                remainingSeconds: row.remainingSeconds,
                                                carriedOutSeconds: row.carriedOutSeconds,
                                                closed: row.closed))
                }
            }
            return result
        }
    }

    /// The keys of each contract's periods that start in the range, and the span their entries can lie in.
    private func periodKeys(_ contracts: [Contract], range: ReportRange) -> (wanted: [String: Set<String>], earliest: Date, latest: Date) {
        var wanted: [String: Set<String>] = [:]
        var earliest = range.from
        var latest = range.to
        for contract in contracts {
            let calculator = PeriodCalculator(kind: contract.period, starts: contract.starts, expires: contract.expires, calendar: contract.calendar)
            var period = calculator.period(containing: range.from) ?? (contract.starts.startOfDay(in: contract.calendar) >= range.from
                                                                        ? calculator.period(index: 0) : nil)
            var index = 0
            while let current = period, current.start < range.to, index < 10_000 {
                if current.start >= range.from {
                    wanted[contract.id, default: []].insert(current.key)
                    earliest = min(earliest, current.start)
                    latest = max(latest, current.end ?? .distantFuture)
                }
                guard let end = current.end else { break }
                period = calculator.period(containing: end)
                index += 1
            }
        }
        return (wanted, earliest, latest == .distantFuture ? Date(timeIntervalSince1970: 4_000_000_000) : latest)
    }

    // MARK: Invoicing

    /// The counted entries of one contract period, as invoicing sees them.
    public func invoiceEntries(contractID: String, periodKey: String) throws -> [InvoiceEntry] {
        try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT e.source, e.source_id, e.entry_key, e.ticket_id, COALESCE(t.name, '') AS name, e.technician, e.kind, e.billed_seconds, e.worked_at
                FROM entry e LEFT JOIN ticket t ON t.id = e.ticket_id
                WHERE e.contract_id = ? AND e.period_key = ? AND e.approval = 'approved'
                ORDER BY e.worked_at, e.id
                """, arguments: [contractID, periodKey]).map { row in
                InvoiceEntry(ref: (row["entry_key"] as String?) ?? "\(row["source"] as String):\(row["source_id"] as Int)", ticketID: row["ticket_id"],
                             ticketName: row["name"], technician: row["technician"], kind: EntryKind(rawValue: row["kind"]) ?? .billable,
                             billedSeconds: row["billed_seconds"], workedAt: Date(timeIntervalSince1970: TimeInterval(row["worked_at"] as Int)))
            }
        }
    }

    /// What the period of `contract` holding `instant` would invoice; month-to-date while it runs.
    public func invoicePreview(_ contract: Contract, at instant: Date, now: Date = Date()) throws -> InvoicePreview? {
        guard let row = try balance(of: contract, at: instant, now: now) else { return nil }
        let period = Period(start: row.periodStart, end: row.periodEnd, key: row.periodKey)
        return InvoiceCalculator.preview(contract: contract, period: period, availableSeconds: row.availableSeconds, closed: row.closed,
                                         entries: try invoiceEntries(contractID: contract.id, periodKey: row.periodKey), now: now)
    }
}
