import FakeGLPI
import FakeITop
import Foundation
import HourLedgerApp
import HourLedgerCore
import HourLedgerGLPI
import HourLedgerHelpdeskKit
import HourLedgerITop
import HourLedgerUseCases
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

    /// A GLPI session on the fake through the real libcurl client: a GET of a path under apirest.php.
    static func session(_ server: FakeGLPIServer) async throws -> @Sendable (String) async throws -> HourLedgerHTTPClient.HTTPResponse {
        let state = server.state
        let client = CurlHTTPClient()
        let login = try await client.send(HourLedgerHTTPClient.HTTPRequest(url: server.url + "/initSession", headers: [("App-Token", state.appToken),
                                                                                                    ("Authorization", "user_token \(state.userToken)")]))
        let token = try GLPIConnector.decode(login, operation: "x")["session_token"]!.string!
        return { path in
            try await client.send(HourLedgerHTTPClient.HTTPRequest(url: server.url + path, headers: [("App-Token", state.appToken), ("Session-Token", token)]))
        }
    }

    /// The fake answers search_Ticket_10's request (tickets linked to contract 1, with column 193) as GLPI did: the same
    /// tickets, the contract's name in 193, the same Content-Range; and a name search matches the stored, encoded form.
    @Test func theFakeAnswersTheContractSearchAsRecorded() async throws {
        let state = makeFixtureState()
        state.addTicket(1, name: "Laptop does not boot", entity: 1, category: 1, groups: [1])
        state.addTicket(2, name: "Printer jam on floor 2", entity: 1, category: 1, groups: [2])
        state.addTicket(3, name: "Install accounting software", entity: 1, category: 2, groups: [1])
        state.addTicket(4, name: "R&D <lab> access", entity: 1, category: 2, groups: [1])
        state.linkContract(1, ticket: 1)
        state.linkContract(1, ticket: 3)
        let server = try await FakeGLPIServer(state: state)
        defer { Task { await server.stop() } }
        let get = try await Self.session(server)
        let fixture = try Fixtures.glpi("search_Ticket_10_by_contract.json")
        let answer = try await get(((fixture["request"] as! [String: Any])["path"] as! String).replacingOccurrences(of: "/apirest.php", with: ""))
        let recorded = try FixtureReplayTests.response(fixture)
        #expect(answer.status == recorded.status && answer.header("Content-Range") == recorded.header("Content-Range"))
        let fake = try #require(try JSONValue.parse(answer.body)["data"]?.list)
        let real = try #require(try JSONValue.parse(recorded.body)["data"]?.list)
        #expect(Set(fake.compactMap { $0["2"]?.int }) == Set(real.compactMap { $0["2"]?.int }))
        #expect(fake.allSatisfy { $0["193"]?.string == "Support Hours 2026 - Customer A" })
        // name contains "R&D": GLPI encodes the value as it encodes what it stores, so the encoded name matches.
        let byName = try await get("/search/Ticket?criteria[0][field]=1&criteria[0][searchtype]=contains&criteria[0][value]=r%26d%20%3Clab&forcedisplay[0]=2")
        #expect(try JSONValue.parse(byName.body)["data"]?.list.compactMap { $0["2"]?.int } == [4])
    }

    /// The fake lists contracts as getItems_Contract recorded them (names with expand_dropdowns, the entity's
    /// completename with an encoded separator), and raw as getItem_Contract; the connector reads both as GLPI's.
    @Test func theFakeListsContractsAsRecorded() async throws {
        let state = makeFixtureState()
        let server = try await FakeGLPIServer(state: state)
        defer { Task { await server.stop() } }
        let get = try await Self.session(server)
        let keys = ["id", "entities_id", "is_recursive", "name", "num", "contracttypes_id", "begin_date", "duration", "periodicity", "renewal",
                    "is_deleted", "is_template", "comment", "accounting_number"]
        let fixture = try Fixtures.glpi("getItems_Contract.json")
        let answer = try await get(((fixture["request"] as! [String: Any])["path"] as! String).replacingOccurrences(of: "/apirest.php", with: ""))
        let recorded = try FixtureReplayTests.response(fixture)
        #expect(answer.status == recorded.status && answer.header("Content-Range") == recorded.header("Content-Range")
            && answer.header("Accept-Range") == recorded.header("Accept-Range"))
        let fake = try #require(try JSONValue.parse(answer.body).array)
        let real = try #require(try JSONValue.parse(recorded.body).array)
        #expect(fake.count == real.count)
        for (f, r) in zip(fake, real) {
            for key in keys { #expect(f[key] == r[key], "\(key): \(String(describing: f[key])) against \(String(describing: r[key]))") }
        }
        let single = try FixtureReplayTests.response(try Fixtures.glpi("getItem_Contract.json"))
        let rawOne = try #require(try JSONValue.parse(try await get("/Contract?range=0-999").body).array?.first)
        let recordedOne = try JSONValue.parse(single.body)
        for key in keys { #expect(rawOne[key] == recordedOne[key], "\(key)") }
        let parsed = try #require(try GLPIConnector.contract(recordedOne, operation: "x"))
        #expect(parsed == HelpdeskContract(id: 1, name: "Support Hours 2026 - Customer A", number: "CT-A-2026", typeName: "", scope: 1,
                                           begins: CivilDate("2026-01-01"), ends: nil, periodMonths: 1))
        // Without READ on contracts: 403 ERROR_RIGHT_MISSING, as error_16 recorded for getItem.
        state.setProfile(FakeGLPIState.documentedProfile.merging(["contract": 0]) { $1 })
        let refused = try await get("/Contract?range=0-999")
        #expect(refused.status == 403 && (try? JSONValue.parse(refused.body))?.array?.first?.string == "ERROR_RIGHT_MISSING")
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
        #expect(try h.runtime.ledger.unmatchedTickets().isEmpty)
        #expect(try h.runtime.ledger.ticketMatches()[3014]?.contractID == "rnd")
        // Nothing changed: the ticket search and the task list, newest change first; no dropdown refresh, no getItem,
        // no Group_Ticket.
        h.glpi.advance(seconds: 30)
        h.glpi.clearRequests()
        let report = try await h.runtime.engine.syncOnce()
        #expect(report.requests == 2, "\(h.glpi.requests.map(\.target))")
        #expect(h.glpi.requests.map { $0.target.components(separatedBy: "?")[0] } == ["/apirest.php/search/Ticket", "/apirest.php/TicketTask"])

        let manager = try h.runtime.ledger.createToken(user: "boss", helpdeskUserID: 2, role: .manager)
        let app = buildApplication(runtime: h.runtime)
        try await app.test(.router) { client in
            let detail = try await client.call(.get, "/api/v1/contracts/rnd?at=2026-11-20T12:00:00Z", token: manager)
            let names = (detail.object["tickets"] as? [[String: Any]])?.compactMap { $0["name"] as? String }
            #expect(names == ["R&D ticket 0 <html>"])
            let csv = try await client.call(.get, "/api/v1/reports/tickets?from=2026-11-01&to=2026-12-01&format=csv", token: manager)
            #expect(csv.text.contains("R&D ticket 0 <html>"), "\(csv.text)")
            #expect(!csv.text.contains("&#"))
        }
        let entry = try #require(try await h.runtime.ledger.sqlite.writer.read { db in try String.fetchOne(db, sql: "SELECT content FROM entry WHERE ticket_id = 3014") })
        #expect(entry == "Swapped toner & drum")
    }
}

