import FakeGLPI
import Foundation
import GRDB
import HourLedgerApp
import HourLedgerCore
import HourLedgerGLPI
import HourLedgerHelpdeskKit
import HourLedgerITop
import HourLedgerUseCases
import HourLedgerStore
import Testing

/// Timers and manual entries written back to the fake GLPI through the outbox and the real libcurl client.
@Suite struct WriteBackTests {
    let contracts = """
      - { id: acme-2026, name: ACME support, entity: 1, quota_hours: 20, starts: 2026-01-01, timezone: Europe/Paris,
          rounding: { increment_minutes: 15, mode: up } }
    """
    let t0 = Date.utc("2026-11-21 09:00:00")

    func setUp(environment: [String: String] = [:]) async throws -> (FakeGLPIServer, Runtime, TemporaryDirectory) {
        let directory = TemporaryDirectory()
        let server = try await FakeGLPIServer(state: makeFixtureState())
        server.state.addTicket(1, name: "Laptop", entity: 1, category: 1, groups: [1])
        let config = try ConfigLoader.parse(configYAML(url: server.url, database: directory.path + "/l.sqlite", contracts: contracts),
                                            environment: environment)
        let runtime = try Runtime(configuration: config)
        try await runtime.engine.syncOnce()
        return (server, runtime, directory)
    }

    func createdTasks(_ state: FakeGLPIState) -> [FakeGLPIState.LoggedRequest] {
        state.requests.filter { $0.method == "POST" && $0.target == "/apirest.php/TicketTask" }
    }

    @Test func aStoppedTimerBecomesOnePrivateTaskAndIsCountedOnce() async throws {
        let (server, runtime, _) = try await setUp()
        defer { Task { await server.stop() } }
        let glpi = server.state
        let contracts = runtime.configuration.contracts
        let (timer, created) = try await runtime.ledger.startTimer(technician: 7, ticketID: 1, now: t0)
        #expect(created)
        _ = try await runtime.ledger.timerTransition(id: timer.id, actingAs: 7, action: .pause, actor: "alice", now: t0.addingTimeInterval(40))
        _ = try await runtime.ledger.timerTransition(id: timer.id, actingAs: 7, action: .resume, actor: "alice", now: t0.addingTimeInterval(100))
        let (_, entry) = try await runtime.ledger.timerTransition(id: timer.id, actingAs: 7, action: .stop, note: "replaced PSU", category: 1, actor: "alice", now: t0.addingTimeInterval(121))
        let stopped = try #require(entry)
        #expect((stopped.rawSeconds, stopped.billedSeconds, stopped.contractID) == (61, 900, "acme-2026"))
        #expect(try runtime.ledger.balance(of: contracts[0], at: t0)?.usedSeconds == 900)
        #expect(try runtime.ledger.outboxStats(now: t0).depth == 1)

        glpi.clearRequests()
        #expect(await runtime.outbox.drain() == 1)
        let posts = createdTasks(glpi)
        #expect(posts.count == 1)
        // The text names the time worked to the second, the day (the contract's own) and the technician.
        let expectedBody = #"{"input":{"actiontime":900,"content":"<p>[hourledger:\#(stopped.key)] 0:15 h billable, worked 0:01:01 on 2026-11-21 by technician 7, rounded up to 15 min, on contract ACME support (acme-2026): replaced PSU<\/p>","date":"2026-11-21 09:00:00","is_private":1,"state":2,"taskcategories_id":1,"tickets_id":1,"users_id_tech":7}}"#
        #expect(posts.first?.body == expectedBody)
        let task = try #require(glpi.tasks(ofTicket: 1).first)
        #expect(task.isPrivate && task.seconds == 900 && task.technician == 7)
        #expect(try runtime.ledger.workEntries(ticketID: 1).first?.remoteTaskID == task.id)
        #expect(try runtime.ledger.outboxStats(now: t0).depth == 0)

        // The poller sees the task (its write bumped date_mod) and knows it as the entry's own: counted once.
        glpi.advance(seconds: 5)
        try await runtime.engine.syncOnce()
        #expect(try runtime.ledger.balance(of: contracts[0], at: t0)?.usedSeconds == 900)
        let period = try #require(try runtime.ledger.balance(of: contracts[0], at: t0)).periodKey
        #expect(try runtime.ledger.ticketBreakdown(contractID: "acme-2026", periodKey: period).map(\.entryCount) == [1])
        #expect(try runtime.ledger.balanceDiscrepancies() == [])
        #expect(await runtime.outbox.drain() == 0)
    }

