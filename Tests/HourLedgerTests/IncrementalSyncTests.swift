import FakeGLPI
import Foundation
import GRDB
import HourLedgerApp
import HourLedgerCore
import HourLedgerUseCases
import TestKit
import Testing

/// An incremental GLPI poll takes changed tasks from the task list newest-first and rebuilds each changed ticket's
/// tasks from the ledger; a ticket is read on its own only when the search's task summary cannot confirm the list
/// (it lost tasks that cannot be told apart, or more than two).
@Suite struct IncrementalSyncTests {
    static let contracts = """
      - { id: acme, name: ACME, entity: 1, quota_hours: 1000, period: monthly, starts: 2026-01-01, timezone: UTC }
    """

    /// Ticket ids read on their own (getSubItems TicketTask) since the requests were last cleared.
    func ticketReads(_ glpi: FakeGLPIState) -> Set<Int> {
        Set(glpi.requests.compactMap { request -> Int? in
            guard request.target.hasPrefix("/apirest.php/Ticket/"), request.target.contains("/TicketTask") else { return nil }
            return Int(request.target.split(separator: "/")[2])
        })
    }

    /// The helpdesk tasks as the ledger holds them, and as the fake holds them (without the tasks HourLedger wrote).
    func ledgerTasks(_ runtime: Runtime) throws -> [String] {
        try runtime.ledger.sqlite.writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT source_id, ticket_id, raw_seconds, technician, is_private, content, worked_at FROM entry
                WHERE source = 'helpdesk_task' ORDER BY source_id
                """).map { row in
                let at = Date(timeIntervalSince1970: TimeInterval(row["worked_at"] as Int))
                return "\(row["source_id"] as Int) t\(row["ticket_id"] as Int) \(row["raw_seconds"] as Int)s tech\(row["technician"] as Int) "
                    + "p\(row["is_private"] as Int) \(row["content"] as String) \(FakeGLPIState.format(at))"
            }
        }
    }

    func helpdeskTasks(_ glpi: FakeGLPIState, tickets: ClosedRange<Int>, own: Set<Int>) -> [String] {
        tickets.flatMap { glpi.tasks(ofTicket: $0) }.filter { !own.contains($0.id) }.sorted { $0.id < $1.id }.map { task in
            "\(task.id) t\(task.ticketID) \(task.seconds)s tech\(task.technician) p\(task.isPrivate ? 1 : 0) "
                + "\(task.content.replacingOccurrences(of: "&#60;p&#62;", with: "").replacingOccurrences(of: "&#60;/p&#62;", with: "")) \(task.date)"
        }
    }

    @Test func anAddedOrDeletedTaskNeedsNoReadUnlessTheSummaryCannotTellWhichWent() async throws {
        var tasks: [Int] = []
        let h = try await GLPIHarness.start(contracts: Self.contracts) { glpi in
            for id in 1...3 {
                glpi.addTicket(id, name: "T\(id)", entity: 1, category: 1, groups: [1])
                tasks.append(glpi.addTask(ticket: id, seconds: 600 * id, date: "2026-11-20 09:00:00"))
            }
        }
        defer { Task { await h.stop() } }
        let at = Date.utc("2026-11-21 19:00:00")
        #expect(try h.runtime.ledger.balance(of: h.contracts[0], at: at)?.rawSeconds == 3600)

        h.glpi.advance(seconds: 60)
        h.glpi.addTask(ticket: 1, seconds: 45, date: "2026-11-21 08:00:00")
        h.glpi.deleteTask(tasks[1])
        h.glpi.editTask(tasks[2]) { $0.seconds = 1000 }
        h.glpi.clearRequests()
        let report = try await h.runtime.engine.syncOnce()
        // Ticket 2's search summary says 0 tasks: it is known to be empty without a read. Tickets 1 and 3 are rebuilt.
        #expect(ticketReads(h.glpi) == [])
        #expect((report.ticketsRebuilt, report.ticketsWithTasksRead, report.entriesAdded, report.entriesUpdated, report.entriesDeleted) == (2, 0, 1, 1, 1))
        #expect(try h.runtime.ledger.balance(of: h.contracts[0], at: at)?.rawSeconds == 600 + 45 + 1000)

        // Ticket 1 lost one of its two tasks: the search counts one task, the ledger knows two, and only one of them
        // taken away gives the search's summary. No read.
        h.glpi.advance(seconds: 60)
        h.glpi.deleteTask(tasks[0])
        h.glpi.addTask(ticket: 3, seconds: 30, date: "2026-11-21 09:00:00")
        h.glpi.clearRequests()
        let second = try await h.runtime.engine.syncOnce()
        #expect(ticketReads(h.glpi) == [])
        #expect((second.ticketsRebuilt, second.ticketsWithTasksRead, second.entriesDeleted, second.entriesAdded) == (2, 0, 1, 1))
        #expect(try h.runtime.ledger.balance(of: h.contracts[0], at: at)?.rawSeconds == 45 + 1000 + 30)
        #expect(try ledgerTasks(h.runtime) == helpdeskTasks(h.glpi, tickets: 1...3, own: []))

        // Two tasks alike in time, day and privacy (by two technicians), one deleted: the summary cannot tell which,
        // so that ticket, and only it, is read.
        h.glpi.advance(seconds: 60)
        let alike = [7, 8].map { h.glpi.addTask(ticket: 2, seconds: 900, technician: $0, date: "2026-11-21 10:00:00") }
        try await h.runtime.engine.syncOnce()
        h.glpi.advance(seconds: 60)
        h.glpi.deleteTask(alike[1])
        h.glpi.clearRequests()
        let third = try await h.runtime.engine.syncOnce()
        #expect(ticketReads(h.glpi) == [2])
        #expect((third.ticketsWithTasksRead, third.entriesDeleted) == (1, 1))
        #expect(try ledgerTasks(h.runtime) == helpdeskTasks(h.glpi, tickets: 1...3, own: []))
    }

    /// Random rounds of added, edited (time, day, technician, text, privacy) and deleted tasks, new tickets and
    /// HourLedger's own write-backs: after every poll the ledger holds exactly the helpdesk's tasks, and the only
    /// tickets read on their own are ones that lost a task in that round.
    @Test(arguments: [UInt64(20261202), 7, 4242])
    func randomRoundsEndWithExactlyTheHelpdesksTasks(seed: UInt64) async throws {
        var random = SplitMix64(seed: seed)
        var ticketCount = 12
        let h = try await GLPIHarness.start(contracts: Self.contracts) { glpi in
            for id in 1...12 {
                glpi.addTicket(id, name: "T\(id)", entity: 1, category: 1, groups: [1])
                for n in 0..<(id % 4) { glpi.addTask(ticket: id, seconds: 300 + 60 * n, date: "2026-11-20 0\(n):00:00") }
            }
        }
        defer { Task { await h.stop() } }
        var own = Set<Int>()
        var rebuilt = 0
        for round in 0..<25 {
            h.glpi.advance(seconds: 30)
            var lostOne = Set<Int>()
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                let ticket = Int.random(in: 1...ticketCount, using: &random)
                let theirs = h.glpi.tasks(ofTicket: ticket).filter { !own.contains($0.id) }
                switch Int.random(in: 0..<10, using: &random) {
                case 0..<3:
                    h.glpi.addTask(ticket: ticket, seconds: Int.random(in: 1...7200, using: &random), technician: Int.random(in: 7...9, using: &random),
                                   isPrivate: Bool.random(using: &random), content: "<p>round \(round)</p>",
                                   date: "2026-11-\(Int.random(in: 10...20, using: &random)) 10:00:00")
                case 3..<6 where !theirs.isEmpty:
                    let task = theirs.randomElement(using: &random)!
                    let field = Int.random(in: 0..<5, using: &random)
                    h.glpi.editTask(task.id) { task in
                        switch field {
                        case 0: task.seconds = Int.random(in: 1...7200, using: &random)
                        case 1: task.date = "2026-11-\(Int.random(in: 10...20, using: &random)) 11:30:00"
                        case 2: task.technician = task.technician == 7 ? 8 : 7
                        case 3: task.content = "<p>edited in round \(round)</p>"
                        default: task.isPrivate.toggle()
                        }
                    }
                case 6..<8 where !theirs.isEmpty:
                    h.glpi.deleteTask(theirs.randomElement(using: &random)!.id)
                    lostOne.insert(ticket)
                case 8:
                    ticketCount += 1
                    h.glpi.addTicket(ticketCount, name: "T\(ticketCount)", entity: 1, category: 1, groups: [1])
                    h.glpi.addTask(ticket: ticketCount, seconds: 120, content: "<p>new ticket</p>", date: "2026-11-19 12:00:00")
                default:
                    _ = try await h.runtime.ledger.addEntry(NewEntry(ticketID: ticket, technician: 7, startedAt: .utc("2026-11-18 14:00:00"),
                                                                      rawSeconds: Int.random(in: 60...3600, using: &random), kind: .billable,
                                                                      note: "phone call", createdBy: "alice"))
                    _ = await h.runtime.outbox.drain()
                    own = Set(try h.runtime.ledger.workEntries(ticketID: nil).compactMap(\.remoteTaskID))
                }
            }
            h.glpi.clearRequests()
            let report = try await h.runtime.engine.syncOnce()
            rebuilt += report.ticketsRebuilt
            #expect(ticketReads(h.glpi).isSubset(of: lostOne), "seed \(seed) round \(round)")
            #expect(try ledgerTasks(h.runtime) == helpdeskTasks(h.glpi, tickets: 1...ticketCount, own: own), "seed \(seed) round \(round)")
        }
        #expect(try h.runtime.ledger.balanceDiscrepancies() == [])
        #expect(rebuilt > 10)
    }
}
