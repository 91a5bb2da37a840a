import Foundation
import HourLedgerCore
import HourLedgerUseCases
import HTTPTypes
import Hummingbird
import NIOCore

/// What a customer sees, and staff too: a card per contract, a contract's tickets and periods, a ticket's entries, CSV.
/// A contract a person may not see answers 404 exactly as one that does not exist.
enum CustomerPages {
    static func register(on pages: RouterGroup<LedgerRequestContext>, dashboard: Dashboard) {
        pages.page("/contracts", dashboard) { try await contracts($0) }
        pages.page("/contracts/{id}", dashboard) { try await contract($0, id: try $0.context.parameters.require("id")) }
        pages.page("/contracts/{id}/tickets.csv", dashboard) { try await ticketsCSV($0, id: try $0.context.parameters.require("id")) }
        pages.page("/contracts/{id}/tickets/{ticket}", dashboard) { visit in
            guard let ticket = Int(try visit.context.parameters.require("ticket")) else { throw PageFailure.notFound }
            return try await ticketPage(visit, id: try visit.context.parameters.require("id"), ticketID: ticket)
        }
    }

    /// The contracts this person may see: every one for staff, for a customer those shown to them.
    static func visibleContracts(_ visit: Visit) -> [Contract] {
        guard let viewer = visit.viewer else { return [] }
        let all = visit.dashboard.api.ledger.book.contracts
        return viewer.isStaff ? all : all.filter { $0.isVisible(to: viewer.person) }
    }

    static func visibleContract(_ visit: Visit, _ id: String) throws -> Contract {
        guard let contract = visibleContracts(visit).first(where: { $0.id == id }) else { throw PageFailure.notFound }
        return contract
    }

    /// Cards on one page of `/contracts`: an MSP's staff see hundreds of contracts, each card with its burn chart.
    static let cardsPerPage = 24

    static func contracts(_ visit: Visit) async throws -> Response {
        let all = visibleContracts(visit)
        let pages = max(1, (all.count + cardsPerPage - 1) / cardsPerPage)
        // A page number out of range shows the nearest page; anything else is the first.
        let page = min(pages, max(1, visit.request.uri.queryParameters.get("page").flatMap { Int(String($0).prefix(6)) } ?? 1))
        let contracts = all[min(all.count, (page - 1) * cardsPerPage)..<min(all.count, page * cardsPerPage)]
        let now = visit.now
        let cards = try await visit.dashboard.api.reads.run { () -> [String] in
            let ledger = visit.dashboard.api.ledger
            let kept = visit.dashboard.cards
            let stamp = try KeptStamp(ledger, at: now)
            var html = kept.cards(contracts.map(\.id), language: visit.language, stamp: stamp, at: now)
            let missing = contracts.filter { html[$0.id] == nil }
            if !missing.isEmpty {
                let rendered = try renderCards(missing, visit: visit, at: now)
                kept.keep(rendered.html, language: visit.language, stamp: stamp, from: rendered.from, until: rendered.until)
                html.merge(rendered.html) { _, new in new }
            }
            return contracts.compactMap { html[$0.id].flatMap { $0.isEmpty ? nil : $0 } }
        }
        var model: [String: Any] = ["cards": cards.map { ["html": $0] }]
        if pages > 1 {
            let first = (page - 1) * cardsPerPage + 1
            var paging: [String: Any] = ["shown": visit.t["shownOf"]!.replacingOccurrences(of: "{from}", with: "\(first)")
                .replacingOccurrences(of: "{to}", with: "\(first + contracts.count - 1)").replacingOccurrences(of: "{total}", with: "\(all.count)")]
            if page > 1 { paging["previous"] = "/contracts?page=\(page - 1)" }
            if page < pages { paging["next"] = "/contracts?page=\(page + 1)" }
            model["paging"] = paging
        }
        return visit.render("contracts", title: visit.t["contracts"]!, nav: "contracts", model)
    }

