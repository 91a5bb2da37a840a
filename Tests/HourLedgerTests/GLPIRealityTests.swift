import FakeGLPI
import Foundation
import HourLedgerApp
import HourLedgerCore
import HourLedgerHelpdesk
import HourLedgerHTTPClient
import HourLedgerServer
import HourLedgerStore
import GRDB
import Hummingbird
import HummingbirdTesting
import Testing

/// What a real GLPI 10 does that a kind fake would hide: encoded names, entities a session cannot see, trash, purge,
/// edits the search summary cannot tell, rights.
@Suite struct GLPIRealityTests {
    static let sensitiveEntity = "R&D \"Lab\" <Zürich> l'Élan"
    static let sensitiveGroup = "Ops & <Support> \"Ä\""
    static let sensitiveCategory = "Café & \"Crème\" <b>"

    /// The fixture data of search_Ticket_11: entity 4, group 3, category 3 and 21 tickets with &, < and > in their names.
    static func sensitiveState(_ state: FakeGLPIState) {
        state.addEntity(4, name: sensitiveEntity)
        state.addGroup(3, name: sensitiveGroup)
        state.addCategory(3, name: sensitiveCategory)
        state.addTicket(3012, name: "Printer \"HP\" & <Toner> é", entity: 4, category: 3, groups: [3])
        for n in 0..<20 { state.addTicket(3014 + n, name: "R&D ticket \(n) <html>", entity: 4, category: 3, groups: [3]) }
    }

    /// The fake answers search_Ticket_11's request with the same encoded strings, byte for byte.
    @Test func theFakeReturnsNamesEncodedAsGLPIStoresThem() async throws {
        let state = makeFixtureState()
        Self.sensitiveState(state)
        let server = try await FakeGLPIServer(state: state)
        defer { Task { await server.stop() } }
        let client = CurlHTTPClient()
        let login = try await client.send(HourLedgerHTTPClient.HTTPRequest(url: server.url + "/initSession", headers: [("App-Token", state.appToken),
                                                                                                    ("Authorization", "user_token \(state.userToken)")]))
        let token = try GLPIConnector.decode(login, operation: "x")["session_token"]!.string!
        let fixture = try Fixtures.glpi("search_Ticket_11_html_sensitive_names.json")
        let path = ((fixture["request"] as! [String: Any])["path"] as! String).replacingOccurrences(of: "/apirest.php", with: "")
        let answer = try await client.send(HourLedgerHTTPClient.HTTPRequest(url: server.url + path, headers: [("App-Token", state.appToken), ("Session-Token", token)]))
        let recorded = try FixtureReplayTests.response(fixture)
        #expect(answer.status == recorded.status)
        #expect(answer.header("Content-Range") == recorded.header("Content-Range"))
        let fake = try #require(try JSONValue.parse(answer.body)["data"]?.list)
        let real = try #require(try JSONValue.parse(recorded.body)["data"]?.list)
        #expect(fake.count == real.count)
        for (f, r) in zip(fake, real) {
            for column in ["2", "1", "80", "7", "8"] { #expect(f[column] == r[column], "column \(column)") }
        }
        // Tasks and dropdowns come back encoded too.
        state.addTask(ticket: 3012, seconds: 60, content: "<p>R&D</p>")
        let tasks = try await client.send(HourLedgerHTTPClient.HTTPRequest(url: server.url + "/Ticket/3012/TicketTask", headers: [("App-Token", state.appToken), ("Session-Token", token)]))
        #expect(try JSONValue.parse(tasks.body).array?.first?["content"]?.string == "&#60;p&#62;R&#38;D&#60;/p&#62;")
        let groups = try await client.send(HourLedgerHTTPClient.HTTPRequest(url: server.url + "/Group", headers: [("App-Token", state.appToken), ("Session-Token", token)]))
        #expect(try JSONValue.parse(groups.body).array?.last?["name"]?.string == "Ops &#38; &#60;Support&#62; \"Ä\"")
    }

    /// Tickets whose entity, group, category and title hold &, < or >: matched with no extra reads, an idle poll is one
    /// request, and people see the names decoded once in the API, the reports and CSV.
    @Test func encodedNamesAreRecognisedAndShownDecoded() async throws {
        let h = try await GLPIHarness.start(contracts: """
              - { id: rnd, name: R&D Lab, entity: 4, match: { groups: [3], categories: [3] }, quota_hours: 10, starts: 2026-01-01 }
            """) { state in
            Self.sensitiveState(state)
            state.addTask(ticket: 3014, seconds: 600, content: "<p>Swapped toner &amp; drum</p>", date: "2026-11-20 09:00:00")
        }
        defer { Task { await h.stop() } }
        #expect(try h.runtime.store.unmatchedTickets().isEmpty)
        #expect(try h.runtime.store.ticketMatches()[3014]?.contractID == "rnd")
        // Nothing changed: one search, no dropdown refresh, no getItem, no Group_Ticket.
        h.glpi.advance(seconds: 30)
        h.glpi.clearRequests()
        let report = try await h.runtime.engine.syncOnce()
        #expect(report.requests == 1, "\(h.glpi.requests.map(\.target))")
        #expect(h.glpi.requests.count == 1)

        let manager = try h.runtime.store.createToken(user: "boss", helpdeskUserID: 2, role: .manager)
        let app = buildApplication(runtime: h.runtime)
        try await app.test(.router) { client in
            let detail = try await client.call(.get, "/api/v1/contracts/rnd?at=2026-11-20T12:00:00Z", token: manager)
            let names = (detail.object["tickets"] as? [[String: Any]])?.compactMap { $0["name"] as? String }
            #expect(names == ["R&D ticket 0 <html>"])
            let csv = try await client.call(.get, "/api/v1/reports/tickets?from=2026-11-01&to=2026-12-01&format=csv", token: manager)
            #expect(csv.text.contains("R&D ticket 0 <html>"), "\(csv.text)")
            #expect(!csv.text.contains("&#"))
        }
        let entry = try #require(try await h.runtime.store.writer.read { db in try String.fetchOne(db, sql: "SELECT content FROM entry WHERE ticket_id = 3014") })
        #expect(entry == "Swapped toner & drum")
    }
}
