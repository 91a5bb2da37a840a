import Foundation
import HourLedgerCore
import HourLedgerHelpdeskKit
import HourLedgerUseCases
import Hummingbird

/// Timers and entries, on the authenticated API group; a technician acts only as
/// themselves, a manager or admin may act for any technician.
public enum WorkRoutes {
    /// Request bodies larger than this are refused with 413 before they are parsed.
    public static let maxBodyBytes = 64 * 1024

    /// Registers on the authenticated API group (`/api/v1`).
    public static func register(on router: some RouterMethods<LedgerRequestContext>, context api: LedgerAPIContext) {
        registerEdits(on: router, context: api)
        router.post("timers") { request, context in
            try await handle(api) {
                let principal = try context.caller()
                let body = try await JSONRequest(request)
                let ticket = try body.int("ticket")
                let technician = try body.optionalInt("technician") ?? principal.helpdeskUserID
                try authorize(principal, actingAs: technician)
                let (timer, created) = try await api.ledger.startTimer(technician: technician, ticketID: ticket)
                if !created {
                    return try JSONBody.response(TimerConflict(error: "a timer is already open for technician \(technician) on ticket \(ticket)",
                                                               timer: TimerBody(timer, now: api.clock())), status: .conflict)
                }
                return try JSONBody.response(TimerBody(timer, now: api.clock()), status: .created)
            }
        }
        router.get("timers") { request, context in
            try await handle(api, settling: false) {
                let principal = try context.caller()
                let mine = request.uri.queryParameters.get("mine") == "true"
                let running = request.uri.queryParameters.get("running") == "true"
                let technician: Int? = mine || principal.role == .technician ? principal.helpdeskUserID : nil
                return try JSONBody.response(try api.ledger.timers(technician: technician, openOnly: running).map { TimerBody($0, now: api.clock()) })
            }
        }
        for action in TimerAction.allCases {
            router.post("timers/{id}/\(action.rawValue)") { request, context in
                try await handle(api) {
                    let principal = try context.caller()
                    guard let id = Int64(try context.parameters.require("id")) else { throw APIFailure(.badRequest, "timer id must be a number", field: "id") }
                    let body = try await JSONRequest(request, optional: true)
                    let kind = try body.optionalString("kind").map { text -> EntryKind in
                        guard let kind = EntryKind(rawValue: text) else { throw APIFailure(.badRequest, "kind must be billable, internal or prepaid", field: "kind") }
                        return kind
                    }
                    let note = try body.optionalString("note") ?? ""
                    let (timer, entry) = try await api.ledger.timerTransition(
                        id: id, actingAs: principal.role == .technician ? principal.helpdeskUserID : nil, action: action,
                        kind: kind, note: note, category: try body.optionalInt("category"), actor: principal.user)
                    return try JSONBody.response(TimerResult(timer: TimerBody(timer, now: api.clock()), entry: entry))
                }
            }
        }
        router.post("entries") { request, context in
            try await handle(api) {
                let principal = try context.caller()
                let body = try await JSONRequest(request)
                let ticket = try body.int("ticket")
                let duration = try body.duration("duration_seconds")
                let started = try body.entryStart("started_at", now: api.clock())
                let technician = try body.optionalInt("technician") ?? principal.helpdeskUserID
                try authorize(principal, actingAs: technician)
                let kind: EntryKind = try body.optionalBool("billable").map { $0 ? .billable : .internal } ?? .billable
                let entry = try await api.ledger.addEntry(
                    NewEntry(ticketID: ticket, technician: technician, startedAt: started, rawSeconds: duration, kind: kind,
                             note: try body.optionalString("description") ?? "", createdBy: principal.user,
                             category: try body.optionalInt("category")))
                return try JSONBody.response(entry, status: .created)
            }
        }
        router.get("entries") { request, context in
            try await handle(api, settling: false) {
                let ticket = request.uri.queryParameters.get("ticket").flatMap { Int($0) }
                let contract = request.uri.queryParameters.get("contract")
                guard ticket != nil || contract != nil else { throw APIFailure(.badRequest, "give ticket=N or contract=ID", field: "ticket") }
                return try JSONBody.response(try api.ledger.workEntries(ticketID: ticket, contractID: contract))
            }
        }
    }

