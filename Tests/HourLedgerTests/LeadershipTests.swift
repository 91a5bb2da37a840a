import FakeGLPI
import Foundation
import HourLedgerApp
import HourLedgerCore
import HourLedgerHTTPClient
import HourLedgerPostgres
import HourLedgerUseCases
import Logging
import PostgresTestServer
import TestKit
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Several processes on one PostgreSQL ledger: the lease that makes one of them the leader, and the fence that keeps
/// a leader that lost it (paused, cut off) from writing anything, to the ledger or to the helpdesk.
@Suite(.serialized) struct LeadershipTests {
    func claim(_ leases: any LeaderLeases, _ holder: String, seconds: Int, now: Date = Date()) throws -> LeaderLease? {
        if case .taken(let lease) = try leases.claimLease(holder: holder, seconds: seconds, now: now) { return lease }
        return nil
    }

    @Test func theLeaseIsTakenOnceItRunsOutOrItsHolderLetsGoOrDies() async throws {
        let location = try PostgresTestServer.start().freshLocation()
        let a = try PostgresLedger(location: location), b = try PostgresLedger(location: location)
        #expect(try a.currentLease() == nil)
        let first = try #require(try claim(a, "a", seconds: 60))
        #expect(first.term == 1 && first.holder == "a")
        // Held: B is told who leads; A renews it.
        guard case .held(let held) = try b.claimLease(holder: "b", seconds: 60, now: Date()) else { Issue.record("B took a held lease"); return }
        #expect(held.term == 1 && held.holder == "a")
        #expect(try a.renewLease(term: 1, seconds: 60))
        // Let go: B takes it at its next try, with the next term; A's renewals of its old term fail from then on.
        try a.releaseLease(term: 1)
        let second = try #require(try claim(b, "b", seconds: 60))
        #expect(second.term == 2)
        #expect(try !a.renewLease(term: 1, seconds: 60))
        #expect(try a.currentLease()?.holder == "b")
        // Run out: a lease of 1 s not renewed is taken by A after it.
        try b.releaseLease(term: 2)
        let short = try #require(try claim(b, "b", seconds: 1))
        #expect(try claim(a, "a", seconds: 60) == nil)
        try await Task.sleep(for: .milliseconds(1300))
        let afterRunOut = try #require(try claim(a, "a", seconds: 60))
        #expect(afterRunOut.term == short.term + 1)
        // Died: the server ends A's connection (as it does when A's process is killed) and B takes over without
        // waiting the 60 s out.
        try b.withWritingSession { try $0.execute("SELECT pg_terminate_backend(holder_pid) FROM hourledger_leader") }
        let started = ContinuousClock.now
        var taken: LeaderLease?
        while taken == nil, ContinuousClock.now - started < .seconds(30) {
            taken = try claim(b, "b", seconds: 60)
            if taken == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(taken?.term == afterRunOut.term + 1)
        #expect(ContinuousClock.now - started < .seconds(10))
    }

    /// A process paused (SIGSTOP) in the middle of a write transaction holds the ledger's write lock, which a claim
    /// takes too. The server ends such a transaction once it has idled as long as a lease: the takeover comes, the
    /// paused write is rolled back (nothing of it stored, its caller told), and the others' writes go on.
    @Test func aLeaderPausedInsideAWriteDoesNotHoldTheTakeoverUp() async throws {
        let location = try PostgresTestServer.start().freshLocation()
        let a = try PostgresLedger(location: location, writeIdleSeconds: 3), b = try PostgresLedger(location: location, writeIdleSeconds: 3)
        let first = try #require(try claim(a, "a", seconds: 1))
        // A's write stops for 10 s after its first statement, on a thread of its own (as a paused process's would).
        let paused = Mutex<Result<Void, any Error>?>(nil)
        let thread = Thread {
            let outcome = Result { try a.write { try $0.setState("paused", "written"); Thread.sleep(forTimeInterval: 10) } }
            paused.withLock { $0 = outcome }
        }
        thread.start()
        try await Task.sleep(for: .milliseconds(1200))
        // The lease has run out; B claims every 100 ms until it has the lease.
        let started = ContinuousClock.now
        var taken: LeaderLease?
        while taken == nil, ContinuousClock.now - started < .seconds(20) {
            taken = try? claim(b, "b", seconds: 60)
            if taken == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        let waited = ContinuousClock.now - started
        #expect(taken?.term == first.term + 1)
        #expect(waited < .seconds(5), "the takeover waited \(waited)")
        // B writes at once, without waiting for A to wake.
        let writeStarted = ContinuousClock.now
        try await b.write { try $0.setState("b", "written") }
        #expect(ContinuousClock.now - writeStarted < .seconds(1))
        // A wakes: its write fails, and nothing of it was stored.
        while paused.withLock({ $0 }) == nil { try await Task.sleep(for: .milliseconds(100)) }
        let outcome = try #require(paused.withLock { $0 })
        #expect(throws: (any Error).self) { try outcome.get() }
        #expect(try b.read { try $0.state("paused") } == nil)
        #expect(try b.read { try $0.state("b") } == "written")
        // A's ledger goes on: its next write opens a new connection.
        try await a.write { try $0.setState("a", "after") }
        #expect(try b.read { try $0.state("a") } == "after")
    }

    /// The paused leader: it recorded an attempt, then stopped before sending it; its lease ran out and another took
    /// over. When it wakes, nothing it writes is stored and nothing is sent; the new leader waits a whole fence from its
    /// takeover, then looks the task up and writes it, once.
    @Test func aLeaderThatLostItsLeaseWritesNothingAndTheNextWaitsAWholeFenceFromItsTakeover() async throws {
        let location = try PostgresTestServer.start().freshLocation()
        let directory = TemporaryDirectory()
        let server = try await FakeGLPIServer(state: makeFixtureState())
        defer { Task { await server.stop() } }
        let glpi = server.state
        glpi.addTicket(1, name: "Laptop & dock", entity: 1, category: 1, groups: [1])
        let configuration = try ConfigLoader.parse(PostgresDaemonTests().yaml(url: server.url, directory: directory, location: location))
        let a = try Runtime(configuration: configuration), b = try Runtime(configuration: configuration)
        #expect(a.leadership.snapshot.role == .standby)
        // The fence is the helpdesk's timeout and grace plus the lease.
        #expect(configuration.writeFenceSeconds == configuration.helpdesk.writeFenceSeconds + configuration.leaseSeconds)
        let leasesA = try #require(a.repository as? any LeaderLeases), leasesB = try #require(b.repository as? any LeaderLeases)
        let first = try #require(try claim(leasesA, "a", seconds: 1))
        // A's own clock still says it leads for a minute: a paused process has not looked at its clock yet.
        let fenceA = LeaderFence(term: first.term, validUntil: .now + .seconds(60))
        try await Ledger.$fence.withValue(fenceA) { _ = try await a.engine.syncOnce() }
        // A technician logs time through B's API; A records its attempt, then pauses before sending it.
        _ = try await b.ledger.addEntry(NewEntry(ticketID: 1, technician: 7, startedAt: Date().addingTimeInterval(-3600), rawSeconds: 600,
                                                 kind: .billable, note: "on site", createdBy: "alice"), now: Date())
        let markedAt = Date()
        let item = try #require(try a.ledger.nextOutboxItem(now: markedAt, fenceSeconds: 0))
        let marked = try await Ledger.$fence.withValue(fenceA) { try await a.ledger.markOutboxAttempt(item.id, now: markedAt) }
        #expect(marked)

        // Its lease runs out; B takes over.
        try await Task.sleep(for: .milliseconds(1300))
        let takenAt = Date().addingTimeInterval(30)
        let second = try #require(try claim(leasesB, "b", seconds: 60, now: takenAt))
        #expect(second.term == first.term + 1)

        // A wakes: its writes are refused, its renewal fails, and its outbox sends nothing even long after the fence.
        glpi.clearRequests()
        await #expect(throws: LeadershipLost.self) {
            try await Ledger.$fence.withValue(fenceA) { try await a.ledger.completeOutbox(item.id, remoteTaskID: 99) }
        }
        #expect(try !leasesA.renewLease(term: first.term, seconds: 60))
        let sentByA = await Ledger.$fence.withValue(fenceA) { await a.outbox.drain(now: { Date().addingTimeInterval(3600) }) }
        #expect(sentByA == 0)
        #expect(glpi.requests.filter { $0.method != "GET" }.isEmpty, "\(glpi.requests.map(\.target))")
        #expect(fenceA.lostReason != nil)

        // B: the attempt is in doubt from the takeover on, so B waits a whole fence from then (not from A's attempt).
        let doubted = try #require(try b.ledger.outboxItem(id: item.id))
        #expect(doubted.inDoubtSince.map { Int($0.timeIntervalSince1970) } == Int(takenAt.timeIntervalSince1970))
        let fenceB = LeaderFence(term: second.term, validUntil: .now + .seconds(60))
        let fence = Double(configuration.writeFenceSeconds)
        glpi.clearRequests()
        let early = await Ledger.$fence.withValue(fenceB) { await b.outbox.drain(now: { takenAt.addingTimeInterval(fence - 1) }) }
        #expect(early == 0 && glpi.requests.isEmpty)
        let late = await Ledger.$fence.withValue(fenceB) { await b.outbox.drain(now: { takenAt.addingTimeInterval(fence + 1) }) }
        #expect(late == 1)
        #expect(glpi.requests.filter { $0.method == "POST" && $0.target.contains("TicketTask") }.count == 1)
        #expect(glpi.tasks(ofTicket: 1).count == 1)
        #expect(try b.ledger.outboxStats(now: Date()).depth == 0)
        #expect(try b.ledger.verifyBooks().problems == [])
    }

    /// `hourledger sync` on a ledger a daemon leads is refused and names the daemon, as on a SQLite file.
    @Test func aSyncBesideALeaderIsRefused() async throws {
        let location = try PostgresTestServer.start().freshLocation()
        let directory = TemporaryDirectory()
        let server = try await FakeGLPIServer(state: makeFixtureState())
        defer { Task { await server.stop() } }
        let config = directory.write("hourledger.yaml", PostgresDaemonTests().yaml(url: server.url, directory: directory, location: location))
        let leases = try PostgresLedger(location: location)
        let lease = try #require(try claim(leases, "hourledger serve (pid 4242 on elsewhere)", seconds: 60))
        let refused = try await CLI.run(["sync", "--once", "--config", config])
        #expect(refused.exitedNormally && refused.status != 0)
        #expect(refused.output.contains("in use by hourledger serve (pid 4242 on elsewhere)"), "\(refused.output)")
        try leases.releaseLease(term: lease.term)
        let sync = try await CLI.run(["sync", "--once", "--config", config])
        #expect(sync.status == 0, "\(sync.output)")
        // The sync led for its run and let go afterwards.
        #expect(try leases.currentLease()?.holder.hasPrefix("hourledger sync (pid ") == true)
        #expect(try claim(leases, "next", seconds: 60)?.term == lease.term + 2)
    }
}

/// A lease store that cannot be reached, counting the tries.
final class UnreachableLeases: LeaderLeases, @unchecked Sendable {
    let tries = Locked(0)
    func claimLease(holder: String, seconds: Int, now: Date) throws -> LeaseClaim {
        tries.withLock { $0 += 1 }
        throw LedgerUnavailable(reason: "the database cannot be reached", detail: "connection refused")
    }
    func renewLease(term: Int64, seconds: Int) throws -> Bool { false }
    func releaseLease(term: Int64) throws {}
    func currentLease() throws -> LeaderLease? { nil }
}

@Suite struct StandbyOutageTests {
    /// While the database is down a standby keeps trying every `retry`, stays a standby with the reason in /status,
    /// and says so in the journal once, not at every try.
    @Test func aStandbyWhoseDatabaseIsDownKeepsTryingAndSaysSoOnce() async throws {
        let lines = Locked<[String]>([])
        var logger = Logger(label: "test") { label in JournalLogHandler(label: label, journal: false) { line in lines.withLock { $0.append(line) } } }
        logger.logLevel = .info
        let leases = UnreachableLeases()
        let status = LeadershipStatus(role: .standby)
        let election = LeaderElection(leases: leases, holder: "test", leaseSeconds: 3, retry: .milliseconds(20), workers: [], status: status,
                                      heartbeat: Heartbeat(), logger: logger)
        let running = Task { try await election.run() }
        // Ten tries, however busy the machine (well inside the minute between two warnings).
        let tried = await waited(.seconds(30)) { leases.tries.withLock { $0 } >= 10 }
        running.cancel()
        #expect(tried != nil)
        _ = try? await running.value
        #expect(leases.tries.withLock { $0 } >= 10)
        #expect(status.snapshot.role == .standby)
        #expect(status.snapshot.lastError?.contains("cannot be reached") == true)
        #expect(lines.withLock { $0 }.filter { $0.contains("cannot read the lead") }.count == 1, "\(lines.withLock { $0 })")
    }
}
