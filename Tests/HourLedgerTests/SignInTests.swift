import FakeGLPI
import FakeITop
import Foundation
import HourLedgerCore
import HourLedgerGLPI
import HourLedgerHelpdeskKit
import HourLedgerHTTPClient
import HourLedgerITop
import HourLedgerUseCases
import Testing

/// A person's own login, checked by the helpdesk through the real libcurl client: who they are comes from the
/// helpdesk's answer, a wrong password is a refusal, a missing right is an error that says which.
@Suite struct SignInTests {
    @Test func glpiNamesThePersonFromTheRecordedFullSessions() throws {
        for (file, want) in [
            ("login_01_initSession_selfservice_full.json",
             HelpdeskPerson(login: "customer.carol", userID: 10, displayName: "Carol Client", profiles: ["Self-Service"], entities: [1])),
            ("login_05_initSession_technician_full.json",
             HelpdeskPerson(login: "tech.alice", userID: 7, displayName: "Alice Martin", profiles: ["Technician"], entities: [0, 1, 2, 3, 4, 5, 6], groups: [1])),
        ] {
            let body = (try Fixtures.glpi(file)["response"] as! [String: Any])["body"] as! [String: Any]
            let session = try JSONValue.parse(Array(try JSONSerialization.data(withJSONObject: body["session"]!)))
            #expect(try GLPIConnector.person(fromSession: session, login: "typed") == want, "\(file)")
        }
    }

    @Test func glpiChecksThePasswordItselfAndEndsTheSession() async throws {
        let state = FakeGLPIState()
        state.addEntity(1, name: "Customer A")
        state.addPerson(.carol)
        state.addPerson(.alice)
        let server = try await FakeGLPIServer(state: state)
        defer { Task { await server.stop() } }
        let glpi = GLPIConnector(configuration: GLPIConfiguration(url: server.url, appToken: "fixture-app-token", credentials: .userToken("fixture-user-token")),
                                 http: CurlHTTPClient())
        let carol = try await glpi.signIn(login: "customer.carol", password: "Fixture-Pass-1")
        #expect(carol == HelpdeskPerson(login: "customer.carol", userID: 10, displayName: "Carol Client", profiles: ["Self-Service"], entities: [1]))
        let alice = try await glpi.signIn(login: "tech.alice", password: "Fixture-Pass-1")
        #expect((alice.userID, alice.entities, alice.groups, alice.profiles) == (7, [0, 1, 2, 3, 4, 5, 6], [1], ["Technician"]))
        await #expect(throws: SignInRefused.self) { try await glpi.signIn(login: "customer.carol", password: "nope") }
        let sent = state.requests.map(\.target)
        #expect(sent.filter { $0 == "/apirest.php/initSession?get_full_session=true" }.count == 3)
        #expect(sent.filter { $0 == "/apirest.php/killSession" }.count == 2)   // the refused login opened no session
        // A wrong App-Token is not the person's fault: an error, not a refusal.
        let misconfigured = GLPIConnector(configuration: GLPIConfiguration(url: server.url, appToken: "wrong", credentials: .userToken("x")), http: CurlHTTPClient())
        await #expect(throws: HelpdeskError.self) { try await misconfigured.signIn(login: "customer.carol", password: "Fixture-Pass-1") }
    }

    @Test func itopChecksCredentialsThenReadsTheUserAndPerson() async throws {
        let state = try makeITopFixtureState()
        let server = try await FakeITopServer(state: state)
        defer { Task { await server.stop() } }
        let itop = ITopConnector(configuration: ITopConfiguration(url: server.url, login: "hours-daemon", password: "Daemon-Passw0rd!"), http: CurlHTTPClient())
        // The daemon's usual profiles may not read User (73): an error naming what to grant, not a refusal.
        do {
            _ = try await itop.signIn(login: "lena.fischer", password: "Portal-Passw0rd!")
            Issue.record("signed in without reading User")
        } catch let error as HelpdeskError {
            #expect(error.kind == .permission)
            #expect(error.detail.contains("may not read class User"))
        }
        state.grantUserRead("hours-daemon")
        let lena = try await itop.signIn(login: "lena.fischer", password: "Portal-Passw0rd!")
        #expect(lena == HelpdeskPerson(login: "lena.fischer", userID: 6, displayName: "Lena Fischer", profiles: ["Portal user"], entities: [2]))
        await #expect(throws: SignInRefused.self) { try await itop.signIn(login: "lena.fischer", password: "nope") }
        await #expect(throws: SignInRefused.self) { try await itop.signIn(login: "nobody\" OR 1=1", password: "x") }
        let checks = state.requests.compactMap(\.operation).filter { $0["operation"] as? String == "core/check_credentials" }
        #expect(checks.count == 4)
        #expect(checks.last?["user"] as? String == "nobody\" OR 1=1")
        // The User lookup quotes the login as an OQL literal.
        let lookups = state.requests.compactMap(\.operation).filter { $0["class"] as? String == "User" }.compactMap { $0["key"] as? String }
        #expect(lookups.contains("SELECT User WHERE login = 'lena.fischer'"))
    }

