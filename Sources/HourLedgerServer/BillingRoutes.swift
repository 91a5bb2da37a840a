import Foundation
import HourLedgerCore
import HourLedgerUseCases
import Hummingbird

/// Invoice previews, alerts and reports: what an account manager invoices from. Money and per-technician figures
/// need a manager token.
public enum BillingRoutes {
    /// Registers on the authenticated API group (`/api/v1`).
    public static func register(on router: some RouterMethods<LedgerRequestContext>, context api: LedgerAPIContext) {
        router.get("contracts/{id}/invoice-preview") { request, context in
            try await WorkRoutes.handle {
                try context.caller(atLeast: .manager, for: "invoices and reports")
                let contract = try await contract(context.parameters.require("id"), api)
                let now = api.clock()
                let spec = request.uri.queryParameters.get("period").map { String($0) } ?? "current"
                guard let period = contract.period(named: spec, now: now) else {
                    throw APIFailure(.badRequest, "no period '\(spec)' on contract '\(contract.id)': use current, previous, YYYY-MM or YYYY-MM-DD "
                                     + "within the contract's term", field: "period")
                }
                guard let preview = try await api.reads.run({ try api.ledger.invoicePreview(contract, at: period.start, now: now) }) else {
                    throw APIFailure(.notFound, "contract '\(contract.id)' has no period at \(spec)", field: "period")
                }
                return try rendered(Report.invoice(preview, format: try format(request)), format: try format(request))
            }
        }
        router.get("invoices/accounting") { request, context in
            try await WorkRoutes.handle {
                try context.caller(atLeast: .manager, for: "invoices and reports")
                let query = request.uri.queryParameters
                let spec = query.get("period").map { String($0) } ?? "previous"
                let contractID = query.get("contract").map { String($0) }
                if let contractID, api.ledger.book.contract(contractID) == nil {
                    throw APIFailure(.notFound, "no contract with id '\(contractID.prefix(100))'", field: "contract")
                }
                let format = try format(request)
                let now = api.clock()
                return try rendered(try await api.reads.run {
                    try Report.accounting(ledger: api.ledger, period: spec, contractID: contractID, format: format, now: now)
                }, format: format)
            }
        }
        router.get("contracts/{id}/top-ups") { _, context in
            try await WorkRoutes.handle {
                try context.caller(atLeast: .manager, for: "top-ups")
                let contract = try await contract(context.parameters.require("id"), api)
                return try JSONBody.response(try api.ledger.topUps(contractID: contract.id))
            }
        }
        router.post("contracts/{id}/top-ups") { request, context in
            try await WorkRoutes.handle {
                let principal = try context.caller(atLeast: .manager, for: "top-ups")
                let id = try context.parameters.require("id")
                let body = try await WorkRoutes.decode(TopUpRequest.self, request)
                guard let seconds = body.hours?.seconds ?? body.seconds?.value, (body.hours == nil) != (body.seconds == nil) else {
                    throw APIFailure(.badRequest, "give the hours bought as hours (10, 2.5, \"1:30\") or as seconds, one of the two", field: "hours")
                }
                let expires = try body.expires.map { text -> CivilDate in
                    guard let day = CivilDate(text.value) else { throw APIFailure(.badRequest, "expires must be a day, YYYY-MM-DD", field: "expires") }
                    return day
                }
                let topUp = try await api.ledger.addTopUp(contractID: id, seconds: seconds, note: body.note.value, price: body.price?.value,
                                                          expires: expires, actor: principal.user)
                return try JSONBody.response(topUp, status: .created)
            }
        }
        router.post("top-ups/{id}/void") { request, context in
            try await WorkRoutes.handle {
                let principal = try context.caller(atLeast: .manager, for: "top-ups")
                guard let id = Int64(try context.parameters.require("id")) else {
                    throw APIFailure(.badRequest, "a top-up id is a whole number", field: "id")
                }
                let body = try await WorkRoutes.decode(ReasonRequest.self, request)
                let topUp = try await api.ledger.voidTopUp(id: id, reason: body.reason?.value ?? "", actor: principal.user)
                return try JSONBody.response(topUp)
            }
        }
        router.get("alerts") { request, context in
            try await WorkRoutes.handle {
                let contract = request.uri.queryParameters.get("contract").map { String($0) }
                let limitText = request.uri.queryParameters.get("limit").map { String($0) } ?? "100"
                guard let limit = Int(limitText), (1...1000).contains(limit) else {
                    throw APIFailure(.badRequest, "limit must be an integer from 1 to 1000, got '\(limitText)'", field: "limit")
                }
                let alerts = try api.ledger.alerts(contractID: contract, limit: limit)
                return try JSONBody.response(try alerts.map { AlertBody(alert: $0, deliveries: try api.ledger.alertDeliveries(alertID: $0.id)) })
            }
        }
        router.get("reports/{kind}") { request, context in
            try await WorkRoutes.handle {
                try context.caller(atLeast: .manager, for: "invoices and reports")
                let name = try context.parameters.require("kind")
                guard let kind = Report.Kind(rawValue: name) else {
                    throw APIFailure(.notFound, "no report '\(name)': use one of " + Report.Kind.allCases.map(\.rawValue).joined(separator: ", "),
                                     field: "kind")
                }
                let query = request.uri.queryParameters
                let zoneName = query.get("timezone").map { String($0) } ?? "UTC"
                guard let zone = TimeZone(identifier: zoneName) else { throw APIFailure(.badRequest, "unknown time zone '\(zoneName)'", field: "timezone") }
                let range = try ReportQuery.range(from: query.get("from").map { String($0) }, to: query.get("to").map { String($0) }, timeZone: zone,
                                                  now: api.clock())
                let contractID = query.get("contract").map { String($0) }
                if let contractID, api.ledger.book.contract(contractID) == nil {
                    throw APIFailure(.notFound, "no contract with id '\(contractID)'", field: "contract")
                }
                let format = try format(request)
                let now = api.clock()
                return try rendered(try await api.reads.run {
                    try Report.render(kind, ledger: api.ledger, range: range, timeZone: zone, contractID: contractID, format: format, now: now)
                }, format: format)
            }
        }
    }

