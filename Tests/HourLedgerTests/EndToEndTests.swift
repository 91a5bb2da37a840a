import FakeGLPI
import Foundation
import HourLedgerApp
import HourLedgerCore
import HourLedgerGLPI
import HourLedgerHelpdeskKit
import HourLedgerITop
import HourLedgerUseCases
import HourLedgerStore
import Testing

/// Fake GLPI on loopback → real libcurl client → sync → ledger, checked to the second.
@Suite struct EndToEndTests {
    let contractsYAML = """
      - id: acme-2026
        name: ACME support 2026
        entity: 1
        include_subentities: true
        match: { groups: [1], categories: [1, 2] }
        priority: 10
        quota_hours: 20
        period: monthly
        starts: 2026-01-01
        timezone: Europe/Paris
        rounding: { increment_minutes: 15, mode: up }
      - id: beta-2026
        name: Beta support
        entity: 2
        quota_hours: 10
        period: monthly
        starts: 2026-01-01
        timezone: UTC
    """

    func setUp(extraHelpdesk: String = "") async throws -> (FakeGLPIServer, Runtime, TemporaryDirectory) {
        let directory = TemporaryDirectory()
        let server = try await FakeGLPIServer(state: makeFixtureState())
        let config = try ConfigLoader.parse(configYAML(url: server.url, database: directory.path + "/ledger.sqlite", contracts: contractsYAML,
                                                       extraHelpdesk: extraHelpdesk))
        return (server, try Runtime(configuration: config), directory)
    }

    @Test func syncKeepsBalancesExactThroughEditsDeletesAndReattribution() async throws {
        let (server, runtime, directory) = try await setUp()
        defer { Task { await server.stop() } }
        let glpi = server.state
        let acme = runtime.configuration.contracts[0], beta = runtime.configuration.contracts[1]
        // 2026-11-21 18:33:03 UTC: the fixture clock, inside November in Paris too.
        glpi.addTicket(1, name: "Laptop does not boot", entity: 1, category: 1, groups: [1])
        glpi.addTicket(6, name: "Mail client crashes", entity: 3, category: 2, groups: [2, 1])
        glpi.addTicket(4, name: "VPN disconnects", entity: 2, category: 2, groups: [2])
        glpi.addTicket(9, name: "Printer in lobby", entity: 1, category: 1, groups: [2])
        let t1 = glpi.addTask(ticket: 1, seconds: 1800)
        let t2 = glpi.addTask(ticket: 1, seconds: 61)
        glpi.addTask(ticket: 6, seconds: 3600, isPrivate: true)
        glpi.addTask(ticket: 4, seconds: 1000)
        glpi.addTask(ticket: 9, seconds: 700)

        let first = try await runtime.engine.syncOnce()
        #expect(first.ticketsSeen == 4)
        #expect(first.entriesAdded == 5)
        let when = Date.utc("2026-11-21 18:40:00")
        // 1800 → 1800, 61 → 900, 3600 → 3600: raw 5461, billed 6300.
        var balance = try #require(try runtime.ledger.balance(of: acme, at: when))
        #expect((balance.rawSeconds, balance.usedSeconds, balance.quotaSeconds, balance.remainingSeconds) == (5461, 6300, 72000, 65700))
        #expect(try runtime.ledger.balance(of: beta, at: when)?.usedSeconds == 1000)
        let unmatched = try runtime.ledger.unmatchedTickets()
        #expect(unmatched.map(\.ticketID) == [9])
        #expect(unmatched.first?.reason == "no contract matches: acme-2026: assigned groups 2, rule wants one of 1; beta-2026: entity 1 is not entity 2")
        #expect(unmatched.first?.rawSeconds == 700)

        // Running the same poll again changes nothing.
        glpi.advance(seconds: 300)
        let again = try await runtime.engine.syncOnce()
        #expect((again.entriesAdded, again.entriesUpdated, again.entriesDeleted, again.contractMoves) == (0, 0, 0, 0))

        // An edited task, a deleted task, and ticket 9 re-assigned to group 1 so its time moves to acme.
        glpi.editTask(t1) { $0.seconds = 2000 }
        glpi.deleteTask(t2)
        glpi.updateTicket(9) { $0.groups = [1] }
        glpi.advance(seconds: 5)
        let third = try await runtime.engine.syncOnce()
        #expect((third.entriesUpdated, third.entriesDeleted, third.contractMoves) == (2, 1, 1))
        // 2000 → 2700, 3600 → 3600, 700 → 900: raw 6300, billed 7200.
        balance = try #require(try runtime.ledger.balance(of: acme, at: when))
        #expect((balance.rawSeconds, balance.usedSeconds, balance.entryCount) == (6300, 7200, 3))
        #expect(try runtime.ledger.unmatchedTickets().isEmpty)
        let moves = try runtime.ledger.moves(ticketID: 9)
        #expect(moves.count == 1)
        #expect(moves.first.map { ($0.fromContract, $0.toContract, $0.rawSeconds) } ?? (nil, nil, 0) == (nil, "acme-2026", 700))
        let breakdown = try runtime.ledger.ticketBreakdown(contractID: "acme-2026", periodKey: balance.periodKey)
        #expect(breakdown.map(\.ticketID) == [6, 1, 9])
        #expect(breakdown.map(\.usedSeconds) == [3600, 2700, 900])
        #expect(try runtime.ledger.balanceDiscrepancies() == [])

        // The ledger survives a restart: a new runtime on the same file sees the same balance and does not re-read tasks.
        glpi.clearRequests()
        await runtime.connector.close()
        #expect(glpi.requests.map(\.target) == ["/apirest.php/killSession"])
        let reopened = try Runtime(configuration: runtime.configuration)
        #expect(try reopened.ledger.balance(of: acme, at: when)?.usedSeconds == 7200)
        glpi.clearRequests()
        let afterRestart = try await reopened.engine.syncOnce()
        #expect(afterRestart.entriesAdded + afterRestart.entriesUpdated + afterRestart.entriesDeleted == 0)
        _ = directory
    }

