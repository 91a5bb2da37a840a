import Foundation
import HourLedgerCore
import HourLedgerUseCases
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The dashboard: server-rendered pages for customers, technicians and managers, signed in with their helpdesk
/// account. Every page reads through the same use cases as the API, and every form post is checked for the
/// session's anti-forgery token before anything is read from it.
public enum DashboardRoutes {
    public static func register(on router: Router<LedgerRequestContext>, dashboard: Dashboard) {
        router.get("/assets/dashboard.css") { _, _ in asset(DashboardAssets.css, type: "text/css; charset=utf-8") }
        router.get("/assets/dashboard.js") { _, _ in asset(DashboardAssets.js, type: "text/javascript; charset=utf-8") }
        router.get("/") { request, _ in
            guard let viewer = dashboard.viewer(request) else { return redirect("/sign-in") }
            return redirect(viewer.role == .technician ? "/work" : "/contracts")
        }
        router.get("/sign-in") { request, context in
            try signInPage(dashboard, Visit(dashboard, request, context), login: "", error: nil, status: .ok)
        }
        router.post("/sign-in") { request, context in try await signIn(dashboard, request, context) }
        router.post("/sign-out") { request, context in
            let form = try await FormBody.read(request)
            if let token = request.cookies[Dashboard.sessionCookie]?.value, let viewer = dashboard.viewer(request) {
                guard form.carries(csrf: viewer.csrfToken) else { return try forged(Visit(dashboard, request, context)) }
                dashboard.sessions.end(token: token)
            }
            var response = redirect("/sign-in?done=signedOut")
            response.headers.append(HTTPField(name: .setCookie, value: dashboard.cookie(Dashboard.sessionCookie, "", maxAge: 0, request: request)))
            return response
        }

        let pages = router.group().add(middleware: DashboardAuthentication(dashboard: dashboard))
        CustomerPages.register(on: pages, dashboard: dashboard)
        WorkPages.register(on: pages, dashboard: dashboard)
        ManagerPages.register(on: pages, dashboard: dashboard)
    }

    // MARK: Sign-in

    static func signInPage(_ dashboard: Dashboard, _ visit: Visit, login: String, error: String?, status: HTTPResponse.Status,
                           next: String? = nil) throws -> Response {
        let token = SessionStore.randomToken()
        var visit = visit
        visit.error = error
        visit.csrfOverride = token
        let helpdesk = dashboard.api.helpdeskKind.displayName
        var response = visit.render("sign-in", title: visit.t["signInTitle"]!, status: status, [
            "login": login, "next": next ?? visit.request.uri.queryParameters.get("next") ?? "/",
            "signInHelp": visit.language == .fr ? "Utilisez votre identifiant et votre mot de passe \(helpdesk)." : "Use your \(helpdesk) login and password.",
        ])
        response.headers.append(HTTPField(name: .setCookie, value: dashboard.cookie(Dashboard.signInCookie, token, maxAge: 3600, request: visit.request)))
        return response
    }

