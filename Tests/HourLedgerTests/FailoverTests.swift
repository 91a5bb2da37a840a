import FakeGLPI
import FaultProxy
import Foundation
import HourLedgerApp
import HourLedgerCore
import HourLedgerGLPI
import HourLedgerHTTPClient
import HourLedgerPostgres
import HourLedgerUseCases
import PostgresTestServer
import TestKit
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Real `serve` processes sharing one PostgreSQL ledger, each on its own port, as two hosts would run them.
final class Cluster: @unchecked Sendable {
    static let webhookSecret = "failover-0123456789abcdefghijABCDEFGHIJ"
    let directory = TemporaryDirectory()
    let location: PostgresLocation
    let leases: PostgresLedger
    let http = CurlHTTPClient(configuration: { var c = HTTPClientConfiguration(); c.totalTimeout = .seconds(3); return c }())
    private(set) var daemons: [Member] = []
    private var started = 0

    struct Member {
        let process: ChildProcess
        let port: Int
        let log: String
        let startedAt = ContinuousClock.now
        var base: String { "http://127.0.0.1:\(port)" }
    }

    init(location: PostgresLocation) throws {
        self.location = location
        leases = try PostgresLedger(location: location)
    }

    /// The config of `PostgresDaemonTests` with a short lease, a webhook secret and this member's port.
    /// `databasePort`: this member reaches PostgreSQL through a relay on that port instead.
    func config(helpdesk url: String, port: Int, extra: String = "", databasePort: Int? = nil) -> String {
        let secret = directory.write("webhook-secret", Self.webhookSecret + "\n")
        let yaml = PostgresDaemonTests().yaml(url: url, directory: directory, location: location, extraHelpdesk: """
              webhook_secret_file: \(secret)
              write_grace_seconds: 1
            \(extra)
            """).replacingOccurrences(of: "  port: 0", with: "  port: \(port)")
            .replacingOccurrences(of: "database:\n", with: "database:\n  lease_seconds: 3\n")
            .replacingOccurrences(of: "@\(location.host):\(location.port)/", with: "@\(location.host):\(databasePort ?? location.port)/")
        return directory.write("member-\(port).yaml", yaml)
    }

    @discardableResult
    func start(helpdesk url: String, extra: String = "", databasePort: Int? = nil) throws -> Member {
        let port = try PostgresTestServer.freePort()
        started += 1
        let log = directory.path + "/member-\(started).log"
        let config = config(helpdesk: url, port: port, extra: extra, databasePort: databasePort)
        let member = Member(process: try ChildProcess(CrashSafetyTests.binary, ["serve", "--config", config],
                                                      output: .file(log)), port: port, log: log)
        daemons.append(member)
        return member
    }

    func remove(_ member: Member) { daemons.removeAll { $0.process.pid == member.process.pid } }

    func get(_ member: Member, _ path: String) async -> (status: Int, body: [String: Any], text: String)? {
        guard let response = try? await http.send(HTTPRequest(method: "GET", url: member.base + path)) else { return nil }
        let text = String(decoding: response.body, as: UTF8.self)
        return (response.status, (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any] ?? [:], text)
    }

    func role(_ member: Member) async -> String? {
        guard let status = await get(member, "/status") else { return nil }
        return (status.body["leadership"] as? [String: Any])?["role"] as? String
    }

    /// The member whose pid the lease names, while it is current.
    func leader() -> Member? {
        guard let lease = try? leases.currentLease(), lease.expiresAt > Date() else { return nil }
        return daemons.first { lease.holder.contains("(pid \($0.process.pid) ") }
    }

    func term() -> Int64 { (try? leases.currentLease()?.term) ?? 0 }

    /// Sends a signed GLPI webhook for `ticket` to `member`; true when it answered 2xx (the hint is durable).
    func webhook(_ member: Member, ticket: Int, event: String = "update") async -> Bool {
        let body = Array("{\"item\": {\"id\": \(ticket), \"tickets_id\": \(ticket)}, \"event\": \"\(event)\"}".utf8)
        let stamp = String(Int(Date().timeIntervalSince1970))
        guard let answer = try? await http.send(HTTPRequest(method: "POST", url: member.base + "/webhooks/glpi", headers: [
            ("X-GLPI-signature", GLPISignature.sign(body: body, timestamp: stamp, secret: Self.webhookSecret)), ("X-GLPI-timestamp", stamp),
        ], body: body)) else { return false }
        return (200..<300).contains(answer.status)
    }