/// A GLPI session does not see entities created after it logged in; one ticket's failure never fails a poll.
@Suite struct GLPISessionRealityTests {
    static let contracts = """
      - { id: acme, name: ACME, entity: 1, quota_hours: 20, starts: 2026-01-01 }
      - { id: gamma, name: Customer C, entity: 5, quota_hours: 10, starts: 2026-01-01 }
    """

    @Test func aCustomerEntityCreatedWhileTheDaemonRunsIsReadAfterAFreshLogin() async throws {
        let h = try await GLPIHarness.start(contracts: Self.contracts) { glpi in
            glpi.addTicket(1, name: "Laptop", entity: 1, category: 1, groups: [1])
            glpi.addTask(ticket: 1, seconds: 600)
        }
        defer { Task { await h.stop() } }
        // A new customer entity is created in GLPI, with a ticket and a task; work goes on in the old one too.
        h.glpi.advance(seconds: 60)
        h.glpi.addEntity(5, name: "Customer C")
        h.glpi.addTicket(7, name: "New customer's printer", entity: 5, category: 1, groups: [1])
        h.glpi.addTask(ticket: 7, seconds: 1800)
        h.glpi.addTask(ticket: 1, seconds: 900)
        h.glpi.clearRequests()
        let report = try await h.runtime.engine.syncOnce()
        #expect(report.ticketsFailed == 0)
        #expect(h.glpi.requests.filter { $0.target.hasSuffix("/initSession") }.count == 1)
        #expect(try h.runtime.ledger.ticketMatches()[7]?.contractID == "gamma")
        let at = Date.utc("2026-11-21 18:34:00")
        #expect(try h.runtime.ledger.balance(of: h.contracts[1], at: at)?.usedSeconds == 1800)
        #expect(try h.runtime.ledger.balance(of: h.contracts[0], at: at)?.usedSeconds == 1500)
        #expect(try h.runtime.ledger.ticketFailures().isEmpty)
    }