    /// The upgrade to the reports by type drops the high-water mark (migration v15), so the next poll is a full one over
    /// a ledger that already holds written-back entries and helpdesk tasks: each still counts once, nothing is written
    /// again, and the ticket gets its type and category.
    @Test func aFullPollOverAFullLedgerCountsEachTaskOnceAndWritesNothing() async throws {
        let (server, runtime, directory) = try await setUp()
        defer { Task { await server.stop() } }
        let glpi = server.state
        let contract = runtime.configuration.contracts[0]
        glpi.addTask(ticket: 1, seconds: 1200, technician: 8, date: "2026-11-20 10:00:00")
        glpi.advance(seconds: 5)
        try await runtime.engine.syncOnce()
        _ = try await runtime.ledger.addEntry(NewEntry(ticketID: 1, technician: 7, startedAt: t0, rawSeconds: 600, kind: .billable, note: "call",
                                                       createdBy: "alice"), now: t0)
        #expect(await runtime.outbox.drain() == 1)
        glpi.advance(seconds: 5)
        try await runtime.engine.syncOnce()
        let before = try #require(try runtime.ledger.balance(of: contract, at: t0))
        #expect((before.usedSeconds, before.entryCount) == (1800 + 900, 2))

        try await DatabaseQueue(path: directory.path + "/l.sqlite").write { try $0.execute(sql: "DELETE FROM sync_state WHERE key = 'helpdesk.high_water'") }
        glpi.clearRequests()
        try await runtime.engine.syncOnce()
        #expect(glpi.requests.contains { $0.target.hasPrefix("/apirest.php/search/Ticket?forcedisplay") }, "not a full poll")
        let after = try #require(try runtime.ledger.balance(of: contract, at: t0))
        #expect((after.usedSeconds, after.entryCount) == (before.usedSeconds, before.entryCount))
        #expect(try runtime.ledger.balanceDiscrepancies() == [])
        #expect(glpi.tasks(ofTicket: 1).count == 2 && createdTasks(glpi).isEmpty)
        #expect(await runtime.outbox.drain() == 0)
        let ticket = try #require(try runtime.ledger.ticketReport(range: ReportRange(from: .utc("2026-11-01 00:00:00"), to: .utc("2026-12-01 00:00:00"))).first)
        #expect((ticket.type, ticket.category) == ("Incident", "Hardware support"))
    }

    @Test func aRetryAfterACrashFindsTheTaskInsteadOfWritingASecond() async throws {
        let (server, runtime, directory) = try await setUp()
        defer { Task { await server.stop() } }
        let glpi = server.state
        let entry = try await runtime.ledger.addEntry(NewEntry(ticketID: 1, technician: 8, startedAt: t0, rawSeconds: 1800, kind: .billable,
                                                              note: "backdated", createdBy: "bob"), now: t0)
        // The crash: the attempt was recorded and GLPI created the task, but the daemon died before storing its id.
        let attemptAt = Date()
        let item = try #require(try runtime.ledger.nextOutboxItem(now: attemptAt, fenceSeconds: 0))
        #expect(try await runtime.ledger.markOutboxAttempt(item.id, now: attemptAt))
        let taskID = try await (runtime.connector as! any HelpdeskTaskWriter).createTask(NewHelpdeskTask(ticketID: 1, seconds: 1800, note: HelpdeskNote(marker: EntrySource.marker(item.entryKey), text: item.payload.text),
                                                                           technician: 8, date: t0))
        // A new daemon on the same ledger file. Inside the write fence the first attempt could still be landing:
        // nothing is sent, not even the look-up.
        let restarted = try Runtime(configuration: runtime.configuration)
        glpi.clearRequests()
        #expect(await restarted.outbox.drain(now: { attemptAt.addingTimeInterval(1) }) == 0)
        #expect(glpi.requests.isEmpty)
        #expect(try restarted.ledger.outboxStats(now: attemptAt).inDoubt == 1)
        // After the fence the look-up finds the task.
        let fence = TimeInterval(restarted.outbox.fenceSeconds)
        #expect(await restarted.outbox.drain(now: { attemptAt.addingTimeInterval(fence + 1) }) == 1)
        #expect(createdTasks(glpi).isEmpty)
        #expect(glpi.tasks(ofTicket: 1).count == 1)
        #expect(try restarted.ledger.workEntries(ticketID: 1).first?.remoteTaskID == taskID)
        #expect(entry.billedSeconds == 1800)
        _ = directory
    }