    static func signIn(_ dashboard: Dashboard, _ request: Request, _ context: LedgerRequestContext) async throws -> Response {
        let visit = Visit(dashboard, request, context)
        let form = try await FormBody.read(request)
        guard let expected = request.cookies[Dashboard.signInCookie]?.value, !expected.isEmpty, form.carries(csrf: expected) else {
            return try forged(visit)
        }
        let login = form.fields["login"]?.trimmingCharacters(in: .whitespaces) ?? ""
        let password = form.fields["password"] ?? ""
        let next = safeNext(form["next"])
        let address = dashboard.clientAddress(request, context)
        let now = Date()
        let generic = visit.t["signInFailed"]!
        guard SignInBounds.acceptable(login: login, password: password) else {
            dashboard.count("refused")
            return try signInPage(dashboard, visit, login: String(login.prefix(SignInBounds.maxLoginLength)), error: generic, status: .unauthorized, next: next)
        }
        guard dashboard.limiter.allows(login: login, address: address, now: now) else {
            dashboard.count("locked")
            context.logger.notice("dashboard sign-in refused: too many failures", metadata: ["login": "\(login)", "address": "\(address)"])
            return try signInPage(dashboard, visit, login: login, error: generic, status: .tooManyRequests, next: next)
        }
        let person: HelpdeskPerson
        do {
            person = try await dashboard.signIn.signIn(login: login, password: password)
        } catch let refused as SignInRefused {
            dashboard.limiter.failed(login: login, address: address, now: now)
            dashboard.count("refused")
            context.logger.notice("dashboard sign-in refused", metadata: ["login": "\(login)", "address": "\(address)", "reason": "\(refused.reason)"])
            return try signInPage(dashboard, visit, login: login, error: generic, status: .unauthorized, next: next)
        } catch {
            dashboard.count("unavailable")
            context.logger.warning("dashboard sign-in: the helpdesk could not be asked", metadata: ["login": "\(login)", "error": "\(error)"])
            return try signInPage(dashboard, visit, login: login, error: visit.t["signInUnavailable"]!, status: .serviceUnavailable, next: next)
        }
        dashboard.limiter.succeeded(login: login)
        let role = dashboard.roles.role(of: person)
        let (token, _) = dashboard.sessions.start(person: person, role: role, now: now)
        dashboard.count("ok")
        context.logger.info("dashboard sign-in", metadata: ["login": "\(person.login)", "user": "\(person.userID)", "role": "\(role?.rawValue ?? "customer")"])
        var response = redirect(next == "/" ? (role == .technician ? "/work" : "/contracts") : next)
        response.headers.append(HTTPField(name: .setCookie, value: dashboard.cookie(Dashboard.sessionCookie, token, maxAge: dashboard.settings.maxSeconds, request: request)))
        response.headers.append(HTTPField(name: .setCookie, value: dashboard.cookie(Dashboard.signInCookie, "", maxAge: 0, request: request)))
        return response
    }

    /// Only a path of this site: an absolute URL or `//host` would send the person elsewhere after sign-in.
    static func safeNext(_ next: String?) -> String {
        guard let next, next.hasPrefix("/"), !next.hasPrefix("//"), !next.contains("\\"), next.count < 2000 else { return "/" }
        return next
    }

    // MARK: Answers

