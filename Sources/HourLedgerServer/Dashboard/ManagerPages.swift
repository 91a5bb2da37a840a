import Foundation
import HourLedgerCore
import HourLedgerUseCases
import HTTPTypes
import Hummingbird
import NIOCore

/// What a manager runs the service with: approvals, alerts, unmatched tickets, stuck write-backs, reports. Anyone
/// else gets 404 on these paths.
enum ManagerPages {
    static func register(on pages: RouterGroup<LedgerRequestContext>, dashboard: Dashboard) {
        pages.page("/approvals", dashboard) { try approvals($0) }
        pages.form("/approvals/{key}", dashboard, back: "/approvals", reshow: { try approvals($0) }) { visit, form in
            let (_, principal) = try visit.manager()
            let key = try visit.context.parameters.require("key")
            guard let decision = form["decision"], ["approve", "reject"].contains(decision) else {
                throw PageFailure(status: .badRequest, key: "badDecision", detail: "approve or reject")
            }
            _ = try await dashboard.api.ledger.review(key: key, approve: decision == "approve", note: form["note"] ?? "", actor: principal.user)
            return decision == "approve" ? "entryApproved" : "entryRejected"
        }
        pages.page("/alerts", dashboard) { try alerts($0) }
        pages.page("/unmatched", dashboard) { try unmatched($0) }
        pages.page("/outbox", dashboard) { try outbox($0) }
        pages.form("/outbox/{id}/retry", dashboard, back: "/outbox", reshow: { try outbox($0) }) { visit, _ in
            let (_, principal) = try visit.manager()
            guard let id = Int64(try visit.context.parameters.require("id")) else { throw PageFailure.notFound }
            _ = try await dashboard.api.ledger.retryOutbox(id: id, actor: principal.user)
            return "outboxRetried"
        }
        pages.form("/outbox/{id}/discard", dashboard, back: "/outbox", reshow: { try outbox($0) }) { visit, form in
            let (_, principal) = try visit.manager()
            guard let id = Int64(try visit.context.parameters.require("id")) else { throw PageFailure.notFound }
            guard let reason = form["reason"] else {
                throw PageFailure(status: .badRequest, key: "reasonMissing", detail: visit.language == .fr ? "Un motif est nécessaire." : "A reason is needed.")
            }
            _ = try await dashboard.api.ledger.discardOutbox(id: id, actor: principal.user, reason: reason, fenceSeconds: dashboard.api.writeFenceSeconds)
            return "outboxDiscarded"
        }
        // Top-ups are added and voided from the contract's own page, which shows them to managers.
        pages.post("/contracts/{id}/top-ups") { request, context in
            let visit = Visit(dashboard, request, context)
            return try await DashboardRoutes.page(visit) {
                let (_, principal) = try visit.manager()
                let id = try context.parameters.require("id")
                let contract = try CustomerPages.visibleContract(visit, id)
                return try await DashboardRoutes.post(visit, back: "/contracts/\(contract.id)", { form in
                    try await addTopUp(visit, form, contract: contract, actor: principal.user)
                }, reshow: { try await CustomerPages.contract($0, id: contract.id) })
            }
        }
        pages.post("/contracts/{id}/top-ups/{topUp}/void") { request, context in
            let visit = Visit(dashboard, request, context)
            return try await DashboardRoutes.page(visit) {
                let (_, principal) = try visit.manager()
                let contract = try CustomerPages.visibleContract(visit, try context.parameters.require("id"))
                guard let topUpID = Int64(try context.parameters.require("topUp")),
                      try dashboard.api.ledger.topUps(contractID: contract.id).contains(where: { $0.id == topUpID }) else { throw PageFailure.notFound }
                return try await DashboardRoutes.post(visit, back: "/contracts/\(contract.id)", { form in
                    _ = try await dashboard.api.ledger.voidTopUp(id: topUpID, reason: form["reason"] ?? "", actor: principal.user)
                    return "topUpVoidedNotice"
                }, reshow: { try await CustomerPages.contract($0, id: contract.id) })
            }
        }
        pages.page("/reports", dashboard) { try await reports($0, csv: false) }
        pages.page("/reports.csv", dashboard) { try await reports($0, csv: true) }
    }