    @Test func anOutageDelaysWriteBacksThatThenDrainInOrder() async throws {
        // A 4 s timeout against a 10 s hang: far enough apart that a loaded machine (the whole suite on two cores, where
        // even the set-up's initSession once took over 2 s) still answers in time and still times out on the hang.
        let (server, runtime, _) = try await setUp(environment: ["HOURLEDGER_HELPDESK_TIMEOUT_SECONDS": "4"])
        defer { Task { await server.stop() } }
        let glpi = server.state
        var keys: [String] = []
        for minutes in [10, 20, 45] {
            keys.append(try await runtime.ledger.addEntry(NewEntry(ticketID: 1, technician: 7, startedAt: t0, rawSeconds: minutes * 60, kind: .billable,
                                                                  note: "", createdBy: "alice"), now: t0).key)
        }
        // GLPI answers 500, then hangs past the client's timeout: nothing is delivered, nothing is lost.
        glpi.failNext(1, status: 500)
        #expect(await runtime.outbox.drain() == 0)
        var stats = try runtime.ledger.outboxStats(now: t0)
        #expect(stats.depth == 3)
        #expect(stats.lastError?.contains("serverError") == true, "\(stats.lastError ?? "no error")")
        glpi.failNext(1, status: 200, delay: .seconds(10))
        #expect(await runtime.outbox.drain(now: { Date().addingTimeInterval(3600) }) == 0)
        stats = try runtime.ledger.outboxStats(now: t0)
        #expect(stats.lastError?.contains("timed out") == true, "\(stats.lastError ?? "no error")")
        // GLPI is back: the retry finds nothing written by the timed-out attempt and drains everything in order.
        try await Task.sleep(for: .seconds(7))
        #expect(await runtime.outbox.drain(now: { Date().addingTimeInterval(7200) }) == 3)
        let tasks = glpi.tasks(ofTicket: 1)
        #expect(tasks.map(\.seconds) == [900, 1800, 2700])
        #expect(zip(tasks, keys).allSatisfy { $0.content.contains($1) })
        #expect(try runtime.ledger.outboxStats(now: t0).depth == 0)
    }

    @Test func hundredConcurrentStartsAndStopsLeaveOneTimerAndOneEntry() async throws {
        let (server, runtime, _) = try await setUp()
        defer { Task { await server.stop() } }
        let store = runtime.ledger
        let contracts = runtime.configuration.contracts
        let t0 = self.t0
        let starts = try await withThrowingTaskGroup(of: (Int64, Bool).self) { group in
            for _ in 0..<100 { group.addTask { let r = try await store.startTimer(technician: 7, ticketID: 1, now: t0); return (r.timer.id, r.created) } }
            return try await group.reduce(into: [(Int64, Bool)]()) { $0.append($1) }
        }
        #expect(starts.filter(\.1).count == 1)
        #expect(Set(starts.map(\.0)).count == 1)
        let id = starts[0].0
        let stops = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<100 {
                group.addTask {
                    (try? await store.timerTransition(id: id, actingAs: 7, action: .stop, actor: "alice", now: t0.addingTimeInterval(600))) != nil
                }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(stops.filter { $0 }.count == 1)
        #expect(try store.workEntries(ticketID: 1).count == 1)
        #expect(try store.outboxStats(now: t0).depth == 1)
        #expect(try store.timers(openOnly: true).isEmpty)
    }

    @Test func timersSurviveARestartStillRunningAndTheCapPausesForgottenOnes() async throws {
        let directory = TemporaryDirectory()
        let path = directory.path + "/l.sqlite"
        let store = try makeLedger(path: path)
        let match = ContractMatcher.match(TicketFacts(id: 1, entity: 1, groups: [], category: 0), contracts: [], entities: EntityTree(), terms: .glpi)
        _ = try await store.apply([TicketUpdate(ticket: TicketFacts(id: 1, entity: 1, groups: [], category: 0), dateMod: "2026-11-21 08:00:00",
                                                match: match, tasks: [])])
        let (timer, _) = try await store.startTimer(technician: 7, ticketID: 1, now: t0)
        let reopened = try makeLedger(path: path)
        let open = try #require(try reopened.timers(openOnly: true).first)
        #expect(open.id == timer.id && open.state.status == .running)
        #expect(open.state.elapsedSeconds(at: t0.addingTimeInterval(3600)) == 3600)
        let capped = try await reopened.applyTimerCap(maxRunningSeconds: 36000, now: t0.addingTimeInterval(340 * 3600))
        #expect(capped.map(\.id) == [timer.id])
        let flagged = try #require(try reopened.timers(openOnly: true).first)
        #expect(flagged.state.needsReview && flagged.state.elapsedSeconds(at: t0.addingTimeInterval(400 * 3600)) == 36000)
    }
}

@Suite struct EditAndAuditTests {
    let contracts = """
      - { id: acme-2026, name: ACME support, entity: 1, quota_hours: 20, starts: 2026-01-01, rounding: { increment_minutes: 15, mode: up } }
    """
    let t0 = Date.utc("2026-11-21 09:00:00")

