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
        try await Task.sleep(for: .milliseconds(200))
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