    @Test func aTicketThatCannotBeReadIsReportedAndRetriedAndTheOthersSync() async throws {
        let h = try await GLPIHarness.start(contracts: Self.contracts) { glpi in
            glpi.addTicket(1, name: "Laptop", entity: 1, category: 1, groups: [1])
        }
        defer { Task { await h.stop() } }
        // Ticket 9 carries a task GLPI reports with an impossible duration; ticket 1 gets ordinary work.
        h.glpi.advance(seconds: 60)
        h.glpi.addTicket(9, name: "Broken import", entity: 1, category: 1, groups: [1])
        let broken = h.glpi.addTask(ticket: 9, seconds: 99_999_999_999)
        h.glpi.addTask(ticket: 1, seconds: 900)
        let report = try await h.runtime.engine.syncOnce()
        #expect(report.ticketsFailed == 1)
        let at = Date.utc("2026-11-21 18:34:00")
        #expect(try h.runtime.ledger.balance(of: h.contracts[0], at: at)?.usedSeconds == 900)
        let failures = try h.runtime.ledger.ticketFailures()
        #expect(failures.map(\.ticketID) == [9])
        #expect(failures.first?.error.contains("actiontime 99999999999 s") == true)
        #expect(await h.runtime.engine.status.consecutiveFailures == 0)
        let app = buildApplication(runtime: h.runtime)
        try await app.test(.router) { client in
            let status = try await client.call(.get, "/status")
            #expect((status.object["failing_tickets"] as? [[String: Any]])?.first?["ticket_id"] as? Int == 9)
            #expect(try await client.call(.get, "/metrics").text.contains("hourledger_tickets_failing 1"))
            #expect(try await client.call(.get, "/healthz").status == .ok)
        }
        // It is read again by id at each poll (the poll window has moved on), and once fixed in GLPI it syncs.
        h.glpi.advance(seconds: 600)
        h.glpi.updateTicket(1) { $0.status = 3 }
        try await h.runtime.engine.syncOnce()
        h.glpi.clearRequests()
        try await h.runtime.engine.syncOnce()
        #expect(try h.runtime.ledger.ticketFailures().first?.attempts == 3)
        #expect(h.glpi.requests.contains { $0.target.contains("criteria[0][value]=9") })
        h.glpi.editTask(broken) { $0.seconds = 1200 }
        try await h.runtime.engine.syncOnce()
        #expect(try h.runtime.ledger.ticketFailures().isEmpty)
        #expect(try h.runtime.ledger.balance(of: h.contracts[0], at: at)?.usedSeconds == 2100)
    }
}