    @Test func editsAndDeletesAreAuditedBalancedAndWrittenBack() async throws {
        let directory = TemporaryDirectory()
        let server = try await FakeGLPIServer(state: makeFixtureState())
        defer { Task { await server.stop() } }
        let glpi = server.state
        glpi.addTicket(1, name: "Laptop", entity: 1, category: 1, groups: [1])
        let runtime = try Runtime(configuration: try ConfigLoader.parse(configYAML(url: server.url, database: directory.path + "/l.sqlite", contracts: contracts)))
        try await runtime.engine.syncOnce()
        let contracts = runtime.configuration.contracts
        let store = runtime.ledger
        let entry = try await store.addEntry(NewEntry(ticketID: 1, technician: 7, startedAt: t0, rawSeconds: 600, kind: .billable, note: "call",
                                                      createdBy: "alice"), now: t0)
        #expect(await runtime.outbox.drain() == 1)

        // Editing the duration re-rounds the entry, moves the balance and updates the same GLPI task.
        let edited = try await store.editEntry(key: entry.key, change: EntryChange(rawSeconds: 1000, note: "long call"), reason: "",
                                               actor: "alice", actingAs: 7, now: t0)
        #expect((edited.rawSeconds, edited.billedSeconds) == (1000, 1800))
        #expect(try store.balance(of: contracts[0], at: t0)?.usedSeconds == 1800)
        glpi.clearRequests()
        #expect(await runtime.outbox.drain() == 1)
        let task = try #require(glpi.tasks(ofTicket: 1).first)
        #expect(glpi.tasks(ofTicket: 1).count == 1 && task.seconds == 1800 && task.content.contains("long call"))
        #expect(glpi.requests.map { "\($0.method) \($0.target)" } == ["PUT /apirest.php/TicketTask/\(task.id)"])

        // Once the ticket is solved, a change needs a reason.
        glpi.updateTicket(1) { $0.status = 5 }
        glpi.advance(seconds: 5)
        try await runtime.engine.syncOnce()
        await #expect(throws: LedgerError.self) {
            try await store.deleteEntry(key: entry.key, reason: " ", actor: "alice", actingAs: 7, now: t0)
        }
        await #expect(throws: LedgerError.self) {
            try await store.deleteEntry(key: entry.key, reason: "duplicate", actor: "bob", actingAs: 8, now: t0)
        }
        try await store.deleteEntry(key: entry.key, reason: "logged twice", actor: "alice", actingAs: 7, now: t0)
        #expect(try store.balance(of: contracts[0], at: t0)?.usedSeconds == 0)
        #expect(await runtime.outbox.drain() == 1)
        #expect(glpi.tasks(ofTicket: 1).isEmpty)
        #expect(try store.balanceDiscrepancies() == [])

        let trail = try store.auditTrail(ticketID: 1)
        #expect(trail.map(\.field) == ["duration_seconds", "note", "deleted"])
        #expect(trail.map { "\($0.oldValue ?? "-")>\($0.newValue ?? "-")" } == ["600>1000", "call>long call", "1000 s>-"])
        #expect(trail.last?.reason == "logged twice" && trail.allSatisfy { $0.actor == "alice" && $0.contractID == "acme-2026" })
        #expect(try store.auditTrail(contractID: "acme-2026").count == 3)
    }
}