    static func registerEdits(on router: some RouterMethods<LedgerRequestContext>, context api: LedgerAPIContext) {
        router.patch("entries/{key}") { request, context in
            try await handle(api) {
                let principal = try context.caller()
                let key = try context.parameters.require("key")
                let body = try await JSONRequest(request)
                var change = EntryChange()
                change.rawSeconds = try body.optionalInt("duration_seconds") == nil ? nil : try body.duration("duration_seconds")
                change.startedAt = try body.optionalString("started_at") == nil ? nil : try body.entryStart("started_at", now: api.clock())
                change.kind = try body.optionalBool("billable").map { $0 ? .billable : .internal }
                change.note = try body.optionalString("note")
                let entry = try await api.ledger.editEntry(
                    key: key, change: change, reason: try body.optionalString("reason") ?? "", actor: principal.user,
                    actingAs: principal.role == .technician ? principal.helpdeskUserID : nil)
                return try JSONBody.response(entry)
            }
        }
        router.delete("entries/{key}") { request, context in
            try await handle(api) {
                let principal = try context.caller()
                let key = try context.parameters.require("key")
                let body = try await JSONRequest(request, optional: true)
                let reason = try body.optionalString("reason") ?? request.uri.queryParameters.get("reason").map { String($0) } ?? ""
                try await api.ledger.deleteEntry(key: key, reason: reason, actor: principal.user,
                                                 actingAs: principal.role == .technician ? principal.helpdeskUserID : nil)
                return Response(status: .noContent)
            }
        }
        for approve in [true, false] {
            router.post("entries/{key}/\(approve ? "approve" : "reject")") { request, context in
                try await handle(api) {
                    let principal = try context.caller(atLeast: .manager, for: "approvals")
                    let key = try context.parameters.require("key")
                    let body = try await JSONRequest(request, optional: true)
                    let entry = try await api.ledger.review(key: key, approve: approve, note: try body.optionalString("note") ?? "",
                                                            actor: principal.user)
                    return try JSONBody.response(entry)
                }
            }
        }
        router.get("approvals") { request, context in
            try await handle(api, settling: false) {
                try context.caller(atLeast: .manager, for: "approvals")
                let contract = request.uri.queryParameters.get("contract").map { String($0) }
                return try JSONBody.response(try api.ledger.pendingEntries(contractID: contract))
            }
        }
        router.get("audit") { request, context in
            try await handle(api, settling: false) {
                let ticket = request.uri.queryParameters.get("ticket").flatMap { Int($0) }
                let contract = request.uri.queryParameters.get("contract").map { String($0) }
                return try JSONBody.response(try api.ledger.auditTrail(ticketID: ticket, contractID: contract))
            }
        }
    }

    static func authorize(_ principal: Principal, actingAs technician: Int) throws {
        if principal.role == .technician, technician != principal.helpdeskUserID {
            throw APIFailure(.forbidden, "a technician acts only as themselves (helpdesk user \(principal.helpdeskUserID))", field: "technician")
        }
    }

    /// Turns typed failures into JSON errors that name the field; nothing is written when one is thrown.
    static func handle(_ api: LedgerAPIContext, settling: Bool = true, _ body: () async throws -> Response) async throws -> Response {
        do {
            return try await body()
        } catch let failure as APIFailure {
            return try JSONBody.error(failure.status, failure.message, field: failure.field)
        } catch let error as LedgerError {
            let status: HTTPResponse.Status
            switch error.code {
            case .unknownTicket, .unknownTimer, .unknownEntry: status = .notFound
            case .notYours: status = .forbidden
            case .transition: status = .conflict
            case .invalid: status = .badRequest
            }
            return try JSONBody.error(status, error.message, field: error.field)
        }
    }
}

public struct APIFailure: Error, CustomStringConvertible {
    let status: HTTPResponse.Status
    let message: String
    let field: String?
    public var description: String { message }
    init(_ status: HTTPResponse.Status, _ message: String, field: String? = nil) {
        self.status = status
        self.message = message
        self.field = field
    }
}

