import CoreMetrics
import Foundation
import HourLedgerCore
import HourLedgerUseCases
import HTTPTypes
import Hummingbird

/// What the dashboard needs: the API's context, the helpdesk that checks passwords, the staff roles, and the
/// sessions and sign-in limits it keeps in memory.
public struct Dashboard: Sendable {
    public let api: LedgerAPIContext
    public let settings: DashboardSettings
    public let roles: StaffRoles
    public let signIn: any HelpdeskSignIn
    public let sessions: SessionStore
    public let limiter: SignInLimiter
    /// `hourledger_dashboard_sign_ins_total{outcome}`: ok, refused (wrong login or password), locked (too many
    /// failures), unavailable (the helpdesk could not be asked); and the live sessions.
    let signIns: [String: Counter]
    let sessionGauge: Gauge
    /// The contract cards as last rendered (see `KeptCards`).
    let cards = KeptCards()

    public init(api: LedgerAPIContext, settings: DashboardSettings, roles: StaffRoles, signIn: any HelpdeskSignIn,
                metrics: any MetricsFactory = NOOPMetricsHandler.instance) {
        signIns = Dictionary(uniqueKeysWithValues: ["ok", "refused", "locked", "unavailable"].map {
            ($0, Counter(label: "hourledger_dashboard_sign_ins_total", dimensions: [("outcome", $0)], factory: metrics))
        })
        sessionGauge = Gauge(label: "hourledger_dashboard_sessions", factory: metrics)
        self.api = api
        self.settings = settings
        self.roles = roles
        self.signIn = signIn
        sessions = SessionStore(idleSeconds: settings.idleSeconds, maxSeconds: settings.maxSeconds)
        limiter = SignInLimiter(perLogin: settings.maxFailuresPerLogin, perAddress: settings.maxFailuresPerAddress,
                                windowSeconds: settings.lockoutSeconds)
    }

    static let sessionCookie = "hourledger_session"
    /// Before sign-in there is no session: the sign-in form's token is checked against this cookie instead.
    static let signInCookie = "hourledger_signin"

    func count(_ outcome: String) {
        signIns[outcome]?.increment()
        sessionGauge.record(sessions.count)
    }

    func viewer(_ request: Request) -> Viewer? {
        guard let token = request.cookies[Self.sessionCookie]?.value, !token.isEmpty, token.count < 100 else { return nil }
        return sessions.viewer(token: token, now: Date())
    }

    /// Whether the browser reached us over TLS: directly, or through a trusted proxy that says so.
    func secure(_ request: Request) -> Bool {
        switch settings.secureCookie {
        case .always: return true
        case .never: return false
        case .auto:
            if request.uri.scheme == .https { return true }
            return settings.behindProxy && request.headers[HTTPField.Name("X-Forwarded-Proto")!]?.lowercased() == "https"
        }
    }

    /// The client's address: the peer, or the first hop a trusted proxy names.
    func clientAddress(_ request: Request, _ context: LedgerRequestContext) -> String {
        if settings.behindProxy, let forwarded = request.headers[HTTPField.Name("X-Forwarded-For")!]?.split(separator: ",").first {
            return forwarded.trimmingCharacters(in: .whitespaces)
        }
        return context.peerAddress
    }

    func cookie(_ name: String, _ value: String, maxAge: Int, request: Request) -> String {
        "\(name)=\(value); Path=/; Max-Age=\(maxAge); HttpOnly; SameSite=Lax" + (secure(request) ? "; Secure" : "")
    }
}

/// Puts the signed-in person in the context of every dashboard page; without a live session a page answers with
/// a redirect to the sign-in form (which comes back here after), never with data.
struct DashboardAuthentication: RouterMiddleware {
    let dashboard: Dashboard

    func handle(_ request: Request, context: LedgerRequestContext,
                next: (Request, LedgerRequestContext) async throws -> Response) async throws -> Response {
        guard let viewer = dashboard.viewer(request) else {
            let target = request.method == .get ? request.uri.path + (request.uri.query.map { "?" + $0 } ?? "") : "/"
            return DashboardRoutes.redirect("/sign-in?next=" + (target.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "/"))
        }
        var context = context
        context.viewer = viewer
        return try await next(request, context)
    }
}

/// A page that cannot be shown: its status and the message key.
struct PageFailure: Error {
    var status: HTTPResponse.Status
    var key: String
    var detail: String?

    static let notFound = PageFailure(status: .notFound, key: "notFound")
}

/// A form post, parsed with a size limit; `require` names the field a person must fix.
struct FormBody {
    var fields: [String: String]

    static let maxBytes = 16 * 1024

    static func read(_ request: Request) async throws -> FormBody {
        let buffer = try await request.body.collect(upTo: maxBytes)
        return FormBody(fields: parse(String(buffer: buffer)))
    }

    static func parse(_ text: String) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in text.split(separator: "&").prefix(100) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let decode = { (part: Substring) in String(part).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "" }
            guard let name = parts.first.map(decode), !name.isEmpty else { continue }
            fields[name] = parts.count > 1 ? decode(parts[1]) : ""
        }
        return fields
    }

    subscript(_ name: String) -> String? {
        fields[name].map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Whether the form carries the token the page was given, compared in constant time.
    func carries(csrf expected: String) -> Bool {
        guard let offered = fields["csrf"] else { return false }
        return ConstantTime.equal(Array(offered.utf8), Array(expected.utf8))
    }
}