    /// The cards of `contracts` as HTML by contract id ("" for a contract outside its term), and the span of instants
    /// over which they hold: their balances in one look-up, every burn chart's points in one read.
    static func renderCards(_ contracts: [Contract], visit: Visit, at now: Date) throws -> (html: [String: String], from: Date, until: Date) {
        let ledger = visit.dashboard.api.ledger
        let current = try ledger.spannedBalances(of: contracts, at: now)
        if let failure = current.failures.first { throw LedgerStoreError(failure.error) }
        let points = try ledger.read { tx in
            try current.balances.filter { $0.0.billing.mode == .block }.map { contract, row in
                (contract.id, try tx.usageOverTime(contractID: contract.id, periodKey: row.periodKey))
            }
        }
        let charts = Dictionary(points, uniquingKeysWith: { first, _ in first })
        var html = Dictionary(uniqueKeysWithValues: contracts.map { ($0.id, "") })
        for (contract, row) in current.balances {
            var card = try cardModel(contract, row: row, visit: visit, points: charts[contract.id])
            card["id"] = contract.id
            card["name"] = contract.name
            card["t"] = visit.t
            html[contract.id] = DashboardTemplates.library.render(card, withTemplate: "contractCard") ?? ""
        }
        return (html, current.from, current.until)
    }

    /// A contract's figures for one period, as its card and its page show them.
    static func cardModel(_ contract: Contract, row: BalanceRow, visit: Visit, points known: [(at: Date, usedSeconds: Int)]? = nil)
        throws -> [String: Any] {
        let now = visit.now
        let balance = ContractBalance(contract: contract, row: row, now: now)
        let zone = contract.calendar.timeZone
        var card: [String: Any] = [
            "period": periodLabel(row, contract: contract, visit: visit),
            "quota": Formats.hours(row.quotaSeconds), "carriedIn": Formats.hours(row.carriedInSeconds), "used": Formats.hours(row.usedSeconds),
            "remaining": Formats.hours(row.remainingSeconds), "percent": visit.formats.percent(row.percentUsed),
            "percentValue": Int(min(100, max(0, row.percentUsed.rounded()))), "isBlock": contract.billing.mode == .block,
            "billingText": visit.t[contract.billing.mode.rawValue] ?? contract.billing.mode.rawValue,
        ]
        if row.topUpSeconds > 0 { card["topUp"] = Formats.hours(row.topUpSeconds) }
        if row.expiringAtEndSeconds > 0 { card["expiring"] = Formats.hours(row.expiringAtEndSeconds) }
        if let forecast = balance.forecast, let date = forecast.depletesAt { card["forecast"] = visit.formats.day(date, timeZone: zone) }
        if contract.billing.mode == .block {
            let points = try known ?? visit.dashboard.api.ledger.read { try $0.usageOverTime(contractID: contract.id, periodKey: row.periodKey) }
            let end = row.periodEnd ?? max(now, row.periodStart.addingTimeInterval(30 * 86_400))
            let description = "\(visit.t["used"]!) \(Formats.hours(row.usedSeconds)) / \(Formats.hours(row.availableSeconds))"
                + (card["forecast"].map { ", \(visit.t["forecast"]!) \($0)" } ?? "")
            card["chart"] = BurnChart.svg(points: points, start: row.periodStart, end: end, now: now, availableSeconds: row.availableSeconds,
                                          depletesAt: balance.forecast?.depletesAt, title: visit.t["burnTitle"]!, description: description)
        }
        return card
    }

    static func periodLabel(_ row: BalanceRow, contract: Contract, visit: Visit) -> String {
        let zone = contract.calendar.timeZone
        let start = visit.formats.day(row.periodStart, timeZone: zone)
        guard let end = row.periodEnd else { return "\(start) – \(visit.t["open"]!)" }
        return "\(start) – \(visit.formats.day(end.addingTimeInterval(-1), timeZone: zone))"
    }

    /// The period asked for (`?period=KEY`) among the contract's stored periods, else the one running now.
    static func period(_ visit: Visit, _ contract: Contract) throws -> (row: BalanceRow, all: [BalanceRow]) {
        let now = visit.now
        let all = try visit.dashboard.api.ledger.balances(of: contract, now: now)
        if let key = visit.request.uri.queryParameters.get("period").map { String($0) } {
            guard let row = all.first(where: { $0.periodKey == key }) else { throw PageFailure.notFound }
            return (row, all)
        }
        guard let row = try visit.dashboard.api.ledger.balance(of: contract, at: now, now: now) ?? all.last else { throw PageFailure.notFound }
        return (row, all)
    }

