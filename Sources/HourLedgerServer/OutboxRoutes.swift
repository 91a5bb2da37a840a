import Foundation
import HourLedgerCore
import HourLedgerUseCases
import Hummingbird

/// Write-backs waiting for the helpdesk: managers see them, retry the ones the helpdesk refused once the cause is
/// fixed, or discard them with a reason (audited).
public enum OutboxRoutes {
    /// Registers on the authenticated API group (`/api/v1`).
    public static func register(on router: some RouterMethods<LedgerRequestContext>, context api: LedgerAPIContext) {
        router.get("outbox") { request, context in
            try await WorkRoutes.handle {
                try context.caller(atLeast: .manager, for: "write-backs")
                let state = request.uri.queryParameters.get("state").map { String($0) } ?? "pending"
                guard state == "pending" || state == "parked" else {
                    throw APIFailure(.badRequest, "state must be pending or parked", field: "state")
                }
                return try JSONBody.response(try api.ledger.outboxItems(parkedOnly: state == "parked"))
            }
        }
        router.post("outbox/{id}/retry") { request, context in
            try await WorkRoutes.handle {
                let principal = try context.caller(atLeast: .manager, for: "write-backs")
                let id = try recordID(context)
                let item = try await api.ledger.retryOutbox(id: id, actor: principal.user)
                return try JSONBody.response(item)
            }
        }
        router.post("outbox/{id}/discard") { request, context in
            try await WorkRoutes.handle {
                let principal = try context.caller(atLeast: .manager, for: "write-backs")
                let id = try recordID(context)
                let reason = try await WorkRoutes.decode(ReasonRequest.self, request, optional: true).reason?.value ?? ""
                return try JSONBody.response(try await api.ledger.discardOutbox(id: id, actor: principal.user, reason: reason,
                                                                                fenceSeconds: api.writeFenceSeconds))
            }
        }
    }

    static func recordID(_ context: some RequestContext) throws -> Int64 {
        guard let id = Int64(try context.parameters.require("id")), id > 0 else {
            throw APIFailure(.badRequest, "the write-back id must be a positive number", field: "id")
        }
        return id
    }
}