    func killAll() {
        for member in daemons {
            member.process.signal(SIGCONT)
            member.process.signal(SIGKILL)
            _ = member.process.waitUntilExit()
        }
        daemons = []
    }

    func logs() -> String {
        daemons.map { "--- \($0.log)\n" + ((try? String(contentsOfFile: $0.log, encoding: .utf8)) ?? "").suffix(4000) }.joined(separator: "\n")
    }
}

/// Waits up to `limit` for `condition`; returns how long it took, nil on time-out.
func waited(_ limit: Duration = .seconds(30), _ condition: () async throws -> Bool) async rethrows -> Duration? {
    let started = ContinuousClock.now
    while ContinuousClock.now - started < limit {
        if try await condition() { return ContinuousClock.now - started }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return nil
}

@Suite(.serialized) struct FailoverTests {
    /// Two daemons on one ledger: one leads, the other stands by healthy and takes webhooks; the leader delivers what
    /// the standby queued; SIGSTOP makes the standby take over, and the paused one, woken, stands by and writes nothing;
    /// kill -9 makes the other take over at once.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: CrashSafetyTests.binary)))
    func oneLeadsTheOtherStandsByAndTakesOverWhenTheLeaderIsPausedOrKilled() async throws {
        let cluster = try Cluster(location: try PostgresTestServer.start().freshLocation())
        defer { cluster.killAll() }
        let server = try await FakeGLPIServer(state: makeFixtureState())
        defer { Task { await server.stop() } }
        let glpi = server.state
        glpi.addTicket(1, name: "Laptop & dock", entity: 1, category: 1, groups: [1])
        glpi.addTask(ticket: 1, seconds: 1500, technician: 7, date: HelpdeskContractTests.today(hour: 0))

        let a = try cluster.start(helpdesk: server.url)
        let tookLead = await waited { await cluster.role(a) == "leader" }
        #expect(tookLead != nil, "\(cluster.logs())")
        let b = try cluster.start(helpdesk: server.url)
        #expect(await waited { await cluster.role(b) == "standby" } != nil, "\(cluster.logs())")
        let standby = try #require(await cluster.get(b, "/status"))
        let lease = try #require((standby.body["leadership"] as? [String: Any])?["lease"] as? [String: Any])
        #expect((lease["holder"] as? String)?.contains("pid \(a.process.pid) ") == true, "\(standby.text.prefix(600))")
        // Both healthy; each says its role in /metrics.
        #expect(await cluster.get(a, "/healthz")?.status == 200)
        let health = await cluster.get(b, "/healthz")
        #expect(health?.status == 200, "\(health?.text ?? "")")
        #expect(await cluster.get(a, "/metrics")?.text.contains("\nhourledger_leader 1") == true)
        #expect(await cluster.get(b, "/metrics")?.text.contains("\nhourledger_leader 0") == true)

        // A webhook the standby accepts is applied by the leader, well before its next poll (60 s).
        let ledger = try openLedger(try ConfigLoader.parse(String(contentsOfFile: cluster.config(helpdesk: server.url, port: 1), encoding: .utf8)))
        #expect(await waited { (try? ledger.counts().entries) == 1 } != nil)
        glpi.addTicket(2, name: "Printer <2nd floor>", entity: 1, category: 1, groups: [1])
        glpi.addTask(ticket: 2, seconds: 900, technician: 8, date: HelpdeskContractTests.today(hour: 0))
        #expect(await cluster.webhook(b, ticket: 2))
        let applied = await waited(.seconds(20)) { (try? ledger.counts().entries) == 2 }
        #expect(applied != nil, "\(cluster.logs())")

        // Time logged through another process is written back by the leader, once.
        func addEntry(_ seconds: Int) async throws -> WorkEntry {
            try await ledger.addEntry(NewEntry(ticketID: 1, technician: 7, startedAt: Date().addingTimeInterval(-7200), rawSeconds: seconds,
                                               kind: .billable, note: "logged elsewhere", createdBy: "alice"), now: Date())
        }
        let first = try await addEntry(600)
        #expect(await waited(.seconds(20)) { glpi.tasks(ofTicket: 1).count == 2 } != nil, "\(cluster.logs())")

        // SIGSTOP: the standby takes over once the lease (3 s) has run out, and delivers the next write-back.
        let termBefore = cluster.term()
        a.process.signal(SIGSTOP)
        let takeover = await waited(.seconds(15)) { await cluster.role(b) == "leader" }
        #expect(takeover != nil && takeover! < .seconds(6), "\(String(describing: takeover))")
        #expect(cluster.term() == termBefore + 1)
        let second = try await addEntry(1200)
        #expect(await waited(.seconds(20)) { glpi.tasks(ofTicket: 1).count == 3 } != nil, "\(cluster.logs())")
        // SIGCONT: the old leader finds its lease gone and stands by.
        a.process.signal(SIGCONT)
        #expect(await waited(.seconds(10)) { await cluster.role(a) == "standby" } != nil, "\(cluster.logs())")

        // kill -9: the server ends the dead leader's connection, so the standby takes over at once.
        b.process.signal(SIGKILL)
        _ = b.process.waitUntilExit()
        cluster.remove(b)
        let killed = await waited(.seconds(15)) { await cluster.role(a) == "leader" }
        #expect(killed != nil && killed! < .seconds(3), "\(String(describing: killed))")
        let third = try await addEntry(300)
        #expect(await waited(.seconds(20)) { glpi.tasks(ofTicket: 1).count == 4 } != nil, "\(cluster.logs())")
        try await Task.sleep(for: .seconds(1))

        // Each entry once in GLPI, and the books hold.
        for entry in [first, second, third] {
            let marker = EntrySource.marker(entry.key)
            #expect(glpi.tasks(ofTicket: 1).filter { $0.content.contains(marker) }.count == 1, "\(entry.key)")
        }
        #expect(try ledger.outboxStats(now: Date()).depth == 0)
        #expect(try ledger.verifyBooks().problems == [])
        print("failover: SIGSTOP takeover \(takeover.map { "\($0)" } ?? "-"), kill -9 takeover \(killed.map { "\($0)" } ?? "-")")
    }

    /// The leader cut off from the database (a partition: its connections hang, none is closed): it cannot renew, so it
    /// stops its work when its lease runs out by its own clock, and the standby takes over once the lease has run out
    /// in PostgreSQL. What was queued meanwhile is delivered once; healed, the old leader stands by.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: CrashSafetyTests.binary)))
    func aLeaderCutOffFromTheDatabaseStopsAndTheStandbyTakesOver() async throws {
        let location = try PostgresTestServer.start().freshLocation()
        let cluster = try Cluster(location: location)
        defer { cluster.killAll() }
        let relay = try TCPRelay(upstreamPort: location.port)
        defer { relay.stop() }
        let server = try await FakeGLPIServer(state: makeFixtureState())
        defer { Task { await server.stop() } }
        let glpi = server.state
        glpi.addTicket(1, name: "Laptop & dock", entity: 1, category: 1, groups: [1])
        let ledger = try openLedger(try ConfigLoader.parse(String(contentsOfFile: cluster.config(helpdesk: server.url, port: 1), encoding: .utf8)))
        let a = try cluster.start(helpdesk: server.url, databasePort: relay.port)
        #expect(await waited { await cluster.role(a) == "leader" } != nil, "\(cluster.logs())")
        let b = try cluster.start(helpdesk: server.url)
        #expect(await waited { await cluster.role(b) == "standby" } != nil, "\(cluster.logs())")
        #expect(await waited { (try? ledger.read { try $0.ticket(1) }) != nil } != nil)
        func addEntry(_ seconds: Int) async throws -> WorkEntry {
            try await ledger.addEntry(NewEntry(ticketID: 1, technician: 7, startedAt: Date().addingTimeInterval(-7200), rawSeconds: seconds,
                                               kind: .billable, note: "logged elsewhere", createdBy: "alice"), now: Date())
        }
        let first = try await addEntry(600)
        #expect(await waited(.seconds(20)) { glpi.tasks(ofTicket: 1).count == 1 } != nil, "\(cluster.logs())")

        let term = cluster.term()
        relay.partitioned = true
        let second = try await addEntry(900)
        let takeover = await waited(.seconds(20)) { await cluster.role(b) == "leader" }
        #expect(takeover != nil, "\(cluster.logs())")
        #expect(cluster.term() == term + 1)
        #expect(await waited(.seconds(30)) { glpi.tasks(ofTicket: 1).count == 2 } != nil, "\(cluster.logs())")
        // The cut-off leader stopped its work by its own clock, though it could not tell anyone.
        let steppedDown = await waited(.seconds(15)) { ((try? String(contentsOfFile: a.log, encoding: .utf8)) ?? "").contains("no longer leading") }
        #expect(steppedDown != nil, "\(cluster.logs())")

        relay.partitioned = false
        #expect(await waited(.seconds(20)) { await cluster.role(a) == "standby" } != nil, "\(cluster.logs())")
        let third = try await addEntry(300)
        #expect(await waited(.seconds(20)) { glpi.tasks(ofTicket: 1).count == 3 } != nil, "\(cluster.logs())")
        try await Task.sleep(for: .seconds(1))
        for entry in [first, second, third] {
            #expect(glpi.tasks(ofTicket: 1).filter { $0.content.contains(EntrySource.marker(entry.key)) }.count == 1, "\(entry.key)")
        }
        #expect(try ledger.verifyBooks().problems == [])
        print("failover: cut off from the database, taken over in \(takeover.map { "\($0)" } ?? "-")")
    }
}

/// Three real daemons on one PostgreSQL ledger, the fake GLPI behind the fault proxy (writes held, dropped, cut), the
/// leader killed with SIGKILL or paused with SIGSTOP at random moments while people log time and webhooks arrive.
/// Every entry must reach GLPI exactly once and every webhook a member accepted must be applied.
///
/// `HOURLEDGER_FAILOVER_ROUNDS` sets the rounds (CI runs the default 10; `Tests/soak.sh failover` runs 100) and
/// `HOURLEDGER_SOAK_SEED` the seed.
@Suite(.serialized) struct FailoverSoakTests {
    static var rounds: Int { ProcessInfo.processInfo.environment["HOURLEDGER_FAILOVER_ROUNDS"].flatMap { Int($0) } ?? 10 }
    static var seed: UInt64 { ProcessInfo.processInfo.environment["HOURLEDGER_SOAK_SEED"].flatMap { UInt64($0) } ?? 20261204 }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: CrashSafetyTests.binary)))
    func theLeaderKilledOrPausedAtRandomLosesNothingAndWritesNothingTwice() async throws {
        let cluster = try Cluster(location: try PostgresTestServer.start().freshLocation())
        defer { cluster.killAll() }
        let server = try await FakeGLPIServer(state: makeFixtureState())
        defer { Task { await server.stop() } }
        let glpi = server.state
        // Write-backs are delivered in order per ticket, so a record in doubt holds up its ticket's later ones until its
        // fence has passed; ten tickets keep most records flowing while some wait.
        let tickets = Array(1...10)
        for id in tickets { glpi.addTicket(id, name: "Ticket \(id) & co", entity: 1, category: 1, groups: [1]) }
        var rng = SplitMix64(seed: Self.seed)
        let faults = Locked(SplitMix64(seed: Self.seed &+ 1))
        let calm = Locked(false)
        let writes = Locked<[String: Int]>([:])
        let proxy = try FaultProxy(upstreamPort: server.port, decide: CrashSoakTests.plan(faults, calm: calm, writes: writes))
        defer { proxy.stop() }
        let url = "http://127.0.0.1:\(proxy.port)/apirest.php"
        let ledger = try openLedger(try ConfigLoader.parse(String(contentsOfFile: cluster.config(helpdesk: url, port: 1), encoding: .utf8)))
        for _ in 0..<3 { try cluster.start(helpdesk: url) }
        #expect(await waited { cluster.leader() != nil } != nil, "\(cluster.logs())")
        #expect(await waited { (try? ledger.read { try $0.tickets(tickets) }.count) == tickets.count } != nil, "\(cluster.logs())")

        var entries: [String] = []
        var hooked: [Int] = []
        var takeovers: [Bool: [Duration]] = [:]  // by whether the leader was paused
        var (kills, pauses, refusedHooks) = (0, 0, 0)
        let started = ContinuousClock.now
        for round in 0..<Self.rounds {
            // People work on any member: entries logged, and a webhook for a new ticket with time on it.
            for _ in 0..<Int.random(in: 1...2, using: &rng) {
                let entry = try await ledger.addEntry(NewEntry(ticketID: tickets.randomElement(using: &rng)!, technician: 7,
                                                               startedAt: Date().addingTimeInterval(-86_400 + Double(entries.count * 60)),
                                                               rawSeconds: Int.random(in: 60...3600, using: &rng), kind: .billable,
                                                               note: "failover \(round)", createdBy: "soak"), now: Date())
                entries.append(entry.key)
            }
            let ticket = 100 + round
            glpi.addTicket(ticket, name: "Webhook \(ticket) <new>", entity: 1, category: 1, groups: [1])
            glpi.addTask(ticket: ticket, seconds: 600 + round, technician: 8, date: HelpdeskContractTests.today(hour: 0))
            // To a member that has had time to listen (one started this instant would refuse the connection).
            let live = cluster.daemons.filter { member in member.process.isRunning && ContinuousClock.now - member.startedAt > .seconds(3) }
            if let member = live.randomElement(using: &rng), await cluster.webhook(member, ticket: ticket) { hooked.append(ticket) } else { refusedHooks += 1 }

            // Mostly short terms; every fifth one long enough for fences to pass and backlogs to drain under the faults.
            try await Task.sleep(for: .milliseconds(round % 5 == 4 ? Int.random(in: 6000...12_000, using: &rng) : Int.random(in: 200...2500, using: &rng)))
            guard let leader = cluster.leader() else {
                _ = await waited(.seconds(15)) { cluster.leader() != nil }
                continue
            }
            let term = cluster.term()
            let pause = Bool.random(using: &rng)
            if pause {
                leader.process.signal(SIGSTOP)
                pauses += 1
            } else {
                leader.process.signal(SIGKILL)
                _ = leader.process.waitUntilExit()
                cluster.remove(leader)
                kills += 1
            }
            if let took = await waited(.seconds(30), { cluster.term() > term && cluster.leader() != nil }) {
                takeovers[pause, default: []].append(took)
            } else {
                Issue.record("round \(round): no takeover within 30 s\n\(cluster.logs())")
            }
            if pause {
                // Woken a little later, the old leader must find its lease gone and stand by.
                try await Task.sleep(for: .milliseconds(Int.random(in: 0...1500, using: &rng)))
                leader.process.signal(SIGCONT)
            } else {
                try cluster.start(helpdesk: url)
            }
        }

        // The faults stop; the last leader delivers what is left, fences included.
        let delivered = writes.withLock { $0.values.reduce(0, +) }
        let waiting = (try? ledger.outboxStats(now: Date()).depth) ?? -1
        calm.withLock { $0 = true }
        let drained = await waited(.seconds(120)) {
            guard (try? ledger.outboxStats(now: Date()).depth) == 0 else { return false }
            let synced = (try? ledger.read { try $0.entries(ticketIDs: hooked) }) ?? [:]
            return hooked.allSatisfy { synced[$0]?.isEmpty == false }
        }
        #expect(drained != nil, "outbox \(String(describing: try? ledger.outboxStats(now: Date())))\n\(cluster.logs())")

        var duplicates = 0, lost = 0
        let tasks = tickets.flatMap { glpi.tasks(ofTicket: $0) }
        for key in entries {
            let marker = EntrySource.marker(key)
            let found = tasks.filter { $0.content.contains(marker) }.count
            if found == 0, (try? ledger.read { try $0.entry(key: key) }) != nil { lost += 1 }
            if found > 1 { duplicates += 1 }
        }
        let synced = try ledger.read { try $0.entries(ticketIDs: hooked) }
        let unapplied = hooked.filter { synced[$0]?.isEmpty != false }
        #expect(duplicates == 0 && lost == 0 && unapplied.isEmpty, "duplicates \(duplicates), lost \(lost), webhooks not applied \(unapplied)")
        #expect(try ledger.verifyBooks().problems == [])
        func seconds(_ duration: Duration?) -> String { duration.map { String(format: "%.2f s", $0.timeInterval) } ?? "-" }
        func spread(_ list: [Duration]?) -> String {
            let sorted = (list ?? []).sorted()
            return "median \(seconds(sorted.isEmpty ? nil : sorted[sorted.count / 2])) max \(seconds(sorted.last))"
        }
        let figures = writes.withLock { $0 }
        print("failover soak: \(Self.rounds) rounds (\(kills) kill -9, \(pauses) SIGSTOP), \(entries.count) entries, "
              + "\(hooked.count) webhooks accepted (\(refusedHooks) not), \(figures.values.reduce(0, +)) helpdesk writes (\(delivered) under faults, "
              + "\(waiting) write-backs waiting when the faults stopped), faults "
              + figures.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
              + ", takeover after kill -9 \(spread(takeovers[false])), after SIGSTOP \(spread(takeovers[true])), "
              + "\(duplicates) duplicates, \(lost) lost, \(unapplied.count) webhooks unapplied, "
              + String(format: "%.0f s", (ContinuousClock.now - started).timeInterval))
    }
}