    static func statusText(_ ticket: StoredTicket?, _ visit: Visit) -> String {
        guard let ticket else { return "" }
        if ticket.removed != nil { return visit.t["statusRemoved"]! }
        let keys = [1: "statusNew", 2: "statusAssigned", 3: "statusPlanned", 4: "statusWaiting", 5: "statusSolved", 6: "statusClosed"]
        return keys[ticket.facts.status].flatMap { visit.t[$0] } ?? "\(ticket.facts.status)"
    }

    struct TicketLine {
        var usage: TicketUsage
        var lastWork: Date?
        var status: String
    }

    static func ticketLines(_ visit: Visit, _ contract: Contract, _ row: BalanceRow) throws -> [TicketLine] {
        let ledger = visit.dashboard.api.ledger
        return try ledger.read { reader in
            let usage = try reader.ticketBreakdown(contractID: contract.id, periodKey: row.periodKey)
            var last: [Int: Date] = [:]
            for (entry, _) in try reader.countedEntries(contractID: contract.id, periodKey: row.periodKey) {
                last[entry.ticketID] = max(last[entry.ticketID] ?? entry.workedAt, entry.workedAt)
            }
            let tickets = try reader.tickets(usage.map(\.ticketID))
            return usage.map { TicketLine(usage: $0, lastWork: last[$0.ticketID], status: statusText(tickets[$0.ticketID], visit)) }
        }
    }

    static func contract(_ visit: Visit, id: String) async throws -> Response {
        let contract = try visibleContract(visit, id)
        let zone = contract.calendar.timeZone
        let now = visit.now
        let page = try await visit.dashboard.api.reads.run { () -> UncheckedBox<[String: Any]> in
            let (row, all) = try period(visit, contract)
            var page = try cardModel(contract, row: row, visit: visit)
            let lines = try ticketLines(visit, contract, row)
            page["id"] = contract.id
            page["name"] = contract.name
            page["timezone"] = contract.timeZone
            page["periodKey"] = row.periodKey
            page["tickets"] = lines.map { line -> [String: Any] in
                ["ticketID": line.usage.ticketID, "name": line.usage.name, "used": Formats.hours(line.usage.usedSeconds), "contractID": contract.id,
                 "periodKey": row.periodKey, "lastWork": line.lastWork.map { visit.formats.day($0, timeZone: zone) } ?? "", "status": line.status]
            }
            page["hasTickets"] = !lines.isEmpty
            page["periods"] = all.reversed().map { other -> [String: Any] in
                ["key": other.periodKey, "label": periodLabel(other, contract: contract, visit: visit), "contractID": contract.id,
                 "used": Formats.hours(other.usedSeconds), "available": Formats.hours(other.availableSeconds), "current": other.periodKey == row.periodKey]
            }
            page["hasPeriods"] = all.count > 1
            if visit.viewer?.isManager == true, contract.billing.mode == .block {
                let topUps = try visit.dashboard.api.ledger.topUps(contractID: contract.id)
                page["topUps"] = [
                    "hasTopUps": !topUps.isEmpty, "currency": contract.billing.currency,
                    "list": topUps.reversed().map { topUp -> [String: Any] in
                        var item: [String: Any] = [
                            "id": topUp.id, "contractID": contract.id, "added": visit.formats.dayAndTime(topUp.addedAt, timeZone: zone),
                            "hours": Formats.hours(topUp.seconds), "note": topUp.note, "expires": topUp.expires?.description ?? visit.t["topUpNoExpiry"]!,
                        ]
                        if let voided = topUp.voidedAt {
                            item["voided"] = visit.formats.day(voided, timeZone: zone)
                            item["voidReason"] = topUp.voidReason ?? ""
                        }
                        return item
                    },
                ] as [String: Any]
            }
            if contract.billing.mode != .unlimited, visit.viewer?.isStaff == true || contract.customersSeeMoney,
               let preview = try visit.dashboard.api.ledger.invoicePreview(contract, at: row.periodStart, now: now) {
                page["invoice"] = [
                    "partial": preview.partial, "total": visit.formats.money(preview.totalAmount, currency: preview.currency),
                    "lines": preview.lines.map { line -> [String: Any] in
                        ["description": line.description, "hours": Formats.hours(line.seconds),
                         "rate": line.ratePerHour.map { visit.formats.money($0, currency: preview.currency) } ?? "",
                         "amount": visit.formats.money(line.amount, currency: preview.currency)]
                    },
                ] as [String: Any]
            }
            return UncheckedBox(page)
        }
        return visit.render("contract", title: contract.name, nav: "contracts", page.value)
    }

