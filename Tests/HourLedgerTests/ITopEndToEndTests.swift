import FakeITop
import Foundation
import HourLedgerApp
import HourLedgerCore
import HourLedgerGLPI
import HourLedgerHelpdeskKit
import HourLedgerITop
import HourLedgerUseCases
import HourLedgerServer
import HourLedgerStore
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Synchronization
import Testing

func itopConfigYAML(url: String, database: String, contracts: String, extraHelpdesk: String = "") -> String {
    configYAML(helpdesk: """
      kind: itop
      url: \(url)
      username: hours-daemon
      password: Daemon-Passw0rd!
      timezone: Europe/Paris
      page_size: 4
      webhook_secret: hook-s3cret
    """, database: database, contracts: contracts, extraHelpdesk: extraHelpdesk)
}

/// The daemon on `kind: itop` against the fake iTop, through the real libcurl client: polling, local and OQL rules,
/// timers, private_log write-back, balances, restarts, outages and webhooks.
@Suite struct ITopEndToEndTests {
    static let oql = "SELECT UserRequest AS u JOIN Organization AS o ON u.org_id = o.id WHERE o.code = 'INITECH' AND u.servicesubcategory_id = 1"
    static let contracts = """
      - { id: globex, name: Globex workplace, org: 2, match: { teams: [10] }, quota_hours: 40, starts: 2026-01-01, timezone: Europe/Paris,
          rounding: { increment_minutes: 15, mode: up } }
      - { id: initech-access, name: Initech access, priority: 10, match: { oql: "\(oql)" }, quota_hours: 10, starts: 2026-06-01,
          timezone: Europe/Paris }
      - { id: initech, name: Initech block, org: 3, match: { services: [1], subcategories: [1, 2], classes: [UserRequest] }, quota_hours: 100,
          starts: 2026-06-01, timezone: Europe/Paris, rounding: { increment_minutes: 15, mode: up } }
    """
    let t0 = Date.utc("2026-11-21 09:00:00")

    func setUp(contracts: String = Self.contracts, extraHelpdesk: String = "", database: String? = nil)
        async throws -> (FakeITopServer, Runtime, TemporaryDirectory)
    {
        let directory = TemporaryDirectory()
        let state = try makeITopFixtureState()
        state.addTicket("Incident", title: "Mail outage", org: 3, team: 11, agent: 4, service: 1, subcategory: 2)
        let server = try await FakeITopServer(state: state)
        let config = try ConfigLoader.parse(itopConfigYAML(url: server.url, database: database ?? directory.path + "/l.sqlite", contracts: contracts,
                                                           extraHelpdesk: extraHelpdesk))
        return (server, try Runtime(configuration: config), directory)
    }

    /// (class, key, page) of each core/get sent, in order.
    func gets(_ state: FakeITopState) -> [String] {
        state.requests.compactMap(\.operation).filter { $0["operation"] as? String == "core/get" }.map {
            "\($0["class"]!) | \($0["key"]!) | \($0["page"].map { "\($0)" } ?? "-")"
        }
    }

