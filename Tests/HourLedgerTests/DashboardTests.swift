import FakeGLPI
import Foundation
import HourLedgerApp
import HourLedgerCore
import HourLedgerUseCases
import Hummingbird
import HummingbirdTesting
import Testing

/// The dashboard against the fake GLPI over real libcurl: sign-in checked by GLPI, who sees what, forms and their
/// anti-forgery token. The browser scenarios (BrowserTests) drive the same pages in Chromium.
@Suite struct DashboardTests {
    static let contracts = """
      - id: acme
        name: ACME support
        entity: 1
        quota_hours: 20
        period: monthly
        starts: 2026-01-01
        timezone: Europe/Paris
        rounding: { increment_minutes: 15, mode: up }
      - id: acme-projects
        name: ACME projects
        entity: 1
        quota_hours: 5
        period: monthly
        starts: 2026-01-01
        approval: required
        billing: payg
        rate: 9500
        customers_see_money: true
        match: { categories: [9] }
        priority: 5
      - id: beta
        name: Beta support
        entity: 2
        quota_hours: 10
        period: monthly
        starts: 2026-01-01
    """

    struct Setup {
        var glpi: FakeGLPIServer
        var runtime: Runtime
        var directory: TemporaryDirectory
    }

    static func setUp(contracts: String = Self.contracts) async throws -> Setup {
        let directory = TemporaryDirectory()
        let state = FakeGLPIState(clock: Date())
        state.addEntity(1, name: "Customer A")
        state.addEntity(2, name: "Customer B")
        state.addCategory(1, name: "Hardware")
        state.addCategory(9, name: "Projects")
        state.addPerson(.carol)
        state.addPerson(.alice)
        state.addPerson(FakeGLPIState.Person(id: 8, login: "manager.max", firstname: "Max", realname: "Boss", profileID: 7, profile: "Supervisor",
                                             interface: "central", entities: [0, 1, 2]))
        state.addTicket(1, name: "Laptop & <dock> broken", entity: 1, category: 1, groups: [1])
        state.addTicket(4, name: "VPN disconnects", entity: 2, category: 1, groups: [1])
        state.addTicket(5, name: "New office wiring", entity: 1, category: 9, groups: [1])
        state.addTask(ticket: 1, seconds: 1800 + 61)
        state.addTask(ticket: 4, seconds: 3600)
        let glpi = try await FakeGLPIServer(state: state)
        let config = try ConfigLoader.parse(configYAML(url: glpi.url, database: directory.path + "/ledger.sqlite", contracts: contracts))
        let runtime = try Runtime(configuration: config)
        _ = try await runtime.engine.syncOnce()
        return Setup(glpi: glpi, runtime: runtime, directory: directory)
    }

    /// The Alerts page names an alert about a ticket closed with no time as such, with its ticket, not as "0 %".
    @Test func theAlertsPageNamesATicketClosedWithNoTime() async throws {
        let setup = try await Self.setUp(contracts: Self.contracts.replacingOccurrences(of: """
                quota_hours: 10
                period: monthly
                starts: 2026-01-01
            """, with: """
                quota_hours: 10
                period: monthly
                starts: 2026-01-01
                alerts: { untimed: true }
            """))
        defer { Task { await setup.glpi.stop() } }
        #expect(setup.runtime.configuration.contracts.first { $0.id == "beta" }?.alertUntimed == true)
        setup.glpi.state.addTicket(6, name: "Mailbox full", entity: 2, category: 1, groups: [1])
        _ = try await setup.runtime.engine.syncOnce()
        setup.glpi.state.advance(seconds: 60)
        setup.glpi.state.updateTicket(6) { $0.status = 6 }
        _ = try await setup.runtime.engine.syncOnce()
        #expect(try setup.runtime.ledger.alerts().map(\.periodKey) == ["untimed:6"])
        try await buildApplication(runtime: setup.runtime).test(.router) { client in
            let manager = Browser(client)
            _ = try await manager.signIn("manager.max")
            let page = try await manager.get("/alerts")
            #expect(page.html.contains("closed with no time") && page.html.contains("#6") && !page.html.contains("0 %"), "\(page.html)")
        }
    }