    static func redirect(_ location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location, .cacheControl: "no-store"])
    }

    static func forged(_ visit: Visit) throws -> Response {
        visit.message(status: .forbidden, heading: visit.t["forbidden"]!, text: visit.t["csrfText"]!)
    }

    static func asset(_ text: String, type: String) -> Response {
        Response(status: .ok, headers: [.contentType: type, .cacheControl: "public, max-age=3600"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// Runs a page; a refusal or a ledger error becomes a page saying what went wrong, never a stack of JSON.
    static func page(_ visit: Visit, _ body: () async throws -> Response) async throws -> Response {
        do {
            return try await body()
        } catch let failure as PageFailure {
            return visit.message(status: failure.status, heading: visit.t[failure.key] ?? failure.key,
                                 text: failure.detail ?? visit.t[failure.key + "Text"] ?? "")
        }
    }

    /// Runs a form post: the token first, then the action; success goes back to `done` with a message (POST, redirect,
    /// GET), a refusal re-shows the page it came from with the reason.
    static func post(_ visit: Visit, back: String, _ body: (FormBody) async throws -> String,
                     reshow: (Visit) async throws -> Response) async throws -> Response {
        let form = try await FormBody.read(visit.request)
        guard let viewer = visit.viewer, form.carries(csrf: viewer.csrfToken) else { return try forged(visit) }
        var failed = visit
        do {
            let done = try await body(form)
            return redirect(back + (back.contains("?") ? "&" : "?") + "done=" + done)
        } catch let failure as PageFailure where failure.status == .notFound {
            return visit.message(status: .notFound, heading: visit.t["notFound"]!, text: visit.t["notFoundText"]!)
        } catch let failure as PageFailure {
            failed.error = failure.detail ?? visit.t[failure.key] ?? failure.key
            failed.status = failure.status
        } catch let failure as APIFailure {
            failed.error = failure.message
            failed.status = failure.status
        } catch let error as LedgerError {
            failed.error = error.message
            failed.status = error.httpStatus
        }
        return try await reshow(failed)
    }
}

extension RouterGroup where Context == LedgerRequestContext {
    /// A page of the dashboard: its visit, and a refusal (404 for what is not the person's) shown as a page.
    func page(_ path: RouterPath, _ dashboard: Dashboard, _ body: @escaping @Sendable (Visit) async throws -> Response) {
        get(path) { request, context in
            let visit = Visit(dashboard, request, context)
            return try await DashboardRoutes.page(visit) { try await body(visit) }
        }
    }

    /// A form of the dashboard: the token first, then `action`, which names the message to show on `back`; a refusal
    /// shows `reshow` again with the reason.
    func form(_ path: RouterPath, _ dashboard: Dashboard, back: String, reshow: @escaping @Sendable (Visit) async throws -> Response,
              _ action: @escaping @Sendable (Visit, FormBody) async throws -> String) {
        post(path) { request, context in
            let visit = Visit(dashboard, request, context)
            return try await DashboardRoutes.page(visit) {
                try await DashboardRoutes.post(visit, back: back, { form in try await action(visit, form) }, reshow: reshow)
            }
        }
    }
}

/// One page view: who asks, in which language, and the messages to show.
struct Visit: Sendable {
    let dashboard: Dashboard
    let request: Request
    let context: LedgerRequestContext
    let viewer: Viewer?
    let language: Language
    let t: [String: String]
    let formats: Formats
    var notice: String?
    var error: String?
    var status: HTTPResponse.Status = .ok
    /// The sign-in form's token, before there is a session.
    var csrfOverride: String?

    init(_ dashboard: Dashboard, _ request: Request, _ context: LedgerRequestContext) {
        self.dashboard = dashboard
        self.request = request
        self.context = context
        viewer = context.viewer
        language = Language.preferred(request.headers[.acceptLanguage])
        t = DashboardStrings.table(language)
        formats = Formats(language: language)
        if let done = request.uri.queryParameters.get("done"), let text = t[String(done)], DashboardStrings.notices.contains(String(done)) {
            notice = text
        }
    }

    var now: Date { dashboard.api.clock() }

    func staff() throws -> Viewer {
        guard let viewer, viewer.isStaff else { throw PageFailure.notFound }
        return viewer
    }

    func manager() throws -> (Viewer, Principal) {
        guard let viewer, viewer.isManager, let principal = viewer.principal else { throw PageFailure.notFound }
        return (viewer, principal)
    }

    func message(status: HTTPResponse.Status, heading: String, text: String) -> Response {
        render("message", title: heading, status: status, ["heading": heading, "text": text])
    }

    /// Renders a page with what every page shows: the person, the menu, their open timers, the messages.
    func render(_ template: String, title: String, status: HTTPResponse.Status? = nil, nav: String? = nil, _ data: [String: Any]) -> Response {
        var context: [String: Any] = ["lang": language.rawValue, "t": t, "title": title, "csrf": csrfOverride ?? viewer?.csrfToken ?? ""]
        if let viewer {
            context["viewer"] = ["name": viewer.person.displayName, "isStaff": viewer.isStaff, "isManager": viewer.isManager] as [String: Any]
            if viewer.isStaff, let timers = try? dashboard.api.ledger.timers(technician: viewer.person.userID, openOnly: true), !timers.isEmpty {
                context["hasTimers"] = true
                context["timerBar"] = timers.map { WorkPages.timerModel($0, visit: self, names: [:]) }
            }
        }
        if let nav { context["nav"] = [nav: true] }
        if let notice { context["notice"] = notice }
        if let error { context["error"] = error }
        for (key, value) in data { context[key] = value }
        let html = DashboardTemplates.library.render(context, withTemplate: template) ?? "template \(template) is missing"
        return Response(status: status ?? self.status, headers: DashboardAssets.pageHeaders, body: .init(byteBuffer: ByteBuffer(string: html)))
    }
}

extension DashboardStrings {
    /// The message keys a `done=` parameter may name: anything else is ignored, so a link cannot put words on the page.
    static let notices: Set<String> = ["timerStarted", "timerPaused", "timerResumed", "timerStopped", "entryLogged", "entryApproved", "entryRejected",
                                       "outboxRetried", "outboxDiscarded", "signedOut", "topUpAddedNotice", "topUpVoidedNotice"]
}