    static func contract(_ id: String, _ api: LedgerAPIContext) async throws -> Contract {
        guard let contract = api.ledger.book.contract(id) else {
            throw APIFailure(.notFound, "no contract with id '\(id)'", field: "id")
        }
        return contract
    }

    static func format(_ request: Request) throws -> String {
        let format = request.uri.queryParameters.get("format").map { String($0) } ?? "json"
        guard format == "json" || format == "csv" else { throw APIFailure(.badRequest, "format must be json or csv", field: "format") }
        return format
    }

    static func rendered(_ text: String, format: String) throws -> Response {
        Response(status: .ok, headers: [.contentType: format == "csv" ? "text/csv; charset=utf-8" : "application/json; charset=utf-8"],
                 body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

/// How a report's range is given: `from` and `to` as days (YYYY-MM-DD, `to` exclusive) in the report's time zone.
public enum ReportQuery {
    /// The default is the twelve months up to today.
    public static func range(from: String?, to: String?, timeZone: TimeZone, now: Date) throws -> ReportRange {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        func day(_ text: String, _ field: String) throws -> Date {
            guard let date = CivilDate(text) else { throw APIFailure(.badRequest, "'\(field)' must be a day, YYYY-MM-DD", field: field) }
            return date.startOfDay(in: calendar)
        }
        let end = try to.map { try day($0, "to") } ?? calendar.date(byAdding: .day, value: 1, to: calendar.startOfDay(for: now))!
        let start = try from.map { try day($0, "from") } ?? calendar.date(byAdding: .month, value: -12, to: end)!
        guard start < end else { throw APIFailure(.badRequest, "'from' must be before 'to'", field: "from") }
        guard Bounds.isStorable(start), Bounds.isStorable(end) else {
            throw APIFailure(.badRequest, "'from' and 'to' must lie between 1970 and 2199", field: from.map { _ in "from" } ?? "to")
        }
        guard let limit = calendar.date(byAdding: .year, value: Bounds.reportYears, to: start), end <= limit else {
            throw APIFailure(.badRequest, "a report spans at most \(Bounds.reportYears) years", field: "from")
        }
        return ReportRange(from: start, to: end)
    }
}

struct AlertBody: Codable {
    var alert: AlertRecord
    var deliveries: [DeliveryStatus]

    struct DeliveryStatus: Codable {
        var channel: String
        var attempts: Int
        var delivered: Bool
        var failed: Bool
        var lastError: String?
        enum CodingKeys: String, CodingKey {
            case channel, attempts, delivered, failed
            case lastError = "last_error"
        }
    }

    init(alert: AlertRecord, deliveries: [AlertDelivery]) {
        self.alert = alert
        self.deliveries = deliveries.map {
            DeliveryStatus(channel: $0.channel, attempts: $0.attempts, delivered: $0.doneAt != nil, failed: $0.failedAt != nil, lastError: $0.lastError)
        }
    }
}
