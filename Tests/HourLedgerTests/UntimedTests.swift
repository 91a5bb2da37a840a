import AppTestKit
import FakeGLPI
import Foundation
import HourLedgerApp
import HourLedgerCore
import HourLedgerServer
import HourLedgerUseCases
import Hummingbird
import HummingbirdTesting
import TestKit
import Testing

/// Time nobody logged, against the fake GLPI over real libcurl: a ticket solved or closed with no time at all is
/// listed (CLI's and API's report, dashboard's table), and a timer still running when its ticket is solved stops
/// counting at the solution and waits for its technician.
@Suite struct UntimedTests {
    static let contracts = """
      - { id: acme, name: ACME support, entity: 1, quota_hours: 20, starts: 2026-01-01, rounding: { increment_minutes: 15, mode: up } }
    """

    @Test func aSolvedTicketWithNoTimeIsListedAndARunningTimerStopsAtTheSolution() async throws {
        let directory = TemporaryDirectory()
        let state = FakeGLPIState(clock: .utc("2026-11-23 08:00:00"))
        state.addEntity(1, name: "Customer A")
        state.addPerson(.alice)
        state.addTicket(1, name: "Printer jams", entity: 1, category: 1, groups: [1])
        state.addTicket(2, name: "Password reset & <unlock>", entity: 1, category: 1, groups: [1])
        state.addTicket(3, name: "Server down", entity: 1, category: 1, groups: [1])
        state.addTask(ticket: 1, seconds: 1800)
        let glpi = try await FakeGLPIServer(state: state)
        defer { Task { await glpi.stop() } }
        let runtime = try Runtime(configuration: try ConfigLoader.parse(configYAML(url: glpi.url, database: directory.path + "/l.sqlite",
                                                                                  contracts: Self.contracts)))
        _ = try await runtime.engine.syncOnce()
        // Alice works on ticket 3 from 08:10; GLPI's ticket is solved at 08:30 (and the others with it), while her
        // timer still runs; the poll that sees it comes later.
        let (timer, _) = try await runtime.ledger.startTimer(technician: 7, ticketID: 3, now: .utc("2026-11-23 08:10:00"))
        state.setClock(.utc("2026-11-23 08:30:00"))
        state.updateTicket(1) { $0.status = 5 }
        state.updateTicket(2) { $0.status = 6 }
        state.updateTicket(3) { $0.status = 5 }
        let report = try await runtime.engine.syncOnce()
        #expect(report.ticketsSeen == 3)

        let paused = try #require(try runtime.ledger.timers(openOnly: true).first { $0.id == timer.id })
        #expect(paused.state.status == .paused && paused.state.needsReview && paused.state.reviewReason == .ticketClosed)
        #expect(paused.state.elapsedSeconds(at: Date()) == 1200)
        // Alice sees it among her flagged timers, with why.
        try await buildApplication(runtime: runtime).test(.router) { client in
            let alice = DashboardTests.Browser(client)
            #expect(try await alice.signIn("tech.alice").status == .seeOther)
            let work = try await alice.get("/work").html
            #expect(work.contains(##"<a href="#timer-\##(timer.id)">#3</a> 0:20:00 · paused when its ticket was solved or closed"##))
        }
        // Seeing the solved ticket again changes nothing: a timer she resumed on purpose keeps running.
        _ = try await runtime.ledger.timerTransition(id: timer.id, actingAs: 7, action: .resume, note: "", actor: "alice",
                                                     now: .utc("2026-11-23 09:00:00"))
        state.updateTicket(3) { $0.name = "Server down (solved)" }
        _ = try await runtime.engine.syncOnce()
        #expect(try runtime.ledger.timers(openOnly: true).first { $0.id == timer.id }?.state.status == .running)

        // Ticket 1 has its task, ticket 3 a timer still open: only ticket 2 was closed with no time, at 08:30 UTC.
        let november = ReportRange(from: .utc("2026-11-01 00:00:00"), to: .utc("2026-12-01 00:00:00"))
        let csv = try Report.render(.untimed, ledger: runtime.ledger, range: november, timeZone: .gmt, contractID: nil, format: "csv")
        #expect(csv == """
            ticket_id,ref,name,contract_id,status,closed_at
            2,,Password reset & <unlock>,acme,closed,2026-11-23T08:30:00Z

            """)
        let december = ReportRange(from: .utc("2026-12-01 00:00:00"), to: .utc("2027-01-01 00:00:00"))
        #expect(try runtime.ledger.untimedTicketReport(range: december).isEmpty)

        let token = try runtime.ledger.createToken(user: "boss", helpdeskUserID: 8, role: .manager)
        try await buildApplication(runtime: runtime).test(.router) { client in
            let answer = try await client.call(.get, "/api/v1/reports/untimed?from=2026-11-01&to=2026-12-01&contract=acme", token: token)
            #expect(answer.status == .ok)
            #expect(answer.list.map { "\($0["ticket_id"]!) \($0["status"]!) \($0["closed_at"]!)" } == ["2 closed 2026-11-23T08:30:00Z"])
        }

        // Reopened, it is no longer closed; solved again with time logged, it is no longer untimed.
        state.setClock(.utc("2026-11-24 10:00:00"))
        state.updateTicket(2) { $0.status = 2 }
        _ = try await runtime.engine.syncOnce()
        #expect(try runtime.ledger.untimedTicketReport(range: november).isEmpty)
        #expect(try runtime.ledger.read { try $0.ticket(2) }?.closedAt == nil)
        state.addTask(ticket: 2, seconds: 300)
        state.updateTicket(2) { $0.status = 5 }
        _ = try await runtime.engine.syncOnce()
        #expect(try runtime.ledger.read { try $0.ticket(2) }?.closedAt == .utc("2026-11-24 10:00:00"))
        #expect(try runtime.ledger.untimedTicketReport(range: november).isEmpty)
    }
}