/// GLPI's ticket search de-duplicates the task technician column, so a task edit that changes only its technician
/// or its text leaves the search's task summary unchanged; the task list, newest change first, still shows it.
@Suite struct GLPITaskEditTests {
    @Test func anEditOfOnlyTheTechnicianOrTheTextIsPickedUp() async throws {
        var task = 0
        let h = try await GLPIHarness.start(contracts: """
              - { id: acme, name: ACME, entity: 1, quota_hours: 20, starts: 2026-01-01, overage_rate: 9000, rates: { by_technician: { 8: 15000 } } }
            """) { glpi in
            glpi.addTicket(1, name: "Laptop", entity: 1, category: 1, groups: [1])
            glpi.addTicket(2, name: "Printer", entity: 1, category: 1, groups: [1])
            task = glpi.addTask(ticket: 1, seconds: 1800, technician: 7, content: "<p>work</p>", date: "2026-11-20 09:00:00")
            glpi.addTask(ticket: 2, seconds: 600, technician: 7, date: "2026-11-20 10:00:00")
        }
        defer { Task { await h.stop() } }
        func stored() throws -> (technician: Int, content: String) {
            try h.runtime.ledger.sqlite.writer.read { db in
                let row = try Row.fetchOne(db, sql: "SELECT technician, content FROM entry WHERE source_id = ?", arguments: [task])!
                return (row["technician"], row["content"])
            }
        }
        #expect(try stored().technician == 7)
        h.glpi.advance(seconds: 60)
        h.glpi.editTask(task) { $0.technician = 8 }
        h.glpi.clearRequests()
        try await h.runtime.engine.syncOnce()
        #expect(try stored().technician == 8)
        // The edited task came with the changed tasks: no ticket was read on its own.
        #expect(!h.glpi.requests.contains { $0.target.hasPrefix("/apirest.php/Ticket/") })
        let range = ReportRange(from: Date.utc("2026-11-01 00:00:00"), to: Date.utc("2026-12-01 00:00:00"))
        let rows = try h.runtime.ledger.technicianReport(range: range, timeZone: TimeZone(identifier: "UTC")!)
        #expect(rows.map { "\($0.technician):\($0.time.billableSeconds)" } == ["7:600", "8:1800"])

        h.glpi.advance(seconds: 60)
        h.glpi.editTask(task) { $0.content = "<p>Replaced the fan</p>" }
        try await h.runtime.engine.syncOnce()
        #expect(try stored().content == "Replaced the fan")
        // Nothing else changed: the next poll reads no task at all.
        h.glpi.advance(seconds: 600)
        h.glpi.clearRequests()
        try await h.runtime.engine.syncOnce()
        #expect(!h.glpi.requests.contains { $0.target.hasPrefix("/apirest.php/Ticket/") })
    }
}

/// Trashed, purged and deleted tickets: their time leaves the balances as a recorded move, and comes back with them.
@Suite struct TicketRemovalTests {
    let contracts = "  - { id: acme, name: ACME, entity: 1, quota_hours: 20, starts: 2026-01-01 }"
    let at = Date.utc("2026-11-20 12:00:00")

    func harness(check seconds: Int) async throws -> GLPIHarness {
        try await GLPIHarness.start(contracts: contracts, extraHelpdesk: "  deletion_check_seconds: \(seconds)") { glpi in
            for (id, seconds) in [(1, 600), (2, 1200), (3, 1800)] {
                glpi.addTicket(id, name: "Ticket \(id)", entity: 1, category: 1, groups: [1])
                glpi.addTask(ticket: id, seconds: seconds, date: "2026-11-20 09:00:00")
            }
        }
    }

