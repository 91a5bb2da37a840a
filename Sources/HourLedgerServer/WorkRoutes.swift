import Foundation
import HourLedgerCore
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
            try await handle {
                let principal = try context.caller()
                let body = try await decode(StartTimerRequest.self, request)
                let (ticket, technician) = (body.ticket.value, body.technician?.value ?? principal.helpdeskUserID)
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
            try await handle {
                let principal = try context.caller()
                let mine = request.uri.queryParameters.get("mine") == "true"
                let running = request.uri.queryParameters.get("running") == "true"
                let technician: Int? = mine || principal.role == .technician ? principal.helpdeskUserID : nil
                return try JSONBody.response(try api.ledger.timers(technician: technician, openOnly: running).map { TimerBody($0, now: api.clock()) })
            }
        }
        for action in TimerAction.allCases {
            router.post("timers/{id}/\(action.rawValue)") { request, context in
                try await handle {
                    let principal = try context.caller()
                    guard let id = Int64(try context.parameters.require("id")) else { throw APIFailure(.badRequest, "timer id must be a number", field: "id") }
                    let body = try await decode(TimerActionRequest.self, request, optional: true)
                    let (timer, entry) = try await api.ledger.timerTransition(
                        id: id, actingAs: principal.role == .technician ? principal.helpdeskUserID : nil, action: action,
                        kind: body.kind?.value, note: body.note?.value ?? "", category: body.category?.value, actor: principal.user)
                    return try JSONBody.response(TimerResult(timer: TimerBody(timer, now: api.clock()), entry: entry))
                }
            }
        }
        router.post("entries") { request, context in
            try await handle {
                let principal = try context.caller()
                let body = try await decode(NewEntryRequest.self, request)
                let duration = try checkedDuration(body.durationSeconds.value)
                let started = try checkedStart(body.startedAt.value, now: api.clock())
                let technician = body.technician?.value ?? principal.helpdeskUserID
                try authorize(principal, actingAs: technician)
                let kind: EntryKind = body.billable.map { $0 ? .billable : .internal } ?? .billable
                let entry = try await api.ledger.addEntry(
                    NewEntry(ticketID: body.ticket.value, technician: technician, startedAt: started, rawSeconds: duration, kind: kind,
                             note: body.description?.value ?? "", createdBy: principal.user, category: body.category?.value))
                return try JSONBody.response(entry, status: .created)
            }
        }
        router.get("entries") { request, context in
            try await handle {
                let ticket = request.uri.queryParameters.get("ticket").flatMap { Int($0) }
                let contract = request.uri.queryParameters.get("contract")
                guard ticket != nil || contract != nil else { throw APIFailure(.badRequest, "give ticket=N or contract=ID", field: "ticket") }
                return try JSONBody.response(try api.ledger.workEntries(ticketID: ticket, contractID: contract))
            }
        }
    }

    static func registerEdits(on router: some RouterMethods<LedgerRequestContext>, context api: LedgerAPIContext) {
        router.patch("entries/{key}") { request, context in
            try await handle {
                let principal = try context.caller()
                let key = try context.parameters.require("key")
                let body = try await decode(EditEntryRequest.self, request)
                var change = EntryChange()
                change.rawSeconds = try body.durationSeconds.map { try checkedDuration($0.value) }
                change.startedAt = try body.startedAt.map { try checkedStart($0.value, now: api.clock()) }
                change.kind = body.billable.map { $0 ? .billable : .internal }
                change.note = body.note?.value
                let entry = try await api.ledger.editEntry(
                    key: key, change: change, reason: body.reason?.value ?? "", actor: principal.user,
                    actingAs: principal.role == .technician ? principal.helpdeskUserID : nil)
                return try JSONBody.response(entry)
            }
        }
        router.delete("entries/{key}") { request, context in
            try await handle {
                let principal = try context.caller()
                let key = try context.parameters.require("key")
                let body = try await decode(ReasonRequest.self, request, optional: true)
                let reason = body.reason?.value ?? request.uri.queryParameters.get("reason").map { String($0) } ?? ""
                try await api.ledger.deleteEntry(key: key, reason: reason, actor: principal.user,
                                                 actingAs: principal.role == .technician ? principal.helpdeskUserID : nil)
                return Response(status: .noContent)
            }
        }
        for approve in [true, false] {
            router.post("entries/{key}/\(approve ? "approve" : "reject")") { request, context in
                try await handle {
                    let principal = try context.caller(atLeast: .manager, for: "approvals")
                    let key = try context.parameters.require("key")
                    let body = try await decode(ReasonRequest.self, request, optional: true)
                    let entry = try await api.ledger.review(key: key, approve: approve, note: body.note?.value ?? "",
                                                            actor: principal.user)
                    return try JSONBody.response(entry)
                }
            }
        }
        router.get("approvals") { request, context in
            try await handle {
                try context.caller(atLeast: .manager, for: "approvals")
                let contract = request.uri.queryParameters.get("contract").map { String($0) }
                return try JSONBody.response(try api.ledger.pendingEntries(contractID: contract))
            }
        }
        router.get("audit") { request, context in
            try await handle {
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
    static func handle(_ body: () async throws -> Response) async throws -> Response {
        do {
            return try await body()
        } catch let failure as APIFailure {
            return try JSONBody.error(failure.status, failure.message, field: failure.field)
        } catch let error as LedgerError {
            return try JSONBody.error(error.httpStatus, error.message, field: error.field)
        }
    }
}

extension LedgerError {
    /// How the API and the dashboard answer a refusal of the use cases.
    var httpStatus: HTTPResponse.Status {
        switch code {
        case .unknownTicket, .unknownTimer, .unknownEntry, .unknownContract, .unknownTopUp: .notFound
        case .notYours: .forbidden
        case .transition: .conflict
        case .invalid: .badRequest
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
struct TimerBody: Codable {
    var id: Int64
    var technician: Int
    var ticketID: Int
    var status: String
    var elapsedSeconds: Int
    var startedAt: Date
    var needsReview: Bool
    /// Why it waits for review: `cap` or `ticket_closed`; absent when it does not.
    var reviewReason: String?
    var entryID: Int64?
    init(_ t: TimerRecord, now: Date) {
        id = t.id
        technician = t.technician
        ticketID = t.ticketID
        status = t.state.status.rawValue
        elapsedSeconds = t.state.elapsedSeconds(at: now)
        startedAt = t.startedAt
        needsReview = t.state.needsReview
        reviewReason = t.state.needsReview ? (t.state.reviewReason ?? .cap).rawValue : nil
        entryID = t.entryID
    }
    enum CodingKeys: String, CodingKey {
        case id, technician, status
        case ticketID = "ticket_id", elapsedSeconds = "elapsed_seconds", startedAt = "started_at", needsReview = "needs_review"
        case reviewReason = "review_reason", entryID = "entry_id"
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

