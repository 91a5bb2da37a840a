import Foundation
import HourLedgerCore
import HourLedgerUseCases
import Hummingbird

/// Every request's context: Hummingbird's own, plus who sent it once `TokenAuthentication` has checked the token.
public struct LedgerRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Set by `TokenAuthentication` on every route of the API group; nil on public routes (health, webhooks, metrics).
    public var principal: Principal?
    /// Set by `DashboardAuthentication` on the dashboard's pages: the signed-in person.
    public var viewer: Viewer?
    /// The peer's address, for limits on sign-in attempts.
    public let peerAddress: String

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        peerAddress = source.channel.remoteAddress?.ipAddress ?? "unknown"
    }

    /// The authenticated caller. Only a route outside the authenticated group could find none: a wiring mistake,
    /// answered 401 rather than trusted.
    func caller() throws -> Principal {
        guard let principal else { throw APIFailure(.unauthorized, "send an API token as 'Authorization: Bearer <token>'", field: "Authorization") }
        return principal
    }

    /// The caller, if their role is at least `role`; otherwise 403 saying what needs it.
    @discardableResult
    func caller(atLeast role: Principal.Role, for what: String) throws -> Principal {
        let principal = try caller()
        guard principal.role >= role else { throw APIFailure(.forbidden, "\(what) need the \(role.rawValue) role", field: "Authorization") }
        return principal
    }
}

/// Checks `Authorization: Bearer <token>` against the ledger's tokens before any handler of its group runs, and puts
/// the principal in the context. A missing, unknown or revoked token is answered 401 in the API's error shape.
public struct TokenAuthentication: RouterMiddleware {
    let api: LedgerAPIContext

    public init(api: LedgerAPIContext) { self.api = api }

    public func handle(_ request: Request, context: LedgerRequestContext,
                next: (Request, LedgerRequestContext) async throws -> Response) async throws -> Response {
        var context = context
        do {
            context.principal = try principal(request)
        } catch let failure as APIFailure {
            return try JSONBody.error(failure.status, failure.message, field: failure.field)
        }
        return try await next(request, context)
    }

    private func principal(_ request: Request) throws -> Principal {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else {
            throw APIFailure(.unauthorized, "send an API token as 'Authorization: Bearer <token>'", field: "Authorization")
        }
        guard let principal = try api.ledger.principal(forToken: String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces)) else {
            throw APIFailure(.unauthorized, "unknown or revoked API token", field: "Authorization")
        }
        return principal
    }
}
