import Foundation
import HourLedgerCore

extension Ledger {
    /// Every period of `contract` from its start through the running one, with carry-over and expiry worked out.
    public func balances(of contract: Contract, now: Date? = nil) throws -> [BalanceRow] {
        try keptBalances.rows(of: [contract], now: now ?? clock.now(), repository: repository)[0].get()
    }

    /// The balance of `contract` for the period holding `instant`; zero usage when nothing was logged yet.
    public func balance(of contract: Contract, at instant: Date, now: Date? = nil) throws -> BalanceRow? {
        let now = now ?? clock.now()
        guard let period = contract.period(containing: instant) else { return nil }
        return try balances(of: contract, now: max(now, period.start)).first { $0.periodKey == period.key }
    }

    /// Each contract's balance for the period running at `instant`, with the contracts whose stored figures are
    /// damaged reported instead of failing the rest. Contracts outside their term are left out.
    public func currentBalances(at instant: Date? = nil) throws -> (balances: [(Contract, BalanceRow)], failures: [ContractFailure]) {
        let current = try spannedBalances(at: instant)
        return (current.balances, current.failures)
    }

    /// `currentBalances` (of `only` these contracts, or all), with the span of instants around `instant` over which
    /// they stay the same as long as the store's balance revision and the contract book do not change: what lets a
    /// reader keep what it wrote of them.
    public func spannedBalances(of only: [Contract]? = nil, at instant: Date? = nil)
        throws -> (balances: [(Contract, BalanceRow)], failures: [ContractFailure], from: Date, until: Date)
    {
        let instant = instant ?? clock.now()
        let contracts = only ?? contracts
        var balances: [(Contract, BalanceRow)] = []
        var failures: [ContractFailure] = []
        let kept = try keptBalances.spannedRows(of: contracts, now: instant, repository: repository)
        for (contract, rows) in zip(contracts, kept.rows) {
            switch rows {
            case .success(let rows):
                // The rows cover every period up to `instant`, and periods follow each other without gaps.
                if let row = rows.last(where: { $0.holds(instant) }) {
                    balances.append((contract, row))
                }
            case .failure(let error):
                failures.append(ContractFailure(contractID: contract.id, error: error.description))
            }
        }
        return (balances, failures, kept.from, kept.until)
    }

    /// The store's balance revision (see `LedgerReader.balanceRevision`).
    public func balanceRevision() throws -> Int64 { try read { try $0.balanceRevision() } }

    public func ticketBreakdown(contractID: String, periodKey: String) throws -> [TicketUsage] {
        try read { try $0.ticketBreakdown(contractID: contractID, periodKey: periodKey) }
    }

    public func balanceDiscrepancies() throws -> [String] { try read { try $0.balanceDiscrepancies() } }

    public func blockMovements(contractID: String) throws -> [BlockMovement] { try read { try $0.blockMovements(contractID: contractID) } }

    public func unmatchedTickets() throws -> [UnmatchedTicket] { try read { try $0.unmatchedTickets() } }

    public func moves(ticketID: Int) throws -> [ContractMove] { try read { try $0.moves(ticketID: ticketID) } }

    public func ticketMatches() throws -> [Int: (contractID: String?, reason: String)] { try read { try $0.ticketMatches() } }

    public func counts() throws -> LedgerCounts { try read { try $0.counts() } }

    public func alerts(contractID: String? = nil, limit: Int = 100) throws -> [AlertRecord] {
        try read { try $0.alerts(contractID: contractID, limit: limit) }
    }

    public func alertDeliveries(alertID: Int64? = nil) throws -> [AlertDelivery] { try read { try $0.alertDeliveries(alertID: alertID) } }

    public func alertDeliveryStats() throws -> AlertDeliveryStats { try read { try $0.alertDeliveryStats() } }

    public func ticketFailures(limit: Int = 10_000) throws -> [TicketFailureRecord] { try read { try $0.ticketFailures(limit: limit) } }

    public func pendingHints(limit: Int = 10_000) throws -> [TicketHint] { try read { try $0.pendingHints(limit: limit) } }
}

// MARK: Reports and invoices

extension Ledger {
    /// Billable against internal time per technician and calendar month in `timeZone`. Only counted (approved) time.
    public func technicianReport(range: ReportRange, timeZone: TimeZone, contractID: String? = nil) throws -> [TechnicianReportRow] {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        // Month boundaries are computed here, in the zone.
        var months: [(key: String, start: Date, end: Date)] = []
        var cursor = calendar.date(from: calendar.dateComponents([.year, .month], from: range.from))!
        while cursor < range.to {
            let next = calendar.date(byAdding: .month, value: 1, to: cursor)!
            let parts = calendar.dateComponents([.year, .month], from: cursor)
            months.append((String(format: "%04d-%02d", parts.year!, parts.month!), max(cursor, range.from), min(next, range.to)))
            cursor = next
        }
        guard !months.isEmpty else { return [] }
        return try read { try $0.technicianTime(months: months, contractID: contractID) }
    }

