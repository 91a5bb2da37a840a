import FakeGLPI
import Foundation
import HourLedgerApp
import HourLedgerCore
import HourLedgerUseCases
import Testing

/// A first sync reads GLPI's tasks by the page across tickets (getItems TicketTask), not one getSubItems per ticket,
/// and still ends with exactly the helpdesk's tasks when the list moves while it is paged.
@Suite struct FullSyncTests {
    static let contracts = """
      - { id: acme, name: ACME, entity: 1, quota_hours: 1000, period: monthly, starts: 2026-01-01, timezone: UTC }
    """

    func setUp(tickets: Int, tasksPerTicket: Int, pageSize: Int) async throws -> (FakeGLPIServer, Runtime, TemporaryDirectory, Int) {
        let directory = TemporaryDirectory()
        let state = makeFixtureState()
        var total = 0
        for id in 1...tickets {
            state.addTicket(id, name: "T\(id)", entity: 1, category: 1, groups: [1])
            for n in 0..<tasksPerTicket {
                let seconds = 60 + (id * 37 + n * 101) % 3600
                state.addTask(ticket: id, seconds: seconds)
                total += seconds
            }
        }
        let server = try await FakeGLPIServer(state: state)
        let config = try ConfigLoader.parse(configYAML(url: server.url, database: directory.path + "/ledger.sqlite", contracts: Self.contracts,
                                                       extraHelpdesk: "  task_page_size: \(pageSize)"))
        return (server, try Runtime(configuration: config), directory, total)
    }

    func rawSeconds(_ runtime: Runtime) throws -> Int {
        try runtime.ledger.balance(of: runtime.configuration.contracts[0], at: Date.utc("2026-11-21 19:00:00"))?.rawSeconds ?? -1
    }

    @Test func aFirstSyncReadsTasksByThePageNotByTheTicket() async throws {
        let (server, runtime, directory, total) = try await setUp(tickets: 1500, tasksPerTicket: 3, pageSize: 1000)
        defer { Task { await server.stop() } }
        _ = directory
        server.state.clearRequests()
        let report = try await runtime.engine.syncOnce()
        #expect(report.tasksListed == 4500)
        #expect(report.ticketsWithTasksRead == 0)
        #expect(report.entriesAdded == 4500)
        #expect(try rawSeconds(runtime) == total)
        let targets = server.state.requests.map(\.target)
        let pages = targets.filter { $0.hasPrefix("/apirest.php/TicketTask?range=") }
        #expect(pages.count == 5)     // 4500 tasks in pages of 1000, each asked for once
        #expect(Set(pages).count == 5 && pages.allSatisfy { $0.contains("sort=tickets_id&order=ASC") })
        #expect(targets.filter { $0.contains("/Ticket/") && $0.contains("/TicketTask") }.isEmpty)
        #expect(targets.filter { $0.hasPrefix("/apirest.php/search/Ticket") }.count == 2)          // 1500 tickets in pages of 1000
        #expect(report.requests <= 2 + 5 + 6, "\(report.requests) requests: \(targets)")
        // Nothing changed: the next poll reads no task.
        let again = try await runtime.engine.syncOnce()
        #expect((again.entriesAdded, again.entriesUpdated, again.entriesDeleted, again.tasksListed, again.ticketsWithTasksRead) == (0, 0, 0, 0, 0))
    }

    @Test func aTaskTheMovingListSkipsIsReadWithItsTicket() async throws {
        let (server, runtime, directory, _) = try await setUp(tickets: 1200, tasksPerTicket: 2, pageSize: 500)
        defer { Task { await server.stop() } }
        _ = directory
        // While page 2 is asked for, task 10 (already read on page 1) is purged: every later task moves up one row,
        // and the task that was first on page 2 (id 501, ticket 251) is on no page read.
        let purged = Locked(false)
        server.state.beforeTaskPage = { state, start in
            if start == 500, !purged.withLock({ $0 }) {
                purged.withLock { $0 = true }
                state.purgeTask(10)
            }
        }
        let report = try await runtime.engine.syncOnce()
        #expect(purged.withLock { $0 })
        // Of 2400, task 501 is skipped (task 10 was read before its purge). Pages are fetched three at a time, so a
        // later page may also have been served before the purge and the next one after: then one more task (1501,
        // ticket 751) falls between them. Each skipped task's ticket is read on its own, since its count in the
        // search said 2.
        #expect(report.tasksListed == 2400 - report.ticketsWithTasksRead)
        #expect((1...2).contains(report.ticketsWithTasksRead))
        #expect(try runtime.ledger.read { try $0.entries(ticketID: 251) }.count == 2)
        #expect(try runtime.ledger.read { try $0.entries(ticketID: 751) }.count == 2)
        // The purge itself is seen at the next poll, as any deletion is.
        _ = try await runtime.engine.syncOnce()
        #expect(try rawSeconds(runtime) == helpdeskSeconds(server))
        #expect(try runtime.ledger.read { try $0.entries(ticketID: 5) }.count == 1)   // task 10 was ticket 5's second
    }

    @Test func aLongFirstSyncShowsHowFarItIsInStatus() async throws {
        let (server, runtime, directory, _) = try await setUp(tickets: 1200, tasksPerTicket: 2, pageSize: 500)
        defer { Task { await server.stop() } }
        _ = directory
        // Each task page takes 300 ms to serve: long enough to look at /status while the sync runs.
        server.state.beforeTaskPage = { _, _ in Thread.sleep(forTimeInterval: 0.3) }
        let sync = Task { try await runtime.engine.syncOnce() }
        var seen: [SyncProgress] = []
        for _ in 0..<100 {
            if let progress = await runtime.engine.status.progress, progress != seen.last { seen.append(progress) }
            if sync.isCancelled { break }
            try await Task.sleep(for: .milliseconds(50))
            if seen.count >= 2 { break }
        }
        _ = try await sync.value
        #expect(seen.count >= 2, "\(seen)")
        for progress in seen {
            #expect(progress.phase == .tasks && progress.total == 2400 && progress.done <= progress.total && progress.done > 0)
            #expect(progress.secondsLeft != nil && progress.perSecond > 0)
        }
        #expect(seen.map(\.done) == seen.map(\.done).sorted())
        // Gone once the sync is done.
        #expect(await runtime.engine.status.progress == nil)
    }

    func helpdeskSeconds(_ server: FakeGLPIServer) -> Int {
        var total = 0
        for id in 1...1200 { total += server.state.tasks(ofTicket: id).reduce(0) { $0 + $1.seconds } }
        return total
    }
}