    /// The tickets of the period shown, as CSV: the same rows as the page, durations in seconds and h:mm.
    static func ticketsCSV(_ visit: Visit, id: String) async throws -> Response {
        let contract = try visibleContract(visit, id)
        let zone = contract.calendar.timeZone
        let (text, key) = try await visit.dashboard.api.reads.run { () -> (String, String) in
            let (row, _) = try period(visit, contract)
            var text = "contract_id,period_key,ticket_id,name,used_seconds,used_hhmm,raw_seconds,entry_count,last_work,status\n"
            let day = DateFormatter()
            day.dateFormat = "yyyy-MM-dd"
            day.timeZone = zone
            for line in try ticketLines(visit, contract, row) {
                let fields = [contract.id, row.periodKey, "\(line.usage.ticketID)", line.usage.name, "\(line.usage.usedSeconds)",
                              Formats.hours(line.usage.usedSeconds), "\(line.usage.rawSeconds)", "\(line.usage.entryCount)",
                              line.lastWork.map(day.string(from:)) ?? "", line.status]
                text += fields.map(Report.csv).joined(separator: ",") + "\n"
            }
            return (text, row.periodKey)
        }
        return Response(status: .ok, headers: [.contentType: "text/csv; charset=utf-8", .cacheControl: "no-store",
                                               .contentDisposition: "attachment; filename=\"\(contract.id)-\(key).csv\""],
                        body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func ticketPage(_ visit: Visit, id: String, ticketID: Int) async throws -> Response {
        let contract = try visibleContract(visit, id)
        let zone = contract.calendar.timeZone
        let isStaff = visit.viewer?.isStaff == true
        let page = try await visit.dashboard.api.reads.run { () -> UncheckedBox<[String: Any]> in
            let (row, _) = try period(visit, contract)
            let counted = try visit.dashboard.api.ledger.read { try $0.countedEntries(contractID: contract.id, periodKey: row.periodKey) }
                .filter { $0.entry.ticketID == ticketID }
            guard let name = counted.first?.ticketName else { throw PageFailure.notFound }
            let ticket = try visit.dashboard.api.ledger.read { try $0.ticket(ticketID) }
            let kinds = ["billable": visit.t["billable"]!, "internal": visit.t["internal"]!, "prepaid": visit.t["prepaid"]!]
            return UncheckedBox([
                "contractID": contract.id, "contractName": contract.name, "periodKey": row.periodKey, "ticketID": ticketID, "ticketName": name,
                "status": statusText(ticket, visit), "period": periodLabel(row, contract: contract, visit: visit), "isStaff": isStaff,
                "used": Formats.hours(counted.reduce(0) { $0 + $1.entry.billedSeconds }),
                "entries": counted.sorted { $0.entry.workedAt < $1.entry.workedAt }.map { item -> [String: Any] in
                    ["date": visit.formats.dayAndTime(item.entry.workedAt, timeZone: zone), "billed": Formats.hours(item.entry.billedSeconds),
                     "raw": Formats.hours(item.entry.rawSeconds), "kind": kinds[item.entry.kind.rawValue] ?? item.entry.kind.rawValue,
                     "note": item.entry.note.isEmpty ? item.entry.content : item.entry.note]
                },
            ] as [String: Any])
        }
        return visit.render("ticket", title: "#\(ticketID)", nav: "contracts", page.value)
    }
}

/// Carries page data (plain values, built and read on one request) across the read pool's boundary.
struct UncheckedBox<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}