/// A JSON object body, read with a size limit, with typed accessors that name the field on error.
struct JSONRequest {
    let object: [String: JSONValue]

    init(_ request: Request, optional: Bool = false) async throws {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: WorkRoutes.maxBodyBytes)
        } catch {
            throw APIFailure(.contentTooLarge, "the body is larger than \(WorkRoutes.maxBodyBytes) bytes", field: "body")
        }
        if buffer.readableBytes == 0, optional {
            object = [:]
            return
        }
        guard let parsed = (try? JSONValue.parse(Array(buffer.readableBytesView)))?.object else {
            throw APIFailure(.badRequest, "the body must be a JSON object", field: "body")
        }
        object = parsed
    }

    private func value(_ key: String) -> JSONValue? {
        guard let value = object[key], value != .null else { return nil }
        return value
    }

    func optionalInt(_ key: String) throws -> Int? {
        guard let value = value(key) else { return nil }
        guard case .number(let number) = value, let int = Int(exactly: number) else {
            throw APIFailure(.badRequest, "\(key) must be an integer", field: key)
        }
        return int
    }

    func int(_ key: String) throws -> Int {
        guard let value = try optionalInt(key) else { throw APIFailure(.badRequest, "\(key) is required", field: key) }
        return value
    }

    func optionalString(_ key: String) throws -> String? {
        guard let value = value(key) else { return nil }
        guard case .string(let text) = value else { throw APIFailure(.badRequest, "\(key) must be a string", field: key) }
        guard text.utf8.count <= 4000 else { throw APIFailure(.badRequest, "\(key) is longer than 4000 bytes", field: key) }
        if let problem = TextRules.controlCharacterProblem(text) { throw APIFailure(.badRequest, "\(key) \(problem)", field: key) }
        return text
    }

    func string(_ key: String) throws -> String {
        guard let value = try optionalString(key) else { throw APIFailure(.badRequest, "\(key) is required", field: key) }
        return value
    }

    /// A manual entry's duration in seconds: an integer from 0 to one day.
    func duration(_ key: String) throws -> Int {
        let seconds = try int(key)
        if let problem = Bounds.checkEntrySeconds(seconds) { throw APIFailure(.badRequest, "\(key) \(problem)", field: key) }
        return seconds
    }

    /// When a manual entry's work began: an RFC 3339 date-time from 2000 to a day ahead of now.
    func entryStart(_ key: String, now: Date) throws -> Date {
        let text = try string(key)
        guard let date = Timestamp.parse(text) else {
            throw APIFailure(.badRequest, "\(key) must be an RFC 3339 date-time such as 2026-11-21T09:00:00Z (a real day and time), got '\(text)'",
                             field: key)
        }
        if let problem = Bounds.checkEntryStart(date, now: now) { throw APIFailure(.badRequest, "\(key) \(problem)", field: key) }
        return date
    }

    func optionalBool(_ key: String) throws -> Bool? {
        guard let value = value(key) else { return nil }
        guard case .bool(let bool) = value else { throw APIFailure(.badRequest, "\(key) must be true or false", field: key) }
        return bool
    }
}

struct TimerBody: Codable {
    var id: Int64
    var technician: Int
    var ticketID: Int
    var status: String
    var elapsedSeconds: Int
    var startedAt: Date
    var needsReview: Bool
    var entryID: Int64?
    init(_ t: TimerRecord, now: Date) {
        id = t.id
        technician = t.technician
        ticketID = t.ticketID
        status = t.state.status.rawValue
        elapsedSeconds = t.state.elapsedSeconds(at: now)
        startedAt = t.startedAt
        needsReview = t.state.needsReview
        entryID = t.entryID
    }
    enum CodingKeys: String, CodingKey {
        case id, technician, status
        case ticketID = "ticket_id", elapsedSeconds = "elapsed_seconds", startedAt = "started_at", needsReview = "needs_review"
        case entryID = "entry_id"
    }
}

struct TimerConflict: Codable {
    var error: String
    var timer: TimerBody
}

struct TimerResult: Codable {
    var timer: TimerBody
    var entry: WorkEntry?
}

