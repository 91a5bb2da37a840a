import FakeGLPI
import FakeITop
import HourLedgerGLPI
import HourLedgerHelpdeskKit
import HourLedgerITop
import HourLedgerUseCases
import HourLedgerServer
import Foundation
import HourLedgerApp
import HourLedgerCore
import HourLedgerStore
import Hummingbird
import HummingbirdTesting
import Testing

/// Rules that must not be bypassed: approvals hold through edits, and customer data needs a token.
@Suite struct RulesTests {
    /// An approved entry whose time, day or kind is edited goes back for approval, audited, and stops counting until then.
    @Test func editingAnApprovedEntrySendsItBackForApproval() async throws {
        let h = try await GLPIHarness.start(contracts: """
              - { id: acme, name: ACME, entity: 1, quota_hours: 20, starts: 2026-01-01, approval: required }
            """) { $0.addTicket(1, name: "Laptop", entity: 1, category: 1, groups: [1]) }
        defer { Task { await h.stop() } }
        let alice = try h.runtime.ledger.createToken(user: "tech.alice", helpdeskUserID: 7, role: .technician)
        let boss = try h.runtime.ledger.createToken(user: "boss", helpdeskUserID: 2, role: .manager)
        let at = Date.utc("2026-11-20 08:00:00")
        @Sendable func used() throws -> Int { try h.runtime.ledger.balance(of: h.contracts[0], at: at)?.usedSeconds ?? 0 }
        let app = buildApplication(runtime: h.runtime)
        try await app.test(.router) { client in
            let created = try await client.call(.post, "/api/v1/entries", token: alice,
                                                body: #"{"ticket":1,"started_at":"2026-11-20T08:00:00Z","duration_seconds":1800}"#)
            let key = try #require(created.object["key"] as? String)
            #expect(created.object["approval"] as? String == "pending")
            #expect(try await client.call(.post, "/api/v1/entries/\(key)/approve", token: boss).status == .ok)
            #expect(try used() == 1800)

            // The technician raises it to 8 hours: back to pending, and the 8 hours do not count.
            let edited = try await client.call(.patch, "/api/v1/entries/\(key)", token: alice, body: #"{"duration_seconds":28800}"#)
            #expect(edited.status == .ok && edited.object["approval"] as? String == "pending")
            #expect(try used() == 0)
            let trail = try h.runtime.ledger.auditTrail(ticketID: 1).filter { $0.field == "approval" }.map { "\($0.oldValue ?? "")>\($0.newValue ?? "")" }
            #expect(trail == ["pending>approved", "approved>pending"])
            #expect(try h.runtime.ledger.pendingEntries().map(\.key) == [key])

            // A note-only edit of an approved entry keeps it approved.
            #expect(try await client.call(.post, "/api/v1/entries/\(key)/approve", token: boss).status == .ok)
            #expect(try used() == 28800)
            let noted = try await client.call(.patch, "/api/v1/entries/\(key)", token: alice, body: #"{"note":"new disk"}"#)
            #expect(noted.object["approval"] as? String == "approved")
            #expect(try used() == 28800)
            // Kind and day count too.
            let kind = try await client.call(.patch, "/api/v1/entries/\(key)", token: alice, body: #"{"billable":false}"#)
            #expect(kind.object["approval"] as? String == "pending")
        }
        // The helpdesk got the task once, then updates: never a second task.
        #expect(await h.runtime.outbox.drain() >= 1)
        let posts = h.glpi.requests.filter { $0.method == "POST" && $0.target.hasSuffix("/TicketTask") }
        #expect(posts.count == 1)
        #expect(h.glpi.tasks(ofTicket: 1).count == 1)
        #expect(h.glpi.tasks(ofTicket: 1).first?.seconds == 28800)
    }

    /// Contract balances with ticket titles and unmatched tickets are not shown to anyone without a token.
    @Test func customerDataNeedsAToken() async throws {
        let h = try await GLPIHarness.start(contracts: """
              - { id: acme, name: ACME, entity: 1, quota_hours: 20, starts: 2026-01-01 }
            """) { glpi in
            glpi.addTicket(1, name: "CEO laptop stolen", entity: 1, category: 1, groups: [1])
            glpi.addTask(ticket: 1, seconds: 600)
            glpi.addTicket(2, name: "Secret merger printer", entity: 2, category: 1, groups: [1])
        }
        defer { Task { await h.stop() } }
        let tech = try h.runtime.ledger.createToken(user: "tech.alice", helpdeskUserID: 7, role: .technician)
        let app = buildApplication(runtime: h.runtime)
        try await app.test(.router) { client in
            for uri in ["/api/v1/contracts", "/api/v1/contracts/acme", "/api/v1/contracts/acme?at=9999-12-31T00:00:00Z", "/api/v1/unmatched"] {
                let anonymous = try await client.call(.get, uri)
                #expect(anonymous.status == .unauthorized, "\(uri)")
                #expect(!anonymous.text.contains("CEO") && !anonymous.text.contains("merger"))
                #expect(try await client.call(.get, uri, token: "hl_guess").status == .unauthorized)
            }
            let detail = try await client.call(.get, "/api/v1/contracts/acme?at=2026-11-21T12:00:00Z", token: tech)
            #expect(detail.status == .ok && detail.text.contains("CEO laptop stolen"))
            #expect(try await client.call(.get, "/api/v1/unmatched", token: tech).list.map { $0["ticket_id"] as? Int } == [2])
            // A far `at` is refused at once instead of walking 8,000 years of periods.
            let far = try await client.call(.get, "/api/v1/contracts/acme?at=9999-12-31T00:00:00Z", token: tech)
            #expect(far.status == .badRequest && far.field == "at")
        }
    }
}

/// What people read in the helpdesk and the reports says what happened, in their words.
@Suite struct WriteBackTextTests {
    let contracts = """
      - { id: acme, name: ACME, entity: 1, quota_hours: 20, starts: 2026-01-01, timezone: Europe/Paris, rounding: { increment_minutes: 15, mode: up } }
      - { id: beta, name: Beta, entity: 2, quota_hours: 20, starts: 2026-01-01, timezone: Europe/Paris }
    """

    @Test func aShortTimerTheDayAndTheTechnicianAreNamedAndAMoveUpdatesTheTask() async throws {
        let h = try await GLPIHarness.start(contracts: contracts) { $0.addTicket(1, name: "Laptop", entity: 1, category: 1, groups: [1]) }
        defer { Task { await h.stop() } }
        // 23:59:50 on the 20th in UTC is already the 21st in Paris, the contract's zone.
        let start = Date.utc("2026-11-20 23:59:50")
        let (timer, _) = try await h.runtime.ledger.startTimer(technician: 7, ticketID: 1, now: start)
        _ = try await h.runtime.ledger.timerTransition(id: timer.id, actingAs: 7, action: .stop, note: "reboot", actor: "alice", now: start.addingTimeInterval(20))
        #expect(await h.runtime.outbox.drain() == 1)
        let task = try #require(h.glpi.tasks(ofTicket: 1).first)
        #expect(HTMLEntities.plainText(task.content).hasSuffix("0:15 h billable, worked 0:00:20 on 2026-11-21 by technician 7, rounded up to 15 min, "
                                                               + "on contract ACME (acme): reboot"), "\(task.content)")
        // The ticket moves to the other customer: the task is rewritten to name the contract it now counts on,
        // with that contract's rounding (none): 20 s.
        h.glpi.advance(seconds: 60)
        h.glpi.updateTicket(1) { $0.entity = 2 }
        try await h.runtime.engine.syncOnce()
        h.glpi.clearRequests()
        #expect(await h.runtime.outbox.drain() == 1)
        let put = try #require(h.glpi.requests.first { $0.method == "PUT" })
        #expect(put.body.contains(#""actiontime":20"#) && put.body.contains("on contract Beta (beta): reboot"), "\(put.body)")
        #expect(h.glpi.tasks(ofTicket: 1).first?.seconds == 20)
    }

    @Test func unmatchedITopTicketsAreListedInITopsWordsWithTheirRef() async throws {
        let directory = TemporaryDirectory()
        let server = try await FakeITopServer(state: try makeITopFixtureState())
        defer { Task { await server.stop() } }
        let config = try ConfigLoader.parse(itopConfigYAML(url: server.url, database: directory.path + "/l.sqlite", contracts: """
              - { id: globex, name: Globex, org: 2, match: { teams: [10] }, quota_hours: 40, starts: 2026-01-01, timezone: Europe/Paris }
            """))
        let runtime = try Runtime(configuration: config)
        try await runtime.engine.syncOnce()
        let unmatched = try runtime.ledger.unmatchedTickets()
        #expect(!unmatched.isEmpty && unmatched.allSatisfy { $0.ref.hasPrefix("R-") || $0.ref.hasPrefix("I-") })
        let table = Report.unmatched(unmatched, format: "table", terms: .itop)
        let header = try #require(table.split(separator: "\n").first)
        #expect(header.hasPrefix("TICKET") && header.contains("REF") && header.contains("ORG") && header.contains("TEAMS") && header.contains("SUBCATEGORY"))
        #expect(!header.contains("ENTITY") && !header.contains("GROUPS"))
        #expect(table.contains(unmatched[0].ref))
        let csv = Report.unmatched(unmatched, format: "csv", terms: .itop)
        #expect(csv.hasPrefix("ticket_id,ref,name,org,teams,subcategory,raw_seconds,reason\n"))
    }
}