    /// Time per contract and contract period, for periods that start inside the range; periods without time included.
    public func contractReport(range: ReportRange, contractID: String? = nil) throws -> [ContractReportRow] {
        let contracts = contracts.filter { contractID == nil || $0.id == contractID }
        let names = Dictionary(contracts.map { ($0.id, $0.name) }, uniquingKeysWith: { a, _ in a })
        let keys = Self.periodKeys(contracts, range: range)
        var rows: [String: ContractReportRow] = [:]
        for row in try read({ try $0.contractTime(from: keys.earliest, to: keys.latest) }) where keys.wanted[row.contractID]?.contains(row.periodKey) == true {
            rows[row.contractID + "|" + row.periodKey] = ContractReportRow(contractID: row.contractID, name: names[row.contractID] ?? row.contractID,
                                                                           periodKey: row.periodKey, time: row.time, ticketCount: row.tickets)
        }
        for contract in contracts {
            for key in keys.wanted[contract.id] ?? [] where rows[contract.id + "|" + key] == nil {
                rows[contract.id + "|" + key] = ContractReportRow(contractID: contract.id, name: contract.name, periodKey: key, time: TimeSplit(),
                                                                  ticketCount: 0)
            }
        }
        return rows.values.sorted { ($0.contractID, $0.periodKey) < ($1.contractID, $1.periodKey) }
    }

    /// Time per ticket worked on inside the range, optionally for one contract.
    public func ticketReport(range: ReportRange, contractID: String? = nil) throws -> [TicketReportRow] {
        try read { try $0.ticketTime(from: range.from, to: range.to, contractID: contractID) }
    }

    /// Time per contract and ticket type (GLPI Incident or Request, iTop UserRequest or Incident) worked inside the range.
    public func typeReport(range: ReportRange, contractID: String? = nil) throws -> [TicketGroupReportRow] {
        TicketGroupReportRow.grouping(try ticketReport(range: range, contractID: contractID), by: \.type)
    }

    /// Time per contract and category (GLPI) or service (iTop) worked inside the range.
    public func categoryReport(range: ReportRange, contractID: String? = nil) throws -> [TicketGroupReportRow] {
        TicketGroupReportRow.grouping(try ticketReport(range: range, contractID: contractID), by: \.category)
    }

    /// Tickets solved or closed inside the range with no time logged at all, optionally for one contract.
    public func untimedTicketReport(range: ReportRange, contractID: String? = nil) throws -> [UntimedTicketRow] {
        try read { try $0.untimedTickets(closedFrom: range.from, to: range.to, contractID: contractID) }.map { ticket in
            UntimedTicketRow(ticketID: ticket.id, ref: ticket.facts.ref, name: ticket.facts.name, contractID: ticket.contractID,
                             status: ticket.facts.status == 5 ? "solved" : "closed", closedAt: ticket.closedAt ?? ticket.syncedAt)
        }
    }

    /// Quota, carried in, used, overage and expired per contract period, for periods that start inside the range.
    public func blockUsageReport(range: ReportRange, contractID: String? = nil, now: Date? = nil) throws -> [BlockUsageRow] {
        var result: [BlockUsageRow] = []
        for contract in contracts where contractID == nil || contract.id == contractID {
            for row in try balances(of: contract, now: now) where row.periodStart >= range.from && row.periodStart < range.to {
                result.append(BlockUsageRow(contractID: contract.id, name: contract.name, mode: contract.billing.mode, periodKey: row.periodKey,
                                            quotaSeconds: row.quotaSeconds, carriedInSeconds: row.carriedInSeconds, usedSeconds: row.usedSeconds,
                                            overageSeconds: row.overageSeconds, expiredSeconds: row.expiredSeconds,
                                            remainingSeconds: row.remainingSeconds, carriedOutSeconds: row.carriedOutSeconds, closed: row.closed,
                                            topUpSeconds: row.topUpSeconds))
            }
        }
        return result
    }

    /// The keys of each contract's periods that start in the range, and the span their entries can lie in.
    static func periodKeys(_ contracts: [Contract], range: ReportRange) -> (wanted: [String: Set<String>], earliest: Date, latest: Date) {
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

    /// The counted entries of one contract period, as invoicing sees them.
    public func invoiceEntries(contractID: String, periodKey: String) throws -> [InvoiceEntry] {
        let reference = profile.taskReference
        return try read { try $0.countedEntries(contractID: contractID, periodKey: periodKey) }.map { entry, name in
            InvoiceEntry(ref: entry.key ?? "\(reference):\(entry.sourceID)", ticketID: entry.ticketID, ticketName: name, technician: entry.technician,
                         kind: entry.kind, billedSeconds: entry.billedSeconds, workedAt: entry.workedAt)
        }
    }

    /// What the period of `contract` holding `instant` would invoice; month-to-date while it runs.
    public func invoicePreview(_ contract: Contract, at instant: Date, now: Date? = nil) throws -> InvoicePreview? {
        let now = now ?? clock.now()
        guard let row = try balance(of: contract, at: instant, now: now) else { return nil }
        let period = Period(start: row.periodStart, end: row.periodEnd, key: row.periodKey)
        return InvoiceCalculator.preview(contract: contract, period: period, availableSeconds: row.availableSeconds,
                                         topUpSeconds: row.topUpSeconds, closed: row.closed,
                                         entries: try invoiceEntries(contractID: contract.id, periodKey: row.periodKey),
                                         purchases: try topUps(contractID: contract.id), now: now)
    }

    /// Every contract's invoice lines (or one contract's) for the period `spec` names (current, previous, YYYY-MM,
    /// YYYY-MM-DD), for the accounting; contracts with no such period (not started, ended) have none.
    public func accountingLines(period spec: String, contractID: String? = nil, now: Date? = nil) throws -> [AccountingLine] {
        let now = now ?? clock.now()
        var lines: [AccountingLine] = []
        for contract in contracts where contractID == nil || contract.id == contractID {
            guard let period = contract.period(named: spec, now: now), let preview = try invoicePreview(contract, at: period.start, now: now)
            else { continue }
            lines += AccountingLine.lines(preview, customer: contract.customer)
        }
        return lines
    }
}