    @Test func pollMatchesByOrgTeamServiceClassAndOQLThenWritesBackAndBalances() async throws {
        let (server, runtime, _) = try await setUp()
        defer { Task { await server.stop() } }
        let itop = server.state
        let report = try await runtime.engine.syncOnce(now: t0)
        #expect(report.ticketsSeen == 7 && report.highWater == "2026-11-21 19:35:10")

        // The exact requests: form-encoded POSTs to rest.php?version=1.3, paged by 4, only the fields the rules need.
        let requests = itop.requests
        #expect(requests.allSatisfy { $0.method == "POST" && $0.target == "/webservices/rest.php?version=1.3"
            && $0.contentType == "application/x-www-form-urlencoded" && Set($0.form.keys) == ["auth_user", "auth_pwd", "json_data"]
            && $0.form["auth_user"] == "hours-daemon" && $0.form["auth_pwd"] == "Daemon-Passw0rd!" })
        // A first sync asks the OQL rule before the pages, so each page is matched and stored while the next one
        // downloads, and once more after them, for tickets whose selection changed meanwhile.
        #expect(gets(itop) == [
            "UserRequest | \(Self.oql) | 1",
            "UserRequest | SELECT UserRequest | 1", "UserRequest | SELECT UserRequest | 2", "Incident | SELECT Incident | 1",
            "UserRequest | \(Self.oql) | 1",
        ])
        let first = try #require(requests.dropFirst().first?.operation)
        #expect(first["output_fields"] as? String == "id,ref,title,status,org_id,team_id,agent_id,service_id,service_name,servicesubcategory_id,last_update")
        #expect(first["limit"] as? Int == 4)
        #expect(requests.first?.operation?["output_fields"] as? String == "id")
        #expect(requests.last?.operation?["output_fields"] as? String == "id")

        // Each ticket to its contract, for a reason that names the rule.
        let matches = try runtime.ledger.ticketMatches()
        #expect(matches.mapValues(\.contractID) == [1: "globex", 2: nil, 3: "globex", 4: "initech", 5: "initech-access", 6: "initech", 7: nil])
        #expect(matches[1]?.reason == "contract globex: org 2 AND team 10")
        #expect(matches[2]?.reason.contains("globex: assigned teams 11, rule wants one of 10") == true)
        #expect(matches[4]?.reason == "contract initech: org 3 AND service 1 AND subcategory 2 AND class UserRequest")
        #expect(matches[5]?.reason.hasPrefix("contract initech-access: OQL rule \"\(Self.oql)\"; also matched initech, won on priority 10") == true)
        #expect(matches[7]?.reason.contains("initech: class Incident, rule wants one of UserRequest") == true)
        #expect(matches[7]?.reason.contains("initech-access: not selected by the OQL rule") == true)

        // A timer on R-000004: 1000 s worked, 30 min billed, one private_log note through core/update.
        let contracts = runtime.configuration.contracts
        let (timer, _) = try await runtime.ledger.startTimer(technician: 5, ticketID: 4, now: t0)
        let (_, stopped) = try await runtime.ledger.timerTransition(id: timer.id, actingAs: 5, action: .stop, note: "network trace", actor: "dan", now: t0.addingTimeInterval(1000))
        let entry = try #require(stopped)
        #expect((entry.rawSeconds, entry.billedSeconds, entry.contractID) == (1000, 1800, "initech"))
        itop.clearRequests()
        itop.advance(seconds: 60)
        #expect(await runtime.outbox.drain() == 1)
        let writes = itop.requests.compactMap(\.operation)
        let line = "[hourledger:\(entry.key)] 0:30 h billable, worked 0:16:40 on 2026-11-21 by technician 5, rounded up to 15 min, "
            + "on contract Initech block (initech): network trace"
        let content = "<p>\(line)</p>"
        #expect(writes.count == 1)
        #expect(writes.first?["operation"] as? String == "core/update" && writes.first?["class"] as? String == "UserRequest"
            && writes.first?["key"] as? Int == 4)
        #expect(writes.first?["comment"] as? String == "HourLedger write-back [hourledger:\(entry.key)]")
        let addItem = ((writes.first?["fields"] as? [String: Any])?["private_log"] as? [String: Any])?["add_item"] as? [String: String]
        #expect(addItem == ["message": content, "format": "html"])
        #expect(itop.privateLog(of: 4).map(\.message) == [line])
        #expect(itop.changes.last?.userinfo == "HourLedger write-back [hourledger:\(entry.key)]")
        let initech = contracts.first { $0.id == "initech" }!
        #expect(try runtime.ledger.balance(of: initech, at: t0)?.usedSeconds == 1800)

        // The write bumped last_update: the next poll sees R-000004 again and changes nothing. Its window starts
        // two minutes before the newest stamp, in iTop's own time zone.
        itop.clearRequests()
        let echo = try await runtime.engine.syncOnce(now: t0)
        #expect(gets(itop).first == "UserRequest | SELECT UserRequest WHERE last_update > '2026-11-21 19:33:10' | 1")
        #expect(echo.ticketsSeen == 7 && echo.entriesAdded == 0 && echo.entriesUpdated == 0 && echo.highWater == "2026-11-21 19:36:10")
        #expect(gets(itop).last == "UserRequest | SELECT UserRequest AS u JOIN Organization AS o ON u.org_id = o.id WHERE (o.code = 'INITECH' AND u.servicesubcategory_id = 1) AND u.last_update > '2026-11-21 19:33:10' | 1")
        #expect(try runtime.ledger.balance(of: initech, at: t0)?.usedSeconds == 1800)

        // An edit and a deletion: the case log is append-only, so each is a note of its own.
        _ = try await runtime.ledger.editEntry(key: entry.key, change: EntryChange(rawSeconds: 2000, note: "network trace"), reason: "forgot the capture",
                                              actor: "dan", actingAs: 5, now: t0)
        #expect(try runtime.ledger.balance(of: initech, at: t0)?.usedSeconds == 2700)
        try await runtime.ledger.deleteEntry(key: entry.key, reason: "wrong ticket", actor: "dan", actingAs: 5, now: t0)
        #expect(await runtime.outbox.drain() == 2)
        let log = itop.privateLog(of: 4).map(\.message)
        #expect(log.count == 3)
        // Each says what it replaces and why: the log keeps every note.
        #expect(log[1].hasPrefix("[hourledger:\(entry.key) update ") && log[1].contains("] corrected: 0:45 h billable, worked 0:33:20 on 2026-11-21"))
        #expect(log[1].hasSuffix("network trace (was: 0:30 h billable, worked 0:16:40 on 2026-11-21 by technician 5, rounded up to 15 min, "
                                  + "on contract Initech block (initech); reason: forgot the capture)"), "\(log[1])")
        #expect(log[2].hasPrefix("[hourledger:\(entry.key) delete ")
                && log[2].hasSuffix("] withdrawn: entry \(entry.key) no longer counts (was: 0:45 h billable, worked 0:33:20 on 2026-11-21 by technician 5, "
                                    + "rounded up to 15 min, on contract Initech block (initech); reason: wrong ticket)"), "\(log[2])")
        #expect(try runtime.ledger.balance(of: initech, at: t0)?.usedSeconds == 0)
        #expect(try runtime.ledger.balanceDiscrepancies() == [])

        // A change in iTop moves a ticket: R-000001 reassigned to team 11 leaves Globex.
        itop.advance(seconds: 60)
        itop.updateTicket(1) { $0.team = 11 }
        try await runtime.engine.syncOnce(now: t0)
        #expect(try runtime.ledger.ticketMatches()[1]?.contractID == nil)
    }

    /// A first sync stores the tickets of each page while iTop serves the next: here the second page is held until
    /// the first page's tickets are in the ledger (3 s at most). Reading every page before storing any fails this.
    /// iTop's reports by type are by class (UserRequest, Incident) and by service, whose name `core/get` returns as
    /// iTop stores it (plain `&`, unlike GLPI).
    @Test func reportsByClassAndServiceReadTheNamesITopReturns() async throws {
        let (server, runtime, _) = try await setUp()
        defer { Task { await server.stop() } }
        let itop = server.state
        itop.addService(2, name: "Backup & restore")
        let incident = itop.addTicket("Incident", title: "Backup failed", org: 2, team: 10, agent: 4, service: 2, subcategory: 0)
        try await runtime.engine.syncOnce(now: t0)
        #expect(try runtime.ledger.ticketMatches()[incident.id]?.contractID == "globex")
        for (ticket, seconds) in [(1, 3600), (3, 1800), (incident.id, 2700)] {
            _ = try await runtime.ledger.addEntry(NewEntry(ticketID: ticket, technician: 4, startedAt: t0, rawSeconds: seconds, kind: .billable,
                                                           note: "", createdBy: "dan"), now: t0)
        }
        let range = ReportRange(from: .utc("2026-11-01 00:00:00"), to: .utc("2026-12-01 00:00:00"))
        #expect(try runtime.ledger.typeReport(range: range, contractID: "globex").map { "\($0.group) \($0.ticketCount) \($0.time.billableSeconds)" }
                == ["UserRequest 2 5400", "Incident 1 2700"])
        #expect(try runtime.ledger.categoryReport(range: range, contractID: "globex").map { "\($0.group) \($0.ticketCount) \($0.time.billableSeconds)" }
                == ["Managed Workplace Support 2 5400", "Backup & restore 1 2700"])
        let csv = try Report.render(.categories, ledger: runtime.ledger, range: range, timeZone: TimeZone(identifier: "UTC")!, contractID: "globex",
                                    format: "csv")
        #expect(csv.hasSuffix("\nglobex,Backup & restore,1,2700,0,0,2700,1\n"), "\(csv)")
    }

    @Test func aFirstSyncStoresEachPageWhileTheNextDownloads() async throws {
        let (server, runtime, _) = try await setUp()
        defer { Task { await server.stop() } }
        let storedWhileHeld = Mutex<Int?>(nil)
        let ledger = runtime.ledger
        server.state.beforePage = { _, page in
            guard page == 2 else { return }
            let deadline = Date().addingTimeInterval(3)
            var stored = 0
            repeat {
                stored = (try? ledger.counts().tickets) ?? 0
                if stored >= 4 { break }
                Thread.sleep(forTimeInterval: 0.01)
            } while Date() < deadline
            storedWhileHeld.withLock { $0 = stored }
        }
        let report = try await runtime.engine.syncOnce(now: t0)
        // The first page's four tickets (ids 6, 5, 4, 3) were stored before the second page was answered.
        #expect(storedWhileHeld.withLock { $0 } == 4)
        #expect(report.ticketsSeen == 7 && report.highWater == "2026-11-21 19:35:10")
        #expect(try runtime.ledger.ticketMatches().mapValues(\.contractID)
            == [1: "globex", 2: nil, 3: "globex", 4: "initech", 5: "initech-access", 6: "initech", 7: nil])
    }

    /// A ticket already stored from the first page changes while the second is read, so the OQL rule, asked before
    /// the pages, no longer tells its contract: the rule asked again after the pages finds it, and it is read again
    /// by id and stored on the contract its new state selects, in the same poll.
    @Test func aFirstSyncRereadsATicketWhoseRuleSelectionChangedWhileItPaged() async throws {
        let (server, runtime, _) = try await setUp()
        defer { Task { await server.stop() } }
        let itop = server.state
        itop.beforePage = { state, page in
            guard page == 2 else { return }
            state.beforePage = nil
            state.advance(seconds: 30)
            // R-000004 (Initech, service 1) moves to subcategory 1: the OQL rule of initech-access now selects it.
            state.updateTicket(4) { $0.subcategory = 1 }
        }
        let report = try await runtime.engine.syncOnce(now: t0)
        #expect(report.ticketsSeen == 7)
        let matches = try runtime.ledger.ticketMatches()
        #expect(matches[4]?.contractID == "initech-access")
        #expect(matches[4]?.reason.hasPrefix("contract initech-access: OQL rule") == true)
        #expect(try runtime.ledger.read { try $0.tickets([4]) }[4]?.facts.category == 1)
        // Three reads by id: the ticket in each class, then the rule narrowed to it.
        #expect(gets(itop).suffix(3) == [
            "UserRequest | SELECT UserRequest WHERE id IN (4) | 1", "Incident | SELECT Incident WHERE id IN (4) | 1",
            "UserRequest | SELECT UserRequest AS u JOIN Organization AS o ON u.org_id = o.id WHERE (o.code = 'INITECH' AND u.servicesubcategory_id = 1) AND u.id IN (4) | 1",
        ])
    }

    @Test func editingAnOQLRuleReasksITopAndMovesTicketsWithTheirHours() async throws {
        let (server, runtime, _) = try await setUp()
        defer { Task { await server.stop() } }
        try await runtime.engine.syncOnce(now: t0)
        let entry = try await runtime.ledger.addEntry(NewEntry(ticketID: 6, technician: 4, startedAt: t0, rawSeconds: 3600, kind: .billable, note: "",
                                                              createdBy: "chloe"), now: t0)
        #expect(entry.contractID == "initech")
        var contracts = runtime.configuration.contracts
        contracts[1].match.query = "SELECT UserRequest WHERE org_id = 3 AND servicesubcategory_id = 2"
        await runtime.engine.updateContracts(contracts)
        server.state.clearRequests()
        let report = try await runtime.engine.syncOnce(now: t0)
        // The changed rule is asked in full once, then narrowed to the poll's window.
        #expect(gets(server.state).contains("UserRequest | SELECT UserRequest WHERE org_id = 3 AND servicesubcategory_id = 2 | 1"))
        let matches = try runtime.ledger.ticketMatches()
        #expect(matches.mapValues(\.contractID) == [1: "globex", 2: nil, 3: "globex", 4: "initech-access", 5: "initech", 6: "initech-access", 7: nil])
        #expect(report.contractMoves == 3)
        #expect(try runtime.ledger.balance(of: contracts[1], at: t0)?.usedSeconds == 3600)
        #expect(try runtime.ledger.balance(of: contracts[2], at: t0)?.usedSeconds == 0)
    }

    /// A rule iTop refuses is a clear error, never an empty match: check-config and a reload refuse it, and one that
    /// fails later (iTop's data model changed) affects only its own contract, which keeps its last known tickets.
    @Test func aRuleITopRefusesIsAClearErrorNeverAnEmptyMatch() async throws {
        let bad = """
          - { id: bad-rule, name: Bad, match: { oql: "SELECT UserRequest WHERE last_updat > '2026-01-01'" }, quota_hours: 1, starts: 2026-01-01 }
        """
        let (server, runtime, _) = try await setUp(contracts: bad)
        defer { Task { await server.stop() } }
        let problems = await runtime.validateQueryRules()
        #expect(problems.count == 1 && problems.first?.contractID == "bad-rule")
        #expect(problems.first?.error.contains("rejected 100 - Query failed to execute") == true)
        try await runtime.engine.syncOnce(now: t0)
        let status = await runtime.engine.status
        let error = try #require(status.ruleFailures.first)
        #expect(error.contractID == "bad-rule")
        #expect(error.error.contains("core/get UserRequest (OQL rule) of contract bad-rule: rejected 100") && error.error.contains("Unknown filter code"))
        #expect(!error.error.contains("Daemon-Passw0rd!"))
        // Nothing was stored as "matches nothing": the tickets say their rule could not be asked.
        let matches = try runtime.ledger.ticketMatches()
        #expect(!matches.isEmpty && matches.values.allSatisfy { $0.contractID == nil })
        #expect(matches.values.allSatisfy { $0.reason.contains("could not be asked (the helpdesk refused it; see /status)") })
        #expect(!matches.values.contains { $0.reason.contains("not selected") })

        let app = buildApplication(runtime: runtime)
        try await app.test(.router) { client in
            try await client.execute(uri: "/status", method: .get) { response in
                let text = String(buffer: response.body)
                #expect(text.contains("of contract bad-rule: rejected 100") && !text.contains("Daemon-Passw0rd!"))
                #expect(text.contains("\"rule_errors\""))
            }
        }
    }

    /// A reload with a rule iTop refuses is refused whole; a rule that starts failing at a poll leaves the other
    /// contracts syncing, keeps its tickets, and once answered again its contract is matched in full.
    @Test func aRefusedRuleAffectsOnlyItsOwnContract() async throws {
        let directory = TemporaryDirectory()
        let (server, runtime, _) = try await setUp(database: directory.path + "/l.sqlite")
        defer { Task { await server.stop() } }
        try await runtime.engine.syncOnce(now: t0)
        let before = try runtime.ledger.ticketMatches()
        let ruleTickets = before.filter { $0.value.contractID == "initech-access" }.map(\.key).sorted()
        #expect(!ruleTickets.isEmpty)

        // SIGHUP with a broken rule: refused, the running rules stay.
        let path = directory.write("hourledger.yaml", itopConfigYAML(url: server.url, database: directory.path + "/l.sqlite", contracts: Self.contracts))
        let reloader = ConfigReloader(path: path, runtime: runtime, webhooks: runtime.webhooks, notifier: SystemdNotifier(environment: [:]))
        _ = directory.write("hourledger.yaml", itopConfigYAML(url: server.url, database: directory.path + "/l.sqlite",
                                                              contracts: Self.contracts.replacingOccurrences(of: "o.code = 'INITECH'", with: "o.kode = 'INITECH'")))
        #expect(await reloader.reload() == false)
        #expect(await runtime.engine.contracts.first { $0.id == "initech-access" }?.match.query == Self.oql)

        // The rule starts failing at the helpdesk (a field renamed there): the same rule, now refused.
        let broken = Self.oql.replacingOccurrences(of: "o.code = 'INITECH'", with: "o.kode = 'INITECH'")
        var contracts = await runtime.engine.contracts
        contracts = contracts.map { var c = $0; if c.id == "initech-access" { c.match.query = broken }; return c }
        await runtime.engine.updateContracts(contracts)
        try await runtime.engine.syncOnce(now: t0)
        #expect(await runtime.engine.status.consecutiveFailures == 0)
        #expect(await runtime.engine.status.ruleFailures.map(\.contractID) == ["initech-access"])
        let during = try runtime.ledger.ticketMatches()
        #expect(during.filter { $0.value.contractID == "initech-access" }.map(\.key).sorted() == ruleTickets)
        #expect(during.filter { $0.value.contractID == "globex" }.count == before.filter { $0.value.contractID == "globex" }.count)

        // Answered again: the failure clears and every stored ticket is matched again.
        contracts = contracts.map { var c = $0; if c.id == "initech-access" { c.match.query = Self.oql }; return c }
        await runtime.engine.updateContracts(contracts)
        try await runtime.engine.syncOnce(now: t0)
        #expect(await runtime.engine.status.ruleFailures.isEmpty)
        #expect(try runtime.ledger.ticketMatches().filter { $0.value.contractID == "initech-access" }.map(\.key).sorted() == ruleTickets)
    }

    @Test func wrongCredentialsAreAnAuthenticationError() async throws {
        let (server, runtime, directory) = try await setUp()
        defer { Task { await server.stop() } }
        let config = try ConfigLoader.parse(itopConfigYAML(url: server.url, database: directory.path + "/other.sqlite", contracts: Self.contracts)
            .replacingOccurrences(of: "Daemon-Passw0rd!", with: "wrong"))
        let wrong = try Runtime(configuration: config)
        do {
            try await wrong.engine.syncOnce(now: t0)
            Issue.record("a wrong password synced")
        } catch let error as HelpdeskError {
            // A first sync asks the OQL rule first; the login's failure is not blamed on the rule's contract.
            #expect(error.kind == .authentication && error.code == "1"
                && error.description == "core/get UserRequest (OQL rule): authentication 1 - Invalid login")
        }
        _ = runtime
    }

    @Test func aCrashAfterITopWroteTheNoteDoesNotWriteASecond() async throws {
        let directory = TemporaryDirectory()
        let (server, runtime, _) = try await setUp(database: directory.path + "/l.sqlite")
        defer { Task { await server.stop() } }
        try await runtime.engine.syncOnce(now: t0)
        let entry = try await runtime.ledger.addEntry(NewEntry(ticketID: 5, technician: 2, startedAt: t0, rawSeconds: 900, kind: .billable,
                                                              note: "MFA", createdBy: "alice"), now: t0)
        // The crash: the attempt was recorded and iTop appended the note, but the daemon died before marking it done.
        let attemptAt = Date()
        let item = try #require(try runtime.ledger.nextOutboxItem(now: attemptAt, fenceSeconds: 0))
        #expect(try await runtime.ledger.markOutboxAttempt(item.id, now: attemptAt))
        _ = try await runtime.connector.createNote(ticketID: 5, HelpdeskNote(marker: EntrySource.marker(item.entryKey), text: item.payload.text))
        // A new daemon on the same ledger, knowing nothing of ticket classes yet: it waits out the write fence, then looks.
        let restarted = try Runtime(configuration: runtime.configuration)
        server.state.clearRequests()
        #expect(await restarted.outbox.drain(now: { attemptAt.addingTimeInterval(1) }) == 0)
        #expect(server.state.requests.isEmpty)
        #expect(await restarted.outbox.drain(now: { attemptAt.addingTimeInterval(TimeInterval(restarted.outbox.fenceSeconds + 1)) }) == 1)
        #expect(server.state.privateLog(of: 5).count == 1)
        #expect(server.state.requests.compactMap { $0.operation?["operation"] as? String } == ["core/get", "core/get"], "\(server.state.requests.map { $0.form["json_data"] ?? "" })")
        #expect(gets(server.state) == ["Ticket | SELECT Ticket WHERE id = 5 | 1", "UserRequest | 5 | 1"])
        #expect(try restarted.ledger.outboxStats(now: t0).depth == 0)

        // iTop applies a write and then hangs past the client's timeout: the retry finds the note by its marker. A 3 s
        // timeout against an 8 s hang, so a loaded machine still gets the write in before the timeout.
        let slow = try Runtime(configuration: try ConfigLoader.parse(
            itopConfigYAML(url: server.url, database: directory.path + "/l.sqlite", contracts: Self.contracts), environment: ["HOURLEDGER_HELPDESK_TIMEOUT_SECONDS": "3"]))
        _ = try await slow.ledger.addEntry(NewEntry(ticketID: 5, technician: 2, startedAt: t0, rawSeconds: 600, kind: .billable, note: "call back",
                                                   createdBy: "alice"), now: t0)
        server.state.setDelayAfterWrite(.seconds(8))
        #expect(await slow.outbox.drain() == 0)
        #expect(server.state.privateLog(of: 5).count == 2)
        server.state.setDelayAfterWrite(.zero)
        try await Task.sleep(for: .seconds(6))
        #expect(await slow.outbox.drain(now: { Date().addingTimeInterval(3600) }) == 1)
        #expect(server.state.privateLog(of: 5).count == 2)
        #expect(try slow.ledger.outboxStats(now: t0).depth == 0)
        _ = entry
    }

    @Test func anOutageStopsNothingAndLosesNothing() async throws {
        let (server, runtime, _) = try await setUp()
        defer { Task { await server.stop() } }
        let itop = server.state
        try await runtime.engine.syncOnce(now: t0)
        var keys: [String] = []
        for minutes in [10, 20, 45] {
            keys.append(try await runtime.ledger.addEntry(NewEntry(ticketID: 1, technician: 2, startedAt: t0, rawSeconds: minutes * 60, kind: .billable,
                                                                  note: "", createdBy: "alice"), now: t0).key)
        }
        itop.fail(next: 2, status: 503)
        await #expect(throws: HelpdeskError.self) { try await runtime.engine.syncOnce(now: t0) }
        #expect(await runtime.engine.status.lastError?.contains("serverError") == true)
        #expect(await runtime.outbox.drain() == 0)
        #expect(try runtime.ledger.outboxStats(now: t0).depth == 3)
        // Back: the poll resumes and the notes go out once each, in order.
        try await runtime.engine.syncOnce(now: t0)
        #expect(await runtime.engine.status.consecutiveFailures == 0)
        #expect(await runtime.outbox.drain(now: { Date().addingTimeInterval(3600) }) == 3)
        let log = itop.privateLog(of: 1).map(\.message)
        #expect(log.count == 3 && zip(log, keys).allSatisfy { $0.hasPrefix("[hourledger:\($1)]") })
        let globex = runtime.configuration.contracts[0]
        #expect(try runtime.ledger.balance(of: globex, at: t0)?.usedSeconds == 900 + 1800 + 2700)
    }

    @Test func webhooksAreDurableHintsServedByOneBatchedRead() async throws {
        let (server, runtime, _) = try await setUp()
        defer { Task { await server.stop() } }
        let itop = server.state
        try await runtime.engine.syncOnce(now: t0)
        // Move the high-water mark well past ticket 2's last change.
        itop.advance(seconds: 600)
        itop.updateTicket(3) { $0.title = "New starter account (finance)" }
        try await runtime.engine.syncOnce(now: t0)

        let captured = try JSONSerialization.jsonObject(with: Data(contentsOf: Fixtures.root.appendingPathComponent("itop/webhook/12-captured-webhook-request.json"))) as! [String: Any]
        let recordedBody = ((captured["request"] as! [String: Any])["body"] as! String).replacingOccurrences(of: "\"id\": \"7\"", with: "\"id\": \"2\"")
        let broken = "{\n \"class\": \"UserRequest\",\n \"id\": \"6\",\n \"title\": \"Printer \"HR-2\" offline\"\n}"
        let app = buildApplication(runtime: runtime)
        try await app.test(.router) { client in
            func post(_ body: String, uri: String = "/webhooks/itop?token=hook-s3cret", headers: HTTPFields = [:]) async throws -> HTTPResponse.Status {
                try await client.execute(uri: uri, method: .post, headers: headers, body: ByteBuffer(string: body)) { $0.status }
            }
            let status1 = try await post(recordedBody)
            #expect(status1 == .accepted)
            let status2 = try await post(recordedBody)  // iTop may deliver twice
            #expect(status2 == .accepted)
            let status3 = try await post(broken, uri: "/webhooks/itop", headers: [HTTPField.Name("X-HourLedger-Token")!: "hook-s3cret"])
            #expect(status3 == .accepted)
            let status4 = try await post(recordedBody, uri: "/webhooks/itop?token=hook-s3creT")
            #expect(status4 == .unauthorized)
            let status5 = try await post(recordedBody, uri: "/webhooks/itop")
            #expect(status5 == .unauthorized)
            let status6 = try await post("{\"event\": \"ticket_changed\"}")
            #expect(status6 == .badRequest)
            let status7 = try await post(String(repeating: "x", count: ITopWebhookVerifier.maxBodyBytes + 1))
            #expect(status7 == .contentTooLarge)
        }
        // Durable before the answer, one row per ticket, and the poller is told to sync early.
        #expect(try runtime.ledger.pendingHints().map(\.ticketID).sorted() == [2, 6])
        #expect(runtime.ledger.hintsArrived.isPending)

        // The payload is never trusted: the next sync re-reads both tickets in one read per class.
        // The webhook's change, which the payload did not carry and which left last_update alone.
        itop.updateTicket(2, bumping: false) { $0.team = 10 }
        itop.clearRequests()
        let report = try await runtime.engine.syncOnce(now: t0)
        #expect(report.hintsServed == 2)
        let reads = gets(itop)
        #expect(reads.contains("UserRequest | SELECT UserRequest WHERE id IN (2,6) | 1") && reads.contains("Incident | SELECT Incident WHERE id IN (2,6) | 1"))
        #expect(try runtime.ledger.ticketMatches()[2]?.contractID == "globex")
        #expect(try runtime.ledger.pendingHints().isEmpty)
        #expect(!runtime.ledger.hintsArrived.isPending)
    }
}