    @Test func itopFindsThePersonByEmailWhenLoginsAreAddresses() async throws {
        let state = try makeITopFixtureState()
        state.addUser("lena.fischer@globex.example", FakeITopState.User(password: "Portal-Passw0rd!", isAdmin: false, hasRESTProfile: false,
                                                                         friendlyName: "Lena Fischer", id: 9, contactID: 6, profiles: ["Portal user"]))
        let server = try await FakeITopServer(state: state)
        defer { Task { await server.stop() } }
        let itop = ITopConnector(configuration: ITopConfiguration(url: server.url, login: "hours-daemon", password: "Daemon-Passw0rd!", personLookup: .email),
                                 http: CurlHTTPClient())
        let lena = try await itop.signIn(login: "lena.fischer@globex.example", password: "Portal-Passw0rd!")
        #expect((lena.userID, lena.entities, lena.displayName, lena.profiles) == (6, [2], "Lena Fischer", []))
        #expect(state.requests.compactMap(\.operation).allSatisfy { $0["class"] as? String != "User" })
    }
}

/// The fake GLPI answers a person's login as GLPI 10.0.14 did (login_01, 02, 05, 06, 07), over libcurl.
@Suite struct FakeGLPISignInTests {
    @Test func theFakeAnswersTheRecordedLoginsAsGLPIDid() async throws {
        let state = FakeGLPIState()
        state.addEntity(1, name: "Customer A")
        state.addEntity(2, name: "Customer B")
        state.addTicket(3, name: "Install accounting software", entity: 1, category: 1, groups: [1])
        state.addTicket(4, name: "VPN", entity: 2, category: 1, groups: [1])
        state.addPerson(.carol)
        state.addPerson(.alice)
        let server = try await FakeGLPIServer(state: state)
        defer { Task { await server.stop() } }
        let client = CurlHTTPClient()
        func send(_ file: String, session: String? = nil) async throws -> (recorded: [String: Any], status: Int, body: Any) {
            let fixture = try Fixtures.glpi(file)
            let request = fixture["request"] as! [String: Any]
            var headers = (request["headers"] as! [String: String]).map { ($0.key, $0.value) }
            headers = headers.map { $0.0 == "App-Token" ? ($0.0, state.appToken) : $0.0 == "Session-Token" ? ($0.0, session ?? "") : $0 }
            let url = server.url.replacingOccurrences(of: "/apirest.php", with: "") + (request["path"] as! String)
            let answer = try await client.send(HTTPRequest(url: url, headers: headers))
            return (fixture["response"] as! [String: Any], answer.status, try JSONSerialization.jsonObject(with: Data(answer.body), options: .fragmentsAllowed))
        }
        for file in ["login_01_initSession_selfservice_full.json", "login_05_initSession_technician_full.json"] {
            let (recorded, status, body) = try await send(file)
            #expect(status == recorded["status"] as? Int)
            let want = (recorded["body"] as! [String: Any])["session"] as! [String: Any]
            let got = try #require((body as? [String: Any])?["session"] as? [String: Any], "\(file)")
            for key in ["glpiID", "glpiname", "glpirealname", "glpifirstname", "glpiactive_entity", "glpigroups"] {
                #expect("\(got[key] ?? "-")" == "\(want[key] ?? "-")", "\(file) \(key)")
            }
            // A map for Self-Service, a list for a central profile: the same type and members.
            #expect((got["glpiactiveentities"] is [String: Any]) == (want["glpiactiveentities"] is [String: Any]), "\(file)")
            #expect("\(got["glpiactiveentities"]!)" == "\(want["glpiactiveentities"]!)", "\(file)")
            for key in ["id", "name", "interface"] {
                #expect("\((got["glpiactiveprofile"] as? [String: Any])?[key] ?? "-")" == "\((want["glpiactiveprofile"] as? [String: Any])?[key] ?? "-")", "\(file) \(key)")
            }
            let names = { (session: [String: Any]) in (session["glpiprofiles"] as? [String: [String: Any]])?.mapValues { $0["name"] as? String } }
            #expect(names(got) == names(want), "\(file)")
        }
        let (wrong, status, body) = try await send("login_02_initSession_wrong_password.json")
        #expect(status == 401 && status == wrong["status"] as? Int)
        #expect(body as? [String] == wrong["body"] as? [String])
        // Carol's own session: a ticket of entity 2 is refused (login_06), one of her entity 1 is read (login_07).
        let login = try await send("login_01_initSession_selfservice_full.json")
        let token = try #require((login.body as? [String: Any])?["session_token"] as? String)
        let other = try await send("login_06_getItem_Ticket_other_entity_selfservice.json", session: token)
        #expect(other.status == 403 && other.body as? [String] == other.recorded["body"] as? [String])
        let own = try await send("login_07_getItem_Ticket_own_entity_selfservice.json", session: token)
        #expect(own.status == 200 && (own.body as? [String: Any])?["entities_id"] as? Int == 1)
    }
}
