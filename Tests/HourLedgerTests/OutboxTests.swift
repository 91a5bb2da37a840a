import FakeGLPI
import FakeITop
import Foundation
import HourLedgerApp
import HourLedgerCore
import HourLedgerGLPI
import HourLedgerHelpdeskKit
import HourLedgerITop
import HourLedgerUseCases
import HourLedgerStore
import Hummingbird
import HummingbirdTesting
import Testing

/// A write-back the helpdesk refuses for good is parked; the others keep flowing in order per ticket, and a manager
/// retries or discards it.
@Suite struct OutboxParkingTests {
    let t0 = Date.utc("2026-11-21 09:00:00")

    @Test func aNoteForADeletedITopTicketIsParkedAndBlocksNothingElse() async throws {
        let directory = TemporaryDirectory()
        let state = try makeITopFixtureState()
        let server = try await FakeITopServer(state: state)
        defer { Task { await server.stop() } }
        let config = try ConfigLoader.parse(itopConfigYAML(url: server.url, database: directory.path + "/l.sqlite", contracts: ITopEndToEndTests.contracts))
        let runtime = try Runtime(configuration: config)
        try await runtime.engine.syncOnce(now: t0)
        func add(_ ticket: Int, _ seconds: Int) async throws -> WorkEntry {
            try await runtime.ledger.addEntry(NewEntry(ticketID: ticket, technician: 2, startedAt: t0, rawSeconds: seconds, kind: .billable, note: "",
                                                      createdBy: "alice"), now: t0)
        }
        // Ticket 5 is deleted in iTop after its entry was logged; tickets 1 and 2 have entries logged after it.
        let doomed = try await add(5, 900)
        let deleted = try #require(state.ticket(5))
        state.deleteTicket(5)
        let one = try await add(1, 600)
        let two = try await add(2, 1200)
        let another = try await add(5, 300)
        #expect(await runtime.outbox.drain() == 2)
        #expect(state.privateLog(of: 1).map(\.message).first?.hasPrefix(EntrySource.marker(one.key)) == true)
        #expect(state.privateLog(of: 2).map(\.message).first?.hasPrefix(EntrySource.marker(two.key)) == true)
        let stats = try runtime.ledger.outboxStats(now: t0)
        #expect((stats.depth, stats.parked) == (2, 1))
        let parked = try runtime.ledger.outboxItems(parkedOnly: true)
        #expect(parked.map(\.entryKey) == [doomed.key])
        #expect(parked.first?.lastError?.contains("Invalid object UserRequest::5") == true, "\(parked)")
        // Nothing more is tried for the parked record, however often the worker runs.
        state.clearRequests()
        #expect(await runtime.outbox.drain(now: { Date().addingTimeInterval(7200) }) == 0)
        #expect(state.requests.isEmpty)

        let manager = try runtime.ledger.createToken(user: "boss", helpdeskUserID: 2, role: .manager)
        let tech = try runtime.ledger.createToken(user: "alice", helpdeskUserID: 2, role: .technician)
        let app = buildApplication(runtime: runtime)
        try await app.test(.router) { client in
            let status = try await client.call(.get, "/status")
            #expect((status.object["outbox"] as? [String: Any])?["parked"] as? Int == 1)
            #expect((status.object["parked_write_backs"] as? [[String: Any]])?.first?["entry_key"] as? String == doomed.key)
            let metrics = try await client.call(.get, "/metrics")
            #expect(metrics.text.contains("hourledger_outbox_parked 1"), "\(metrics.text)")
            #expect(try await client.call(.get, "/api/v1/outbox?state=parked", token: tech).status == .forbidden)
            let list = try await client.call(.get, "/api/v1/outbox?state=parked", token: manager)
            let id = try #require(list.list.first?["id"] as? Int)

            // The ticket is restored: a retry delivers the parked note, then the one queued behind it on that ticket.
            state.restoreTicket(deleted)
            let retried = try await client.call(.post, "/api/v1/outbox/\(id)/retry", token: manager)
            #expect(retried.status == .ok && retried.object["parked_at"] == nil)
            #expect(try await client.call(.post, "/api/v1/outbox/\(id)/retry", token: manager).status == .conflict)
        }
        #expect(await runtime.outbox.drain() == 2)
        #expect(state.privateLog(of: 5).map { $0.message.hasPrefix(EntrySource.marker(doomed.key)) } == [true, false])
        #expect(state.privateLog(of: 5).last?.message.hasPrefix(EntrySource.marker(another.key)) == true)
        #expect(try runtime.ledger.outboxStats(now: t0).depth == 0)
        let trail = try runtime.ledger.auditTrail(ticketID: 5).map(\.field)
        #expect(trail.contains { $0.hasPrefix("write_back") })
    }

    @Test func deletingAnEntryWhoseCreateIsParkedCancelsBothAndADiscardIsAudited() async throws {
        let h = try await GLPIHarness.start(contracts: """
              - { id: acme, name: ACME, entity: 1, quota_hours: 20, starts: 2026-01-01 }
            """) { glpi in
            glpi.addTicket(1, name: "Laptop", entity: 1, category: 1, groups: [1])
            glpi.addTicket(2, name: "Printer", entity: 1, category: 1, groups: [1])
        }
        defer { Task { await h.stop() } }
        let store = h.runtime.ledger
        func add(_ ticket: Int) async throws -> WorkEntry {
            try await store.addEntry(NewEntry(ticketID: ticket, technician: 7, startedAt: t0, rawSeconds: 600, kind: .billable, note: "",
                                              createdBy: "alice"), now: t0)
        }
        // GLPI refuses tasks on ticket 1 (the account lost its right there): ERROR_GLPI_ADD, status 400, for good.
        let first = try await add(1)
        h.glpi.denyRight("TicketTask")
        #expect(await h.runtime.outbox.drain() == 0)
        #expect(try store.outboxStats(now: t0).parked == 1)
        h.glpi.grantRight("TicketTask")
        let second = try await add(2)
        #expect(await h.runtime.outbox.drain() == 1)
        #expect(h.glpi.tasks(ofTicket: 2).count == 1)

        // The technician deletes the parked entry: nothing ever reached GLPI, so nothing is withdrawn.
        try await store.deleteEntry(key: first.key, reason: "logged on the wrong ticket", actor: "alice", actingAs: 7, now: t0)
        #expect(try store.outboxStats(now: t0).depth == 0)
        h.glpi.clearRequests()
        #expect(await h.runtime.outbox.drain() == 0)
        #expect(h.glpi.requests.isEmpty)

        // A manager discards a parked record by the CLI's store call; a reason is required, and it is audited.
        let third = try await add(1)
        h.glpi.denyRight("TicketTask")
        #expect(await h.runtime.outbox.drain() == 0)
        h.glpi.grantRight("TicketTask")
        let parked = try #require(try store.outboxItems(parkedOnly: true).first)
        await #expect(throws: LedgerError.self) {
            _ = try await store.discardOutbox(id: parked.id, actor: "boss", reason: " ", fenceSeconds: 65, now: t0)
        }
        let discarded = try await store.discardOutbox(id: parked.id, actor: "boss", reason: "customer billed by hand", fenceSeconds: 65, now: t0)
        #expect(discarded.map(\.entryKey) == [third.key])
        #expect(try store.outboxStats(now: t0).depth == 0)
        #expect(try store.auditTrail(ticketID: 1).last?.reason == "customer billed by hand")
        #expect(h.glpi.tasks(ofTicket: 1).isEmpty)
        _ = second
    }
}