    @Test func trashedAndPurgedTicketsLeaveTheBalanceAndARestoredOneComesBack() async throws {
        let h = try await harness(check: 0)
        defer { Task { await h.stop() } }
        let used = { try h.runtime.ledger.balance(of: h.contracts[0], at: self.at)?.usedSeconds }
        #expect(try used() == 3600)
        h.glpi.advance(seconds: 60)
        h.glpi.trashTicket(1)
        h.glpi.purgeTicket(2)
        let report = try await h.runtime.engine.syncOnce()
        #expect(report.ticketsRemoved == 2)
        #expect(try used() == 1800)
        #expect(try h.runtime.ledger.balanceDiscrepancies() == [])
        #expect(try h.runtime.ledger.moves(ticketID: 1).last?.reason == "moved to the helpdesk's trash")
        #expect(try h.runtime.ledger.moves(ticketID: 1).last.map { ($0.fromContract, $0.toContract, $0.rawSeconds) } ?? (nil, nil, 0) == ("acme", nil, 600))
        #expect(try h.runtime.ledger.moves(ticketID: 2).last?.reason.hasPrefix("purged from the helpdesk") == true)
        #expect(try h.runtime.ledger.unmatchedTickets().isEmpty)
        #expect(try h.runtime.ledger.counts().tickets == 1)
        // No time can be logged on them any more.
        let alice = try h.runtime.ledger.createToken(user: "tech.alice", helpdeskUserID: 7, role: .technician)
        let app = buildApplication(runtime: h.runtime)
        try await app.test(.router) { client in
            let timer = try await client.call(.post, "/api/v1/timers", token: alice, body: #"{"ticket":1}"#)
            #expect(timer.status == .notFound && timer.field == "ticket")
            #expect((timer.object["error"] as? String)?.contains("trash") == true)
            let entry = try await client.call(.post, "/api/v1/entries", token: alice,
                                              body: #"{"ticket":2,"started_at":"2026-11-20T08:00:00Z","duration_seconds":60}"#)
            #expect(entry.status == .notFound)
        }
        // Restored from the trash: its time is back, and the move says why.
        h.glpi.advance(seconds: 60)
        h.glpi.restoreTicket(1)
        try await h.runtime.engine.syncOnce()
        #expect(try used() == 2400)
        #expect(try h.runtime.ledger.moves(ticketID: 1).last?.reason.hasPrefix("back in the helpdesk (it had been in the trash); contract acme") == true)
        #expect(try h.runtime.ledger.balanceDiscrepancies() == [])
        // Nothing more to find: the check costs the trash search and the count.
        h.glpi.advance(seconds: 600)
        h.glpi.clearRequests()
        let idle = try await h.runtime.engine.syncOnce()
        #expect(idle.ticketsRemoved == 0)
        #expect(h.glpi.requests.filter { $0.target.contains("forcedisplay[0]=2&sort=2") }.isEmpty)
    }

    @Test func aWebhookForATrashedTicketRemovesItAtTheNextPoll() async throws {
        let h = try await harness(check: 86_400)
        defer { Task { await h.stop() } }
        h.glpi.advance(seconds: 60)
        h.glpi.trashTicket(3)
        h.glpi.purgeTicket(2)
        // GLPI 11 sends a delete event for ticket 3; nothing tells about ticket 2 until the next deletion check.
        try await h.runtime.ledger.addHints([3])
        try await h.runtime.engine.syncOnce()
        #expect(try h.runtime.ledger.balance(of: h.contracts[0], at: at)?.usedSeconds == 1800)
        #expect(try h.runtime.ledger.moves(ticketID: 3).last?.reason == "moved to the helpdesk's trash")
        #expect(try h.runtime.ledger.moves(ticketID: 2).isEmpty)
    }
}

@Suite struct ITopRemovalTests {
    @Test func aTicketDeletedInITopLeavesTheBalance() async throws {
        let directory = TemporaryDirectory()
        let state = try makeITopFixtureState()
        let server = try await FakeITopServer(state: state)
        defer { Task { await server.stop() } }
        let config = try ConfigLoader.parse(itopConfigYAML(url: server.url, database: directory.path + "/l.sqlite", contracts: ITopEndToEndTests.contracts,
                                                           extraHelpdesk: "  deletion_check_seconds: 0"))
        let runtime = try Runtime(configuration: config)
        let t0 = Date.utc("2026-11-21 09:00:00")
        try await runtime.engine.syncOnce(now: t0)
        let globex = runtime.configuration.contracts[0]
        let ticket = try #require(try runtime.ledger.ticketMatches().first { $0.value.contractID == "globex" }?.key)
        _ = try await runtime.ledger.addEntry(NewEntry(ticketID: ticket, technician: 2, startedAt: t0, rawSeconds: 1800, kind: .billable, note: "",
                                                      createdBy: "alice"), now: t0)
        #expect(try runtime.ledger.balance(of: globex, at: t0)?.usedSeconds == 1800)
        state.deleteTicket(ticket)
        let report = try await runtime.engine.syncOnce(now: t0.addingTimeInterval(60))
        #expect(report.ticketsRemoved == 1)
        #expect(try runtime.ledger.balance(of: globex, at: t0)?.usedSeconds == 0)
        #expect(try runtime.ledger.moves(ticketID: ticket).last?.reason.hasPrefix("deleted in the helpdesk") == true)
    }
}