    /// The top-up form: hours as people type them, a note, an optional last day and price (in major units).
    static func addTopUp(_ visit: Visit, _ form: FormBody, contract: Contract, actor: String) async throws -> String {
        let french = visit.language == .fr
        guard let text = form["hours"], let seconds = HoursText.seconds(parsing: text) else {
            throw PageFailure(status: .badRequest, key: "badHours",
                              detail: french ? "Les heures s’écrivent 10, 2.5 ou 1:30." : "Hours are written 10, 2.5 or 1:30.")
        }
        let expires = try form["expires"].map { text -> CivilDate in
            guard let day = CivilDate(text) else {
                throw PageFailure(status: .badRequest, key: "badDay", detail: french ? "Une date s’écrit AAAA-MM-JJ." : "A day is written YYYY-MM-DD.")
            }
            return day
        }
        let price = try form["price"].map { text -> Int in
            guard let minor = Formats.minorUnits(parsing: text, currency: contract.billing.currency) else {
                throw PageFailure(status: .badRequest, key: "badPrice",
                                  detail: french ? "Le prix est un montant, par exemple 600 ou 600,50." : "The price is an amount, such as 600 or 600.50.")
            }
            return minor
        }
        _ = try await visit.dashboard.api.ledger.addTopUp(contractID: contract.id, seconds: seconds, note: form["note"] ?? "", price: price,
                                                          expires: expires, actor: actor)
        return "topUpAddedNotice"
    }

    static func approvals(_ visit: Visit) throws -> Response {
        _ = try visit.manager()
        let ledger = visit.dashboard.api.ledger
        let zone = visit.dashboard.settings.timeZone
        let pending = try ledger.pendingEntries()
        return visit.render("approvals", title: visit.t["approvals"]!, nav: "approvals", [
            "pending": pending.map { entry -> [String: Any] in
                let contract = ledger.book.contract(entry.contractID)
                return ["key": entry.key, "id": entry.id, "ticket": entry.ticketID, "contract": contract?.name ?? entry.contractID ?? "",
                        "date": visit.formats.dayAndTime(entry.workedAt, timeZone: contract?.calendar.timeZone ?? zone),
                        "billed": Formats.hours(entry.billedSeconds), "raw": Formats.hours(entry.rawSeconds),
                        "kind": visit.t[entry.kind.rawValue] ?? entry.kind.rawValue, "technician": entry.technician, "note": entry.note]
            },
        ])
    }

    static func alerts(_ visit: Visit) throws -> Response {
        _ = try visit.manager()
        let ledger = visit.dashboard.api.ledger
        let list = try ledger.alerts(limit: 200)
        return visit.render("alerts", title: visit.t["alerts"]!, nav: "alerts", [
            "alerts": list.map { alert -> [String: Any] in
                let contract = ledger.book.contract(alert.contractID)
                let zone = contract?.calendar.timeZone ?? visit.dashboard.settings.timeZone
                if alert.isUntimed {
                    // One ticket closed with no time: no period, no percentage.
                    return ["date": visit.formats.dayAndTime(alert.firedAt, timeZone: zone), "contractID": alert.contractID,
                            "contract": contract?.name ?? alert.contractID, "period": "#\(alert.ticketID ?? 0)", "threshold": visit.t["untimedAlert"]!,
                            "used": "-", "forecast": ""]
                }
                return ["date": visit.formats.dayAndTime(alert.firedAt, timeZone: zone), "contractID": alert.contractID,
                        "contract": contract?.name ?? alert.contractID, "period": alert.periodKey, "threshold": "\(alert.threshold) %",
                        "used": "\(Formats.hours(alert.usedSeconds)) / \(Formats.hours(alert.availableSeconds))",
                        "forecast": alert.depletesAt.map { visit.formats.day($0, timeZone: zone) } ?? ""]
            },
            "hasAlerts": !list.isEmpty,
        ])
    }

    static func unmatched(_ visit: Visit) throws -> Response {
        _ = try visit.manager()
        let tickets = try visit.dashboard.api.ledger.unmatchedTickets()
        return visit.render("unmatched", title: visit.t["unmatched"]!, nav: "unmatched", [
            "tickets": tickets.map { ["ticketID": $0.ticketID, "ref": $0.ref, "name": $0.name, "raw": Formats.hours($0.rawSeconds), "reason": $0.reason] as [String: Any] },
            "hasTickets": !tickets.isEmpty,
        ])
    }