    /// A browser's cookie jar over `app.test(.router)`.
    final class Browser: @unchecked Sendable {
        var cookies: [String: String] = [:]
        let client: any TestClientProtocol
        init(_ client: any TestClientProtocol) { self.client = client }

        struct Page { var status: HTTPResponse.Status; var headers: HTTPFields; var html: String }

        func get(_ uri: String, language: String = "en") async throws -> Page { try await send(.get, uri, body: nil, language: language) }

        func post(_ uri: String, _ fields: [String: String]) async throws -> Page {
            let body = fields.map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)" }.joined(separator: "&")
            return try await send(.post, uri, body: body, language: "en")
        }

        func send(_ method: HTTPRequest.Method, _ uri: String, body: String?, language: String) async throws -> Page {
            var headers: HTTPFields = [.acceptLanguage: language]
            if !cookies.isEmpty { headers[.cookie] = cookies.map { "\($0.key)=\($0.value)" }.joined(separator: "; ") }
            if body != nil { headers[.contentType] = "application/x-www-form-urlencoded" }
            let page = try await client.execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) { response in
                Page(status: response.status, headers: response.headers, html: String(buffer: response.body))
            }
            for value in page.headers[values: .setCookie] {
                let pair = value.split(separator: ";")[0].split(separator: "=", maxSplits: 1).map(String.init)
                if value.contains("Max-Age=0") { cookies[pair[0]] = nil } else { cookies[pair[0]] = pair.count > 1 ? pair[1] : "" }
            }
            return page
        }

        /// The anti-forgery token the last page's forms carry.
        static func csrf(_ html: String) -> String? {
            guard let range = html.range(of: #"name="csrf" value=""#) else { return nil }
            return String(html[range.upperBound...].prefix { $0 != "\"" })
        }

        func signIn(_ login: String, _ password: String = "Fixture-Pass-1") async throws -> Page {
            let form = try await get("/sign-in")
            return try await post("/sign-in", ["csrf": Self.csrf(form.html) ?? "", "login": login, "password": password, "next": "/"])
        }
    }

    /// A manager sells a customer ten more hours from the contract's page: the form takes hours as people type them
    /// and a price in the currency's own decimals, the card shows the purchased hours to everyone who sees the
    /// contract, only a manager sees the form, and a mistaken top-up is voided with a reason.
    @Test func aManagerAddsAndVoidsPurchasedHoursOnTheContractPage() async throws {
        let setup = try await Self.setUp()
        defer { Task { await setup.glpi.stop() } }
        let app = buildApplication(runtime: setup.runtime)
        let ledger = setup.runtime.ledger
        try await app.test(.router) { client in
            let manager = Browser(client)
            #expect(try await manager.signIn("manager.max").status == .seeOther)
            var page = try await manager.get("/contracts/acme")
            #expect(page.html.contains(#"id="top-up-form""#) && page.html.contains("No hours were purchased on this contract."))
            #expect(!page.html.contains(#"class="topup""#))
            let csrf = try #require(Browser.csrf(page.html))

            // Refused input re-shows the page with the reason, and stores nothing.
            for fields in [["hours": "ten", "note": "PO 4711"], ["hours": "10"], ["hours": "10", "note": "PO", "price": "600.505"],
                           ["hours": "10", "note": "PO", "expires": "2026-02-30"]] {
                page = try await manager.post("/contracts/acme/top-ups", fields.merging(["csrf": csrf]) { a, _ in a })
                #expect(page.status == .badRequest && page.html.contains(#"id="top-up-form""#), "\(fields)")
            }
            #expect(try await manager.post("/contracts/acme/top-ups", ["hours": "10", "note": "PO 4711"]).status == .forbidden)  // no token
            #expect(try ledger.topUps().isEmpty)

            page = try await manager.post("/contracts/acme/top-ups", ["csrf": csrf, "hours": "10", "note": "PO 4711", "price": "600,50", "expires": ""])
            #expect(page.headers[.location] == "/contracts/acme?done=topUpAddedNotice")
            let topUp = try #require(try ledger.topUps(contractID: "acme").first)
            #expect((topUp.seconds, topUp.note, topUp.price, topUp.expires, topUp.addedBy) == (36_000, "PO 4711", 60_050, nil, "manager.max"))
            page = try await manager.get("/contracts/acme?done=topUpAddedNotice")
            #expect(page.html.contains("The purchased hours are added."))
            // 20 h quota + 10 h bought − 0:45 used (30 min 61 s rounded up to the quarter hour).
            #expect(page.html.contains(#"<dd class="topup">10:00</dd>"#) && page.html.contains(#"<dd class="remaining">29:15</dd>"#))
            #expect(page.html.contains(#"<tr data-top-up="\#(topUp.id)">"#))
            // No expiry: the table says how long the hours last, under headers of its own (not the form's labels).
            #expect(page.html.contains(#"<td class="num">10:00</td><td>PO 4711</td><td>until used</td>"#), "\(page.html)")
            #expect(page.html.contains(#"<th scope="col">Bought</th><th scope="col">Usable through</th>"#))

            // The customer sees the purchased hours on the card, not the form; a technician cannot post one.
            let carol = Browser(client)
            _ = try await carol.signIn("customer.carol")
            let hers = try await carol.get("/contracts/acme")
            #expect(hers.html.contains(#"<dd class="topup">10:00</dd>"#) && !hers.html.contains("top-up-form"))
            let alice = Browser(client)
            _ = try await alice.signIn("tech.alice")
            let aliceToken = try #require(Browser.csrf(try await alice.get("/contracts/acme").html))
            #expect(try await alice.post("/contracts/acme/top-ups", ["csrf": aliceToken, "hours": "1", "note": "x"]).status == .notFound)

            #expect(try await manager.post("/contracts/acme/top-ups/\(topUp.id)/void", ["csrf": csrf]).status == .badRequest)
            page = try await manager.post("/contracts/acme/top-ups/\(topUp.id)/void", ["csrf": csrf, "reason": "PO cancelled"])
            #expect(page.headers[.location] == "/contracts/acme?done=topUpVoidedNotice")
            page = try await manager.get("/contracts/acme")
            #expect(!page.html.contains(#"<dd class="topup">"#) && page.html.contains(#"<dd class="remaining">19:15</dd>"#))
            #expect(page.html.contains("voided") && page.html.contains("PO cancelled"))
            #expect(try ledger.topUps().first?.voidReason == "PO cancelled")
        }
    }

    /// Staff of an MSP see hundreds of contracts: the cards come 24 to a page, in the book's order, with links to
    /// the pages around; a page number out of range shows the nearest page.
    @Test func theCardsComeTwentyFourToAPage() async throws {
        let many = (1...60).map { String(format: "  - { id: c%02d, name: Customer %02d, entity: %d, quota_hours: 10, starts: 2026-01-01 }", $0, $0, $0 <= 50 ? 1 : 2) }
            .joined(separator: "\n")
        let setup = try await Self.setUp(contracts: many)
        defer { Task { await setup.glpi.stop() } }
        let app = buildApplication(runtime: setup.runtime)
        @Sendable func shown(_ html: String) -> [String] {
            html.components(separatedBy: #"<li class="card" data-contract=""#).dropFirst().map { String($0.prefix { $0 != "\"" }) }
        }
        try await app.test(.router) { client in
            let manager = Browser(client)
            #expect(try await manager.signIn("manager.max").status == .seeOther)
            let first = try await manager.get("/contracts")
            #expect(shown(first.html) == (1...24).map { String(format: "c%02d", $0) })
            #expect(first.html.contains("<p>Contracts 1–24 of 60</p>"))
            #expect(first.html.contains(#"<a rel="next" href="/contracts?page=2">Next page</a>"#) && !first.html.contains(#"rel="prev""#))
            let second = try await manager.get("/contracts?page=2")
            #expect(shown(second.html) == (25...48).map { String(format: "c%02d", $0) })
            #expect(second.html.contains(#"href="/contracts?page=1">Previous page</a>"#) && second.html.contains(#"href="/contracts?page=3""#))
            let last = try await manager.get("/contracts?page=99")
            #expect(shown(last.html) == (49...60).map { String(format: "c%02d", $0) })
            #expect(last.html.contains("<p>Contracts 49–60 of 60</p>") && !last.html.contains(#"rel="next""#))
            #expect(shown(try await manager.get("/contracts?page=abc").html) == shown(first.html))
            #expect(try await manager.get("/contracts?page=2", language: "fr").html.contains("<p>Contrats 25 à 48 sur 60</p>"))

            // A customer of entity 2 sees their ten on one page, with no paging.
            let customer = Browser(client)
            setup.glpi.state.addPerson(FakeGLPIState.Person(id: 11, login: "customer.dora", firstname: "Dora", realname: "Client", profileID: 1,
                                                            profile: "Self-Service", interface: "helpdesk", entities: [2]))
            #expect(try await customer.signIn("customer.dora").status == .seeOther)
            let hers = try await customer.get("/contracts")
            #expect(shown(hers.html) == (51...60).map { String(format: "c%02d", $0) })
            #expect(!hers.html.contains(#"class="paging""#))
        }
    }

    /// The cards are kept between pages (`KeptCards`), never past a write: time logged shows on the next page, in
    /// each language, and a page in another language is not the first one's.
    @Test func aKeptCardShowsTheNextWriteAtOnce() async throws {
        let setup = try await Self.setUp()
        defer { Task { await setup.glpi.stop() } }
        let app = buildApplication(runtime: setup.runtime)
        @Sendable func used(_ html: String, _ contract: String) -> String? {
            guard let card = html.components(separatedBy: #"<li class="card" data-contract=""# + contract + "\"").dropFirst().first,
                  let range = card.range(of: #"<dd class="used">"#) else { return nil }
            return String(card[range.upperBound...].prefix { $0 != "<" })
        }
        try await app.test(.router) { client in
            let manager = Browser(client)
            #expect(try await manager.signIn("manager.max").status == .seeOther)
            // Ticket 1's 1861 s task, rounded up to 15 minutes.
            #expect(used(try await manager.get("/contracts").html, "acme") == "0:45")
            #expect(used(try await manager.get("/contracts").html, "acme") == "0:45")
            #expect(try await manager.get("/contracts", language: "fr").html.contains("Consommé"))
            _ = try await setup.runtime.ledger.addEntry(NewEntry(ticketID: 1, technician: 7, startedAt: Date(), rawSeconds: 600, kind: .billable,
                                                                 note: "call", createdBy: "alice"))
            #expect(used(try await manager.get("/contracts").html, "acme") == "1:00")
            let french = try await manager.get("/contracts", language: "fr").html
            #expect(used(french, "acme") == "1:00" && french.contains("Consommé") && !french.contains(">Used<"))
            #expect(used(try await manager.get("/contracts").html, "beta") == "1:00")
        }
    }

    @Test func aCustomerSeesExactlyTheirContractsAndNothingElse() async throws {
        let setup = try await Self.setUp()
        defer { Task { await setup.glpi.stop() } }
        let app = buildApplication(runtime: setup.runtime)
        try await app.test(.router) { client in
            let browser = Browser(client)
            #expect(try await browser.get("/contracts").status == .seeOther)
            setup.glpi.state.clearRequests()
            let signedIn = try await browser.signIn("customer.carol")
            #expect(signedIn.status == .seeOther)
            #expect(signedIn.headers[.location] == "/contracts")
            let cookie = try #require(signedIn.headers[values: .setCookie].first { $0.hasPrefix("hourledger_session=") })
            #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"))
            // GLPI itself checked the password: initSession with her Basic credentials and the App-Token, then killSession
            // before she is let in.
            let calls = setup.glpi.state.requests
            let login = try #require(calls.first)
            #expect(login.target == "/apirest.php/initSession?get_full_session=true")
            #expect(login.headers["authorization"] == "Basic " + Data("customer.carol:Fixture-Pass-1".utf8).base64EncodedString())
            #expect(login.headers["app-token"] == "fixture-app-token")
            #expect(calls.contains { $0.target == "/apirest.php/killSession" })

            let page = try await browser.get("/contracts")
            #expect(page.status == .ok)
            #expect(page.html.contains("Carol Client"))
            // ACME: 1861 s rounded up to 15 min is 2700 s = 0:45 of 20:00; Beta (entity 2) is not hers.
            #expect(page.html.contains(#"data-contract="acme""#))
            #expect(page.html.contains(#"<dd class="used">0:45</dd>"#))
            #expect(page.html.contains(#"<dd class="remaining">19:15</dd>"#))
            #expect(!page.html.contains("Beta support"))
            #expect(!page.html.contains("VPN"))
            let detail = try await browser.get("/contracts/acme")
            #expect(detail.html.contains("Laptop &amp; &lt;dock&gt; broken"))   // decoded from GLPI's encoding, escaped once for HTML
            #expect(!detail.html.contains("id=\"invoice\""))                     // ACME does not show customers money
            #expect(try await browser.get("/contracts/acme-projects").html.contains("id=\"invoice\""))
            // Another customer's contract, ticket, or a staff page: 404, as if they did not exist.
            #expect(try await browser.get("/contracts/beta").status == .notFound)
            #expect(try await browser.get("/contracts/beta/tickets.csv").status == .notFound)
            #expect(try await browser.get("/contracts/acme/tickets/4").status == .notFound)
            #expect(try await browser.get("/contracts/nope").status == .notFound)
            #expect(try await browser.get("/work").status == .notFound)
            #expect(try await browser.get("/approvals").status == .notFound)
            let csv = try await browser.get("/contracts/acme/tickets.csv")
            #expect(csv.headers[.contentType] == "text/csv; charset=utf-8")
            let rows = csv.html.split(separator: "\n")
            #expect(rows.count == 2)
            #expect(rows[1].hasPrefix("acme,"))
            #expect(rows[1].contains(",1,Laptop & <dock> broken,2700,0:45,1861,1,"))
            // After sign-in, only a path of this site: never another host.
            let other = Browser(client)
            let form = try await other.get("/sign-in?next=//evil.example/x")
            #expect(form.html.contains(#"name="next" value="//evil.example/x""#))   // shown as typed, escaped
            for next in ["//evil.example/x", "https://evil.example/", "/\\evil.example"] {
                other.cookies = [:]
                let signInForm = try await other.get("/sign-in")
                let answer = try await other.post("/sign-in", ["csrf": Browser.csrf(signInForm.html) ?? "", "login": "customer.carol", "password": "Fixture-Pass-1",
                                                               "next": next])
                #expect(answer.headers[.location] == "/contracts", "\(next)")
            }
            let kept = Browser(client)
            let keptForm = try await kept.get("/sign-in")
            #expect(try await kept.post("/sign-in", ["csrf": Browser.csrf(keptForm.html) ?? "", "login": "customer.carol", "password": "Fixture-Pass-1",
                                                     "next": "/contracts/acme?period=x"]).headers[.location] == "/contracts/acme?period=x")
            // French, from Accept-Language.
            let french = try await browser.get("/contracts", language: "fr-CH, fr;q=0.9, en;q=0.8")
            #expect(french.html.contains("<html lang=\"fr\">") && french.html.contains("Consommé"))
        }
    }

    /// A contract kept in GLPI: its customer sees it under GLPI's name, counted by the terms of the config, and not the
    /// other customer's.
    @Test func aCustomerSeesTheirContractKeptInGLPI() async throws {
        let setup = try await Self.setUp(contracts: """
              []
            helpdesk_contracts:
              by_type:
                "Prepaid support hours": { quota_hours: 20, rounding: { increment_minutes: 15, mode: up } }
            """)
        defer { Task { await setup.glpi.stop() } }
        let app = buildApplication(runtime: setup.runtime)
        try await app.test(.router) { client in
            let browser = Browser(client)
            #expect(try await browser.signIn("customer.carol").status == .seeOther)
            let page = try await browser.get("/contracts")
            #expect(page.html.contains(#"data-contract="glpi-1""#) && page.html.contains("Support Hours 2026 - Customer A"))
            #expect(page.html.contains(#"<dd class="used">0:45</dd>"#) && page.html.contains(#"<dd class="remaining">19:15</dd>"#))
            #expect(!page.html.contains("Customer B") && !page.html.contains("glpi-2"))
            #expect(try await browser.get("/contracts/glpi-1").html.contains("Laptop &amp; &lt;dock&gt; broken"))
            #expect(try await browser.get("/contracts/glpi-2").status == .notFound)
        }
    }

    @Test func aWrongPasswordGetsTheGenericErrorAndAttemptsAreLimited() async throws {
        let setup = try await Self.setUp()
        defer { Task { await setup.glpi.stop() } }
        try await buildApplication(runtime: setup.runtime).test(.router) { client in
            let browser = Browser(client)
            setup.glpi.state.clearRequests()
            for _ in 0..<5 {
                let page = try await browser.signIn("customer.carol", "wrong")
                #expect(page.status == .unauthorized)
                #expect(page.html.contains("Sign-in failed. Check your login and password, or try again later."))
                #expect(browser.cookies["hourledger_session"] == nil)
            }
            let unknown = try await browser.signIn("nobody.here", "wrong")
            #expect(unknown.html.contains("Sign-in failed. Check your login and password, or try again later."))
            // The sixth failure for this login is refused without asking GLPI, even with the right password.
            let locked = try await browser.signIn("customer.carol")
            #expect(locked.status == .tooManyRequests)
            #expect(locked.html.contains("Sign-in failed. Check your login and password, or try again later."))
            #expect(setup.glpi.state.requests.filter { $0.target.hasPrefix("/apirest.php/initSession") }.count == 6)
            let metrics = try await browser.get("/metrics").html
            #expect(metrics.contains(#"hourledger_dashboard_sign_ins_total{outcome="refused"} 6"#))
            #expect(metrics.contains(#"hourledger_dashboard_sign_ins_total{outcome="locked"} 1"#))
            // Another login from the same address is still asked about.
            #expect(try await browser.signIn("tech.alice").status == .seeOther)
        }
    }

    @Test func formsWithoutTheSessionTokenAreRefusedAndChangeNothing() async throws {
        let setup = try await Self.setUp()
        defer { Task { await setup.glpi.stop() } }
        try await buildApplication(runtime: setup.runtime).test(.router) { client in
            let browser = Browser(client)
            // The sign-in form itself needs its token.
            let forgedSignIn = try await browser.post("/sign-in", ["login": "tech.alice", "password": "Fixture-Pass-1"])
            #expect(forgedSignIn.status == .forbidden)
            _ = try await browser.signIn("tech.alice")
            for fields in [["ticket": "1"], ["ticket": "1", "csrf": "guess"]] {
                let forged = try await browser.post("/work/timers", fields)
                #expect(forged.status == .forbidden)
                #expect(forged.html.contains("This form has expired or did not come from this page."))
            }
            #expect(try setup.runtime.ledger.timers(technician: 7, openOnly: true).isEmpty)
        }
    }

    @Test func aTechnicianRunsATimerAndAManagerApproves() async throws {
        let setup = try await Self.setUp()
        defer { Task { await setup.glpi.stop() } }
        try await buildApplication(runtime: setup.runtime).test(.router) { client in
            let tech = Browser(client)
            #expect(try await tech.signIn("tech.alice").headers[.location] == "/work")
            var work = try await tech.get("/work")
            let csrf = try #require(Browser.csrf(work.html))
            #expect(try await tech.post("/work/timers", ["csrf": csrf, "ticket": "5"]).headers[.location] == "/work?done=timerStarted")
            let timer = try #require(try setup.runtime.ledger.timers(technician: 7, openOnly: true).first)
            work = try await tech.get("/work")
            #expect(work.html.contains(#"id="timer-\#(timer.id)""#))
            #expect(work.html.contains("class=\"timerbar\""))
            // Stopping asks for the note; without one nothing is stopped.
            #expect(try await tech.post("/work/timers/\(timer.id)/stop", ["csrf": csrf, "kind": "billable"]).status == .badRequest)
            let stopped = try await tech.post("/work/timers/\(timer.id)/stop", ["csrf": csrf, "kind": "billable", "note": "Patched the rack"])
            #expect(stopped.headers[.location] == "/work?done=timerStopped")
            let entry = try #require(try setup.runtime.ledger.workEntries(ticketID: 5).first)
            #expect(entry.contractID == "acme-projects")
            #expect(entry.approval == .pending)
            #expect(entry.note == "Patched the rack")
            // Waiting for approval, it is not written to GLPI yet.
            #expect(!(try setup.runtime.ledger.outboxItems().contains { $0.entryKey == entry.key }))
            // A manual entry of 1:30, typed in the contract's time zone.
            let manual = try await tech.post("/work/entries", ["csrf": csrf, "ticket": "1", "day": "2026-11-30", "time": "09:00", "duration": "1:30",
                                                               "kind": "billable", "note": "On site"])
            #expect(manual.headers[.location] == "/work?done=entryLogged")
            let logged = try #require(try setup.runtime.ledger.workEntries(ticketID: 1).first)
            #expect((logged.rawSeconds, logged.workedAt) == (5400, Date.utc("2026-11-30 08:00:00")))
            #expect(try await tech.post("/work/entries", ["csrf": csrf, "ticket": "1", "day": "2026-11-30", "time": "09:00", "duration": "90:75"]).status == .badRequest)

            let manager = Browser(client)
            _ = try await manager.signIn("manager.max")
            let approvals = try await manager.get("/approvals")
            #expect(approvals.html.contains(#"data-entry="\#(entry.key)""#))
            let token = try #require(Browser.csrf(approvals.html))
            #expect(try await manager.post("/approvals/\(entry.key)", ["csrf": token, "decision": "approve", "note": "ok"]).headers[.location] == "/approvals?done=entryApproved")
            #expect(try setup.runtime.ledger.workEntries(ticketID: 5).first?.approval == .approved)
            #expect(try setup.runtime.ledger.outboxItems().contains { $0.entryKey == entry.key && $0.action == .create })
            // The technician may not approve.
            #expect(try await tech.post("/approvals/\(entry.key)", ["csrf": csrf, "decision": "reject"]).status == .notFound)
            for page in ["/alerts", "/unmatched", "/outbox", "/reports", "/reports.csv?kind=tickets"] {
                #expect(try await manager.get(page).status == .ok, "\(page)")
            }
            #expect(try await manager.get("/reports?from=2026-13-01").status == .badRequest)
            // The report by ticket type: the 1:30 logged on ticket 1, an incident in GLPI, under its type.
            let types = try await manager.get("/reports?kind=types&from=2026-11-01&to=2026-12-01")
            #expect(types.html.contains("By ticket type"), "\(types.html)")
            #expect(types.html.contains("<td>Incident</td>"), "\(types.html)")
            let csvText = try await manager.get("/reports.csv?kind=categories&from=2026-11-01&to=2026-12-01").html
            #expect(csvText.hasPrefix("contract_id,category,ticket_count,"), "\(csvText)")
        }
    }
}
