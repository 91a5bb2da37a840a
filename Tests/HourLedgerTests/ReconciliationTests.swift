import FakeGLPI
import FakeITop
import Foundation
import HourLedgerApp
import HourLedgerCore
import HourLedgerServer
import HourLedgerUseCases
import Hummingbird
import HummingbirdTesting
import Testing

/// `hourledger reconcile` and `/api/v1/reconciliation`: the ledger's seconds per ticket and contract against GLPI's
/// own ticket totals (search option 45), read in one full search, with every drift and its cause.
@Suite struct ReconciliationTests {
    static let contracts = """
      - { id: acme, name: ACME, entity: 1, quota_hours: 100, starts: 2026-01-01, timezone: UTC }
      - { id: beta, name: Beta, entity: 2, quota_hours: 100, starts: 2026-01-01, timezone: UTC }
    """

    @Test func everyCauseIsNamed() {
        let at = Date.utc("2026-11-21 20:00:00")
        func ledger(_ id: Int, _ contract: String?, tasks: Int, written: Int = 0, stamp: String = "2026-11-21 18:00:00") -> TicketSeconds {
            TicketSeconds(ticketID: id, contractID: contract, dateMod: stamp, helpdeskTaskSeconds: tasks, writtenSeconds: written)
        }
        let result = Reconciliation.compare(
            ledger: [ledger(1, "acme", tasks: 600, written: 900), ledger(2, "acme", tasks: 300), ledger(3, "acme", tasks: 100),
                     ledger(4, "beta", tasks: 50), ledger(5, "beta", tasks: 0), ledger(6, "beta", tasks: 70), ledger(8, nil, tasks: 0)],
            helpdesk: TicketTotals(seconds: [1: 1500, 2: 360, 3: 200, 5: 900, 6: 0, 7: 45, 8: 0],
                                   dateMods: [1: "2026-11-21 18:00:00", 2: "2026-11-21 18:00:00", 3: "2026-11-21 19:00:00",
                                              5: "2026-11-21 18:00:00", 6: "2026-11-21 18:00:00", 7: "2026-11-21 19:30:00", 8: "2026-11-21 18:00:00"]),
            pendingWrites: [5: 900], failing: [6: "403 ERROR_RIGHT_MISSING"], at: at)
        #expect(result.drifts.map { "\($0.ticketID) \($0.cause.rawValue) \($0.driftSeconds)" } == [
            "2 unexplained 60", "3 changed_since_last_poll 100", "4 not_in_helpdesk -50", "5 write_back_pending 900", "6 read_failing -70",
            "7 not_in_ledger 45",
        ])
        #expect(result.contracts.map { "\($0.contractID ?? "-") \($0.tickets) \($0.ledgerSeconds) \($0.helpdeskSeconds) \($0.driftSeconds)" } == [
            "- 2 0 45 45", "acme 3 1900 2060 160", "beta 3 120 900 780",
        ])
        #expect((result.ticketsCompared, result.ledgerSeconds, result.helpdeskSeconds) == (8, 2020, 3005))
    }

    @Test func aNightlyRunFindsEachDriftInOneSearchAndShowsItInTheAPIMetricsAndCLI() async throws {
        let h = try await GLPIHarness.start(contracts: Self.contracts) { glpi in
            for id in 1...3 {
                glpi.addTicket(id, name: "T\(id)", entity: 1, category: 1, groups: [1])
                glpi.addTask(ticket: id, seconds: 600 * id, date: "2026-11-20 09:00:00")
            }
            glpi.addTicket(5, name: "Beta's", entity: 2, category: 1, groups: [1])
        }
        defer { Task { await h.stop() } }
        // HourLedger's own time, written back as a private task of its billed seconds: GLPI counts it too.
        _ = try await h.runtime.ledger.addEntry(NewEntry(ticketID: 1, technician: 7, startedAt: .utc("2026-11-20 10:00:00"), rawSeconds: 900,
                                                         kind: .billable, note: "call", createdBy: "alice"))
        #expect(await h.runtime.outbox.drain() == 1)
        h.glpi.advance(seconds: 60)
        try await h.runtime.engine.syncOnce()

        h.glpi.clearRequests()
        let clean = try #require(try await h.runtime.engine.reconcile())
        #expect(clean.drifts == [])
        #expect(clean.contracts.map { "\($0.contractID ?? "-") \($0.tickets) \($0.ledgerSeconds) \($0.helpdeskSeconds)" } == [
            "acme 3 4500 4500", "beta 1 0 0",
        ])
        // One search page of three columns, whatever the number of tickets below a thousand.
        #expect(h.glpi.requests.map(\.target) == [
            "/apirest.php/search/Ticket?forcedisplay[0]=2&forcedisplay[1]=19&forcedisplay[2]=45&sort=2&order=ASC&range=0-999",
        ])

        // A total typed on ticket 2's form (then polled), a task added to ticket 3 since the last poll, a new ticket
        // with time, and an entry on ticket 5 whose write-back has not gone out.
        h.glpi.advance(seconds: 60)
        h.glpi.updateTicket(2) { $0.actiontimeTyped = 1500 }
        try await h.runtime.engine.syncOnce()
        h.glpi.advance(seconds: 60)
        h.glpi.addTask(ticket: 3, seconds: 120)
        h.glpi.addTicket(9, name: "New", entity: 1, category: 1, groups: [1])
        h.glpi.addTask(ticket: 9, seconds: 300)
        _ = try await h.runtime.ledger.addEntry(NewEntry(ticketID: 5, technician: 7, startedAt: .utc("2026-11-20 11:00:00"), rawSeconds: 1800,
                                                         kind: .billable, note: "visit", createdBy: "alice"))
        let result = try #require(try await h.runtime.engine.reconcile())
        #expect(result.drifts.map { "\($0.ticketID) \($0.contractID ?? "-") \($0.cause.rawValue) \($0.ledgerSeconds) \($0.helpdeskSeconds)" } == [
            "2 acme unexplained 1200 1500", "3 acme changed_since_last_poll 1800 1920", "9 - not_in_ledger 0 300",
        ])
        // The entry on ticket 5 is not in GLPI yet, and the ledger does not count it as written either: no drift.
        #expect(result.contracts.first { $0.contractID == "acme" }?.driftSeconds == 300 + 120)

        let config = h.directory.write("hourledger.yaml", configYAML(url: h.server.url, database: h.directory.path + "/l.sqlite",
                                                                     contracts: Self.contracts))
        let manager = try h.runtime.ledger.createToken(user: "boss", helpdeskUserID: 2, role: .manager)
        let tech = try h.runtime.ledger.createToken(user: "alice", helpdeskUserID: 7, role: .technician)
        try await buildApplication(runtime: h.runtime).test(.router) { client in
            #expect(try await client.call(.get, "/api/v1/reconciliation", token: tech).status == .forbidden)
            let last = try await client.call(.get, "/api/v1/reconciliation", token: manager)
            #expect(last.status == .ok)
            #expect((last.object["drifts"] as? [[String: Any]])?.compactMap { $0["cause"] as? String }
                == ["unexplained", "changed_since_last_poll", "not_in_ledger"])
            let metrics = try await client.call(.get, "/metrics")
            #expect(metrics.text.contains(#"hourledger_reconciliation_drift_seconds{contract="acme"} 420"#), "\(metrics.text)")
            #expect(metrics.text.contains(#"hourledger_reconciliation_drift_seconds{contract="none"} 300"#))
            #expect(metrics.text.contains("hourledger_reconciliation_drifting_tickets 3"))

            // The poll brings ticket 3 and 9 in line; a run now (POST) leaves only the typed total.
            try await h.runtime.engine.syncOnce()
            let now = try await client.call(.post, "/api/v1/reconciliation", token: manager)
            #expect((now.object["drifts"] as? [[String: Any]])?.compactMap { $0["ticket_id"] as? Int } == [2])
        }

        // The CLI prints the same, and says so in its exit status when asked to.
        let run = try await CLI.run(["reconcile", "--config", config, "--format", "csv", "--fail-on-drift"])
        #expect(run.exitedNormally && run.status == 1, "\(run.output)")
        #expect(run.output.contains("ticket_id,contract_id,ledger_seconds,helpdesk_seconds,drift_seconds,cause,detail\n2,acme,1200,1500,300,unexplained,"),
                "\(run.output)")
        let table = try await CLI.run(["reconcile", "--config", config])
        #expect(table.status == 0)
        #expect(table.output.contains("5 tickets compared in 2 requests: ledger 1:22:00, helpdesk 1:27:00, 1 drifting"), "\(table.output)")
        #expect(table.output.contains("acme      4        1:22:00  1:27:00   0:05:00"), "\(table.output)")
        #expect(table.output.contains("2       acme      0:20:00  0:25:00   0:05:00  unexplained  the helpdesk's total is not the sum"),
                "\(table.output)")
    }

    /// iTop keeps no time of its own: its figure is the time of the entries whose note is still in the ticket's log.
    @Test func onITopANoteMissingFromATicketsLogIsTheDrift() async throws {
        let t0 = Date.utc("2026-11-21 09:00:00")
        let directory = TemporaryDirectory()
        let state = try makeITopFixtureState()
        let server = try await FakeITopServer(state: state)
        defer { Task { await server.stop() } }
        let runtime = try Runtime(configuration: try ConfigLoader.parse(itopConfigYAML(url: server.url, database: directory.path + "/l.sqlite",
                                                                                      contracts: ITopEndToEndTests.contracts)))
        try await runtime.engine.syncOnce(now: t0)
        func add(_ ticket: Int, _ seconds: Int) async throws -> WorkEntry {
            try await runtime.ledger.addEntry(NewEntry(ticketID: ticket, technician: 2, startedAt: t0, rawSeconds: seconds, kind: .billable, note: "",
                                                      createdBy: "alice"), now: t0)
        }
        let first = try await add(1, 600), second = try await add(1, 1800), other = try await add(2, 1200)
        #expect(await runtime.outbox.drain() == 3)
        let unwritten = try await add(2, 300)
        _ = unwritten

        state.clearRequests()
        let clean = try #require(try await runtime.engine.reconcile(now: t0))
        #expect(clean.drifts == [])
        #expect(clean.ledgerSeconds == first.billedSeconds + second.billedSeconds + other.billedSeconds)
        // One core/get of the private logs per ticket class, for both tickets at once.
        #expect(state.requests.compactMap { $0.operation?["key"] as? String } == [
            "SELECT UserRequest WHERE id IN (1,2)", "SELECT Incident WHERE id IN (1,2)",
        ])

        // The note of the first entry is lost from ticket 1's log (a restore from backup, say).
        state.updateTicket(1, bumping: false) { ticket in ticket.privateLog.removeAll { $0.message.contains(EntrySource.marker(first.key)) } }
        let result = try #require(try await runtime.engine.reconcile(now: t0))
        #expect(result.drifts.map { "\($0.ticketID) \($0.cause.rawValue) \($0.driftSeconds)" } == ["1 note_missing \(-first.billedSeconds)"])
        #expect(result.drifts.first?.detail.contains(first.key) == true)
    }

    @Test func theDaemonReconcilesOncePerIntervalAndNotBeforeAPollSucceeded() async throws {
        let h = try await GLPIHarness.start(contracts: Self.contracts) { glpi in
            glpi.addTicket(1, name: "T1", entity: 1, category: 1, groups: [1])
            glpi.addTask(ticket: 1, seconds: 600)
        }
        defer { Task { await h.stop() } }
        let schedule = ScheduledReconciliation(engine: h.runtime.engine, everyHours: 24)
        await schedule.runIfDue()
        let first = try #require(try h.runtime.engine.lastReconciliation())
        h.glpi.clearRequests()
        await schedule.runIfDue()
        // Not due again: no request, the same stored result.
        #expect(h.glpi.requests.isEmpty)
        #expect(try h.runtime.engine.lastReconciliation() == first)
        // The stored result survives a restart.
        let reopened = try Runtime(configuration: h.runtime.configuration)
        #expect(try reopened.engine.lastReconciliation()?.ticketsCompared == 1)
        // A daemon on a ledger that never synced does not reconcile.
        let fresh = try Runtime(configuration: try ConfigLoader.parse(configYAML(url: h.server.url, database: h.directory.path + "/fresh.sqlite",
                                                                                 contracts: Self.contracts)))
        await ScheduledReconciliation(engine: fresh.engine, everyHours: 1).runIfDue()
        #expect(h.glpi.requests.isEmpty)
        #expect(try fresh.engine.lastReconciliation() == nil)
    }
}