    static func outbox(_ visit: Visit) throws -> Response {
        _ = try visit.manager()
        let zone = visit.dashboard.settings.timeZone
        let items = try visit.dashboard.api.ledger.outboxItems(parkedOnly: false, limit: 1000).filter { $0.parkedAt != nil || $0.failures > 0 }
        return visit.render("outbox", title: visit.t["outbox"]!, nav: "outbox", [
            "items": items.map { item -> [String: Any] in
                let state = item.parkedAt != nil ? "parked" : "failing"
                return ["id": item.id, "ticket": item.ticketID, "action": item.action.rawValue, "state": state, "stateText": visit.t[state]!,
                        "attempts": item.attempts, "created": visit.formats.dayAndTime(item.createdAt, timeZone: zone), "lastError": item.lastError ?? ""]
            },
        ])
    }

    static func reports(_ visit: Visit, csv: Bool) async throws -> Response {
        _ = try visit.manager()
        let zone = visit.dashboard.settings.timeZone
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let now = visit.now
        let query = visit.request.uri.queryParameters
        let kind = query.get("kind").flatMap { Report.Kind(rawValue: String($0)) } ?? .contracts
        let monthStart = calendar.dateInterval(of: .month, for: now)?.start ?? now
        let from = try query.get("from").map { try day(String($0), calendar, visit) } ?? monthStart
        let to = try query.get("to").map { try day(String($0), calendar, visit) } ?? calendar.date(byAdding: .month, value: 1, to: monthStart)!
        guard to > from, to.timeIntervalSince(from) <= 3700 * 86_400 else {
            throw PageFailure(status: .badRequest, key: "badRange", detail: visit.language == .fr ? "« Au » doit suivre « Du », sur dix ans au plus." : "'To' must come after 'From', ten years at most.")
        }
        let ledger = visit.dashboard.api.ledger
        let text = try await visit.dashboard.api.reads.run {
            try Report.render(kind, ledger: ledger, range: ReportRange(from: from, to: to), timeZone: zone, contractID: nil, format: "csv", now: now)
        }
        if csv {
            return Response(status: .ok, headers: [.contentType: "text/csv; charset=utf-8", .cacheControl: "no-store",
                                                   .contentDisposition: "attachment; filename=\"\(kind.rawValue).csv\""],
                            body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        let lines = CSVRows.parse(text)
        let format = DateFormatter()
        format.dateFormat = "yyyy-MM-dd"
        format.timeZone = zone
        format.locale = Locale(identifier: "en_US_POSIX")
        return visit.render("reports", title: visit.t["reports"]!, nav: "reports", [
            "kind": kind.rawValue, "from": format.string(from: from), "to": format.string(from: to),
            "kinds": Report.Kind.allCases.map { ["value": $0.rawValue, "label": visit.t[$0.rawValue + "Report"] ?? $0.rawValue, "selected": $0 == kind] as [String: Any] },
            "header": lines.first ?? [], "rows": lines.dropFirst().map { ["cells": $0] as [String: Any] }, "hasRows": lines.count > 1,
        ])
    }

    static func day(_ text: String, _ calendar: Calendar, _ visit: Visit) throws -> Date {
        guard let civil = CivilDate(text), (2000...2199).contains(civil.year) else {
            throw PageFailure(status: .badRequest, key: "badDay", detail: visit.language == .fr ? "Une date s’écrit AAAA-MM-JJ." : "A day is written YYYY-MM-DD.")
        }
        return civil.startOfDay(in: calendar)
    }
}

/// Reads back the CSV the reports write (RFC 4180 quoting), to show the same rows as a table.
enum CSVRows {
    static func parse(_ text: String) -> [[String]] {
        var rows: [[String]] = []
        var row: [String] = []
        var field = ""
        var quoted = false
        var iterator = Array(text).makeIterator()
        var pending: Character? = nil
        while let c = pending ?? iterator.next() {
            pending = nil
            if quoted {
                if c == "\"" {
                    if let next = iterator.next() {
                        if next == "\"" { field.append("\"") } else { quoted = false; pending = next }
                    } else { quoted = false }
                } else { field.append(c) }
            } else if c == "\"" {
                quoted = true
            } else if c == "," {
                row.append(field); field = ""
            } else if c == "\n" {
                row.append(field); field = ""
                rows.append(row); row = []
            } else {
                field.append(c)
            }
        }
        if !field.isEmpty || !row.isEmpty { row.append(field); rows.append(row) }
        return rows
    }
}