    @Test func pollSendsTheRecordedRequestShapes() async throws {
        let (server, runtime, _) = try await setUp()
        defer { Task { await server.stop() } }
        let glpi = server.state
        glpi.addTicket(1, name: "Laptop", entity: 1, category: 1, groups: [1])
        glpi.addTask(ticket: 1, seconds: 600)
        try await runtime.engine.syncOnce()
        let requests = glpi.requests
        #expect(requests.map { "\($0.method) \($0.target)" } == [
            "GET /apirest.php/initSession",
            "GET /apirest.php/search/Ticket?forcedisplay[0]=2&forcedisplay[1]=1&forcedisplay[2]=80&forcedisplay[3]=7&forcedisplay[4]=12&forcedisplay[5]=14&forcedisplay[6]=19&forcedisplay[7]=8&forcedisplay[8]=28&forcedisplay[9]=45&forcedisplay[10]=96&forcedisplay[11]=97&forcedisplay[12]=92&sort=19&order=ASC&range=0-999",
            "GET /apirest.php/Entity?range=0-999",
            "GET /apirest.php/ITILCategory?range=0-999",
            "GET /apirest.php/Group?range=0-999",
            "GET /apirest.php/Ticket/1/TicketTask?range=0-999",
        ])
        #expect(requests[0].headers["authorization"] == "user_token fixture-user-token")
        #expect(requests.allSatisfy { $0.headers["app-token"] == "fixture-app-token" })
        #expect(requests.dropFirst().allSatisfy { $0.headers["session-token"] != nil })
        #expect(requests[0].headers["user-agent"]?.hasPrefix("HourLedger/") == true)

        // The next poll asks only for what changed since the high-water mark minus the overlap window.
        glpi.clearRequests()
        glpi.advance(seconds: 600)
        glpi.addTask(ticket: 1, seconds: 60)
        try await runtime.engine.syncOnce()
        // The new task comes with the changed tasks; the ledger's first task plus it give the search's summary of
        // ticket 1 (2 tasks, 660 s), so the ticket needs no read of its own.
        #expect(glpi.requests.map { "\($0.method) \($0.target)" } == [
            "GET /apirest.php/search/Ticket?criteria[0][field]=19&criteria[0][searchtype]=morethan&criteria[0][value]=2026-11-21 18:31:03&forcedisplay[0]=2&forcedisplay[1]=1&forcedisplay[2]=80&forcedisplay[3]=7&forcedisplay[4]=12&forcedisplay[5]=14&forcedisplay[6]=19&forcedisplay[7]=8&forcedisplay[8]=28&forcedisplay[9]=45&forcedisplay[10]=96&forcedisplay[11]=97&forcedisplay[12]=92&sort=19&order=ASC&range=0-999",
            // Tasks changed since the same mark, newest first: catches edits the search's summary cannot see.
            "GET /apirest.php/TicketTask?range=0-99&sort=date_mod&order=DESC&expand_dropdowns=false",
        ])
        #expect(try runtime.ledger.balance(of: runtime.configuration.contracts[0], at: .utc("2026-11-21 19:00:00"))?.rawSeconds == 660)
    }

    @Test func aChangeInTheSameSecondAsTheLastPollIsNotMissed() async throws {
        let (server, runtime, _) = try await setUp()
        defer { Task { await server.stop() } }
        let glpi = server.state
        glpi.addTicket(4, name: "VPN", entity: 2, category: 2, groups: [2])
        glpi.addTask(ticket: 4, seconds: 100)
        try await runtime.engine.syncOnce()
        // GLPI's clock has not moved: the new task carries the same date_mod second as the last poll's high-water mark.
        glpi.addTask(ticket: 4, seconds: 200)
        let report = try await runtime.engine.syncOnce()
        #expect(report.entriesAdded == 1)
        #expect(try runtime.ledger.balance(of: runtime.configuration.contracts[1], at: .utc("2026-11-21 19:00:00"))?.usedSeconds == 300)
        // No ticket is read on its own: ticket 4's summary is unchanged, ticket 5 has no task (the search says), and
        // ticket 7's only task came with the changed tasks.
        glpi.advance(seconds: 1)
        glpi.addTicket(5, name: "Other", entity: 2, category: 2, groups: [2])
        glpi.addTicket(7, name: "Third", entity: 2, category: 2, groups: [2])
        glpi.addTask(ticket: 7, seconds: 60)
        glpi.updateTicket(4) { $0.status = 3 }
        glpi.clearRequests()
        let last = try await runtime.engine.syncOnce()
        #expect(glpi.requests.filter { $0.target.contains("TicketTask") }.map(\.target) == [
            "/apirest.php/TicketTask?range=0-99&sort=date_mod&order=DESC&expand_dropdowns=false",
        ])
        #expect(last.ticketsSeen == 3 && last.entriesAdded == 1 && last.ticketsRebuilt == 1 && last.ticketsWithTasksRead == 0)
    }

    @Test func hintedTicketsOutsideThePollWindowAreReadInOneSearchByID() async throws {
        let (server, runtime, _) = try await setUp()
        defer { Task { await server.stop() } }
        let glpi = server.state
        for id in 4...6 { glpi.addTicket(id, name: "T\(id)", entity: 2, category: 2, groups: [2]) }
        try await runtime.engine.syncOnce()
        glpi.advance(seconds: 600)
        glpi.addTicket(8, name: "Later", entity: 2, category: 2, groups: [2])
        try await runtime.engine.syncOnce()
        // Two hints for tickets the next poll's window no longer covers, one for an id GLPI does not have.
        try await runtime.ledger.addHints([4, 6, 999, 4])
        glpi.clearRequests()
        let report = try await runtime.engine.syncOnce()
        #expect(report.hintsServed == 3)
        let searches = glpi.requests.filter { $0.target.hasPrefix("/apirest.php/search/Ticket") }.map(\.target)
        #expect(searches.count == 2)
        #expect(searches.last?.contains("criteria[0][link]=OR&criteria[0][field]=2&criteria[0][searchtype]=equals&criteria[0][value]=4&criteria[1][link]=OR&criteria[1][field]=2&criteria[1][searchtype]=equals&criteria[1][value]=6&criteria[2][link]=OR&criteria[2][field]=2&criteria[2][searchtype]=equals&criteria[2][value]=999&") == true)
        #expect(report.ticketsSeen == 3)  // ticket 8 from the window, 4 and 6 by id
        #expect(try runtime.ledger.pendingHints().isEmpty)
    }

    @Test func aListThatShrinksWhilePagedEndsCleanlyAndIsReadAgain() async throws {
        let (server, runtime, directory) = try await setUp(extraHelpdesk: "  page_size: 2")
        defer { Task { await server.stop() } }
        let glpi = server.state
        let config = runtime.configuration
        _ = directory
        for id in 1...5 { glpi.addTicket(id, name: "T\(id)", entity: 2, category: 1, groups: []) }
        try await runtime.engine.syncOnce()
        let firstMark = try runtime.ledger.state("helpdesk.high_water")

        // A later poll: after it read page 1, three tickets go to the trash, so page 2 lies past the new total and
        // GLPI answers 400 ERROR_RANGE_EXCEED_TOTAL. The poll ends without error but keeps its old high-water mark.
        glpi.advance(seconds: 10)
        for id in 1...5 { glpi.updateTicket(id) { $0.status = 3 } }
        glpi.beforeSearchPage = { state, start in
            if start == 2 { for id in 1...3 { state.trashLocked(id) } }
        }
        glpi.clearRequests()
        let report = try await runtime.engine.syncOnce()
        glpi.beforeSearchPage = nil
        // The first page gave the total (5 in pages of 2); the two other pages were asked for at once.
        #expect(glpi.requests.filter { $0.target.contains("search/Ticket") }.map { $0.target.components(separatedBy: "range=").last ?? "" }.sorted()
            == ["0-1", "2-3", "4-5"])
        #expect(report.highWater == firstMark)
        #expect(try runtime.ledger.state("helpdesk.high_water") == firstMark)
        // The next poll re-reads from the old mark and sees the surviving tickets' newest state.
        let next = try await runtime.engine.syncOnce()
        #expect(next.ticketsSeen == 2)
        #expect(next.highWater == glpi.now)
    }

    @Test func pagingExpiredSessionsAndErrors() async throws {
        let (server, runtime, directory) = try await setUp(extraHelpdesk: "  page_size: 2")
        defer { Task { await server.stop() } }
        let glpi = server.state
        let config = runtime.configuration
        _ = directory
        for id in 1...5 {
            glpi.addTicket(id, name: "T\(id)", entity: 2, category: 1, groups: [])
            glpi.addTask(ticket: id, seconds: 100 * id)
        }
        try await runtime.engine.syncOnce()
        let searches = glpi.requests.filter { $0.target.contains("/search/Ticket") }.map { $0.target.components(separatedBy: "range=").last! }
        // Each page once; the pages after the first are read concurrently, so they may arrive in either order.
        #expect(searches.first == "0-1" && searches.sorted() == ["0-1", "2-3", "4-5"])
        #expect(try runtime.ledger.balance(of: config.contracts[1], at: .utc("2026-11-21 19:00:00"))?.usedSeconds == 1500)

        // GLPI forgets the session: the connector opens a new one by itself and the poll succeeds.
        glpi.expireSessions()
        glpi.clearRequests()
        glpi.advance(seconds: 10)
        glpi.addTask(ticket: 1, seconds: 50)
        let report = try await runtime.engine.syncOnce()
        #expect(report.entriesAdded == 1)
        #expect(glpi.requests.filter { $0.target.hasSuffix("/initSession") }.count == 1)

        // A right taken away: a clear permission error, the ledger untouched, /status-visible error text.
        glpi.denyRight("Ticket")
        await #expect(throws: HelpdeskError.self) { try await runtime.engine.syncOnce() }
        let status = await runtime.engine.status
        #expect(status.lastError?.contains("permission ERROR_RIGHT_MISSING") == true)
        #expect(status.reachable == true)
        #expect(try runtime.ledger.balance(of: config.contracts[1], at: .utc("2026-11-21 19:00:00"))?.usedSeconds == 1550)

        // GLPI down: reported as unreachable with the host, not as a crash.
        glpi.grantRight("Ticket")
        await server.stop()
        await #expect(throws: HelpdeskError.self) { try await runtime.engine.syncOnce() }
        let down = await runtime.engine.status
        #expect(down.reachable == false)
        #expect(down.lastError?.contains("127.0.0.1") == true)
    }
}
