import FakeGLPI
import FakeITop
import FaultProxy
import Foundation
import HourLedgerUseCases
import HourLedgerApp
import HourLedgerCore
import HourLedgerHTTPClient
import HourLedgerStore
import GRDB
import TestKit
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The fault proxy does what a real network and a busy helpdesk do, seen through the real libcurl client.
@Suite struct FaultProxyTests {
    func session(_ server: FakeGLPIServer, via port: Int) async throws -> String {
        let login = try await CurlHTTPClient().send(HTTPRequest(url: "http://127.0.0.1:\(port)/apirest.php/initSession",
                                                                headers: [("App-Token", server.state.appToken),
                                                                          ("Authorization", "user_token \(server.state.userToken)")]))
        return String(decoding: login.body, as: UTF8.self).split(separator: "\"").dropFirst(3).first.map(String.init) ?? ""
    }

    func addTask(_ server: FakeGLPIServer, via port: Int, token: String, timeout: Duration = .seconds(5)) async throws -> HTTPResponse {
        var configuration = HTTPClientConfiguration()
        configuration.totalTimeout = timeout
        return try await CurlHTTPClient(configuration: configuration).send(HTTPRequest(
            method: "POST", url: "http://127.0.0.1:\(port)/apirest.php/TicketTask",
            headers: [("App-Token", server.state.appToken), ("Session-Token", token), ("Content-Type", "application/json")],
            body: Array(#"{"input":{"tickets_id":1,"actiontime":60,"content":"x"}}"#.utf8)))
    }

    @Test func heldWritesLandAfterTheirClientGaveUpAndCutAnswersStillApplied() async throws {
        let server = try await FakeGLPIServer(state: makeFixtureState())
        defer { Task { await server.stop() } }
        server.state.addTicket(1, name: "Laptop", entity: 1, category: 1, groups: [1])
        let plan = Locked<FaultProxy.Fault>(.pass)
        let proxy = try FaultProxy(upstreamPort: server.port) { request in request.method == "POST" ? plan.withLock { $0 } : .pass }
        defer { proxy.stop() }
        let token = try await session(server, via: proxy.port)
        #expect(token.count == 26)

        // Held 1.5 s: the client gives up after 0.5 s, and the write still lands, after it.
        plan.withLock { $0 = .hold(.milliseconds(1500)) }
        let started = ContinuousClock.now
        await #expect(throws: HTTPClientError.self) { _ = try await addTask(server, via: proxy.port, token: token, timeout: .milliseconds(500)) }
        #expect(server.state.tasks(ofTicket: 1).isEmpty)
        // It lands once the hold is over; on a loaded machine the proxy may forward it a little later.
        try await Task.sleep(for: .milliseconds(1500))
        for _ in 0..<50 where server.state.tasks(ofTicket: 1).isEmpty { try await Task.sleep(for: .milliseconds(100)) }
        #expect(server.state.tasks(ofTicket: 1).count == 1)
        #expect(ContinuousClock.now - started >= .milliseconds(1500))

        // The answer is dropped, or cut in the middle: the client sees a transport error, the server has the task.
        for fault in [FaultProxy.Fault.dropAnswer, .resetMidBody] {
            plan.withLock { $0 = fault }
            let before = server.state.tasks(ofTicket: 1).count
            await #expect(throws: HTTPClientError.self) { _ = try await addTask(server, via: proxy.port, token: token) }
            #expect(server.state.tasks(ofTicket: 1).count == before + 1, "\(fault)")
        }
        plan.withLock { $0 = .pass }
        #expect(try await addTask(server, via: proxy.port, token: token).status == 201)
        #expect(proxy.faultsApplied["hold"] == 1 && proxy.faultsApplied["drop_answer"] == 1 && proxy.faultsApplied["reset_mid_body"] == 1)
    }
}

/// The real daemon, killed with SIGKILL at random moments while its write-backs go through the fault proxy (held,
/// dropped and cut writes), with entries added, edited and deleted between runs. Every entry must end in the helpdesk
/// exactly once: no duplicate, nothing lost.
///
/// `HOURLEDGER_SOAK_KILLS` sets the kills per helpdesk (CI runs the default 6; `Tests/soak.sh` runs 200) and
/// `HOURLEDGER_SOAK_SEED` the seed.
@Suite(.serialized) struct CrashSoakTests {
    static var kills: Int { ProcessInfo.processInfo.environment["HOURLEDGER_SOAK_KILLS"].flatMap { Int($0) } ?? 6 }
    static var seed: UInt64 { ProcessInfo.processInfo.environment["HOURLEDGER_SOAK_SEED"].flatMap { UInt64($0) } ?? 20261201 }
    /// The daemon's `write_grace_seconds`: with 0 (and a 1 s timeout) the fence is shorter than the proxy's holds, and
    /// the soak must then find duplicates; that is how to check that it can.
    static var grace: Int { ProcessInfo.processInfo.environment["HOURLEDGER_SOAK_GRACE"].flatMap { Int($0) } ?? 2 }
    static var timeout: Int { grace == 0 ? 1 : 2 }
    /// The longest a write is held before it is forwarded.
    static let maxHoldMilliseconds = 1500

    /// What one soak run measured.
    struct Figures: CustomStringConvertible {
        var helpdesk: String
        var kills = 0
        var entries = 0
        var edits = 0
        var deletions = 0
        var writes = 0
        var faults: [String: Int] = [:]
        var duplicates = 0
        var lost = 0
        var seconds = 0.0
        var description: String {
            "soak \(helpdesk): \(kills) kills, \(entries) entries (\(edits) edits, \(deletions) deletions), \(writes) helpdesk writes, "
                + "faults \(faults.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")), "
                + "\(duplicates) duplicates, \(lost) lost, \(String(format: "%.0f", seconds)) s"
        }
    }

    /// The plan for writes: a third pass, the rest are held up to 1.5 s, dropped after the server applied them, or cut.
    static func plan(_ rng: Locked<SplitMix64>, calm: Locked<Bool>, writes: Locked<[String: Int]>)
        -> @Sendable (FaultProxy.Request) -> FaultProxy.Fault
    {
        { request in
            let write = (request.method != "GET" && request.target.contains("TicketTask")) || request.body.contains("core%2Fupdate")
            guard write else { return .pass }
            let fault: FaultProxy.Fault
            if calm.withLock({ $0 }) {
                fault = .pass
            } else {
                let roll = rng.withLock { Int.random(in: 0..<100, using: &$0) }
                let hold = Duration.milliseconds(rng.withLock { Int.random(in: 200...maxHoldMilliseconds, using: &$0) })
                switch roll {
                case 0..<35: fault = .pass
                case 35..<60: fault = .hold(hold)
                case 60..<75: fault = .dropAnswer
                case 75..<88: fault = .resetMidBody
                default: fault = .holdThenDrop(hold)
                }
            }
            writes.withLock { $0[fault.description, default: 0] += 1 }
            return fault
        }
    }

    /// Runs the daemon `kills` times, each killed at a random moment, then once undisturbed until its outbox is empty.
    static func soak(helpdesk: String, config: String, directory: TemporaryDirectory, writes: Locked<[String: Int]>, calm: Locked<Bool>, tickets: [Int],
                     contracts: [Contract], technician: Int) async throws -> (Figures, [String: Int]) {
        var rng = SplitMix64(seed: seed)
        var figures = Figures(helpdesk: helpdesk)
        let started = ContinuousClock.now
        let store = try makeLedger(path: directory.path + "/ledger.sqlite")
        var live: [String: Int] = [:]  // entry key → raw seconds
        let t0 = Date().addingTimeInterval(-86_400)
        let log = directory.path + "/daemon.log"
        for cycle in 0..<kills {
            // Between runs, people keep working: new entries, corrections, deletions.
            for _ in 0..<Int.random(in: 1...2, using: &rng) {
                let seconds = Int.random(in: 60...3600, using: &rng)
                let entry = try await store.addEntry(NewEntry(ticketID: tickets.randomElement(using: &rng)!, technician: technician,
                                                              startedAt: t0.addingTimeInterval(Double(figures.entries * 60)), rawSeconds: seconds,
                                                              kind: .billable, note: "soak \(cycle)", createdBy: "soak"), now: Date())
                live[entry.key] = seconds
                figures.entries += 1
            }
            if cycle % 3 == 1, let key = live.keys.sorted().randomElement(using: &rng) {
                let seconds = Int.random(in: 60...3600, using: &rng)
                _ = try await store.editEntry(key: key, change: EntryChange(rawSeconds: seconds), reason: "soak edit", actor: "soak",
                                              actingAs: nil, now: Date())
                live[key] = seconds
                figures.edits += 1
            }
            if cycle % 5 == 3, let key = live.keys.sorted().randomElement(using: &rng) {
                try await store.deleteEntry(key: key, reason: "soak delete", actor: "soak", actingAs: nil, now: Date())
                live[key] = nil
                figures.deletions += 1
            }
            let daemon = try CrashSafetyTests.Daemon(config: config, log: log)
            // Mostly short runs, now and then one long enough for fences to pass and the backlog to drain.
            let run = cycle % 8 == 7 ? Double.random(in: 4...7, using: &rng) : Double.random(in: 0.2...2.5, using: &rng)
            try await Task.sleep(for: .milliseconds(Int(run * 1000)))
            daemon.kill()
            figures.kills += 1
        }
        // The faults stop; one last run delivers what is left, fences included.
        calm.withLock { $0 = true }
        let daemon = try CrashSafetyTests.Daemon(config: config, log: log)
        for _ in 0..<1200 {
            if try store.outboxStats(now: Date()).depth == 0 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        await daemon.stop()
        let stats = try store.outboxStats(now: Date())
        #expect(stats.depth == 0, "\(helpdesk): \(stats)")
        if stats.depth != 0, let text = try? String(contentsOfFile: log, encoding: .utf8) { print(text.suffix(6000)) }
        figures.faults = writes.withLock { $0 }
        figures.writes = figures.faults.values.reduce(0, +)
        figures.seconds = Double((ContinuousClock.now - started).components.seconds)
        return (figures, live)
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: CrashSafetyTests.binary)))
    func killedAtRandomBehindAFaultyNetworkGLPIGetsEachTaskOnce() async throws {
        let directory = TemporaryDirectory()
        let server = try await FakeGLPIServer(state: makeFixtureState())
        defer { Task { await server.stop() } }
        let glpi = server.state
        for id in 1...3 { glpi.addTicket(id, name: "Ticket \(id)", entity: 1, category: 1, groups: [1]) }
        let rng = Locked(SplitMix64(seed: Self.seed))
        let calm = Locked(false)
        let writes = Locked<[String: Int]>([:])
        let proxy = try FaultProxy(upstreamPort: server.port, decide: Self.plan(rng, calm: calm, writes: writes))
        defer { proxy.stop() }
        let contracts = "  - { id: acme, name: ACME, entity: 1, quota_hours: 100, starts: 2026-01-01, rounding: { increment_minutes: 15, mode: up } }"
        let config = directory.write("hourledger.yaml", configYAML(url: "http://127.0.0.1:\(proxy.port)/apirest.php",
                                                                  database: directory.path + "/ledger.sqlite", contracts: contracts,
                                                                  extraHelpdesk: "  write_grace_seconds: \(Self.grace)")
            .replacingOccurrences(of: "timeout_seconds: 5", with: "timeout_seconds: \(Self.timeout)")
            .replacingOccurrences(of: "poll_interval_seconds: 60", with: "poll_interval_seconds: 5"))
        // The tickets are known before the first kill.
        let direct = try Runtime(configuration: try ConfigLoader.parse(configYAML(url: server.url, database: directory.path + "/ledger.sqlite",
                                                                                   contracts: contracts)))
        try await direct.engine.syncOnce()
        try direct.repository.close()

        var (figures, live) = try await Self.soak(helpdesk: "glpi", config: config, directory: directory, writes: writes, calm: calm,
                                                  tickets: [1, 2, 3], contracts: direct.configuration.contracts, technician: 7)
        let store = try makeLedger(path: directory.path + "/ledger.sqlite")
        let entries = try store.workEntries()
        #expect(Set(entries.map(\.key)) == Set(live.keys))
        let tasks = (1...3).flatMap { glpi.tasks(ofTicket: $0) }
        for entry in entries {
            let mine = tasks.filter { $0.content.contains(EntrySource.marker(entry.key)) }
            if mine.count > 1 { figures.duplicates += mine.count - 1 }
            if mine.isEmpty { figures.lost += 1 }
            #expect(mine.map(\.seconds) == [entry.billedSeconds], "entry \(entry.key)")
            #expect(entry.rawSeconds == live[entry.key])
        }
        // Deleted entries left no task behind, and nothing else was written.
        #expect(tasks.count == entries.count, "\(tasks.count) tasks for \(entries.count) entries")
        // Killed at random, the books still verify: each change was chained in the transaction that made it.
        let books = try store.verifyBooks()
        #expect(books.problems == [] && books.records > 0, "\(books.problems)")
        print(figures, "books: \(books.records) records, \(books.entries) entries, verified")
        #expect(figures.duplicates == 0 && figures.lost == 0)
        #expect(figures.kills == Self.kills)
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: CrashSafetyTests.binary)))
    func killedAtRandomBehindAFaultyNetworkITopGetsEachNoteOnce() async throws {
        let directory = TemporaryDirectory()
        let state = try makeITopFixtureState()
        let server = try await FakeITopServer(state: state)
        defer { Task { await server.stop() } }
        let rng = Locked(SplitMix64(seed: Self.seed ^ 0xA5A5))
        let calm = Locked(false)
        let writes = Locked<[String: Int]>([:])
        let proxy = try FaultProxy(upstreamPort: server.port, decide: Self.plan(rng, calm: calm, writes: writes))
        defer { proxy.stop() }
        let config = directory.write("hourledger.yaml", itopConfigYAML(url: "http://127.0.0.1:\(proxy.port)", database: directory.path + "/ledger.sqlite",
                                                                      contracts: ITopEndToEndTests.contracts,
                                                                      extraHelpdesk: "  write_grace_seconds: \(Self.grace)\n  poll_interval_seconds: 5")
            .replacingOccurrences(of: "timeout_seconds: 5", with: "timeout_seconds: \(Self.timeout)"))
        let direct = try Runtime(configuration: try ConfigLoader.parse(itopConfigYAML(url: server.url, database: directory.path + "/ledger.sqlite",
                                                                                       contracts: ITopEndToEndTests.contracts)))
        try await direct.engine.syncOnce()
        try direct.repository.close()

        var (figures, live) = try await Self.soak(helpdesk: "itop", config: config, directory: directory, writes: writes, calm: calm,
                                                  tickets: [1, 2, 5], contracts: direct.configuration.contracts, technician: 2)
        let store = try makeLedger(path: directory.path + "/ledger.sqlite")
        #expect(Set(try store.workEntries().map(\.key)) == Set(live.keys))
        let notes = [1, 2, 5].flatMap { state.privateLog(of: $0) }.map(\.message)
        // Every record that reached iTop is there once; every live entry has its note; a cancelled one has none.
        let records = try store.sqlite.writer.read { db in
            try Row.fetchAll(db, sql: "SELECT id, entry_key, action, resolution FROM outbox ORDER BY id")
        }
        var expected = 0
        for record in records {
            let key: String = record["entry_key"]
            let action: String = record["action"]
            let marker = action == "create" ? EntrySource.marker(key) : EntrySource.marker("\(key) \(action) \(record["id"] as Int64)")
            let found = notes.filter { $0.hasPrefix(marker) }.count
            let resolution: String? = record["resolution"]
            if resolution == "cancelled" {
                #expect(found == 0, "\(marker) was cancelled but is in iTop")
            } else {
                expected += 1
                if found > 1 { figures.duplicates += found - 1 }
                if found == 0 { figures.lost += 1 }
                #expect(found == 1, "\(marker): \(found) notes, resolution \(resolution ?? "-")")
            }
        }
        for key in live.keys { #expect(notes.filter { $0.hasPrefix(EntrySource.marker(key)) }.count == 1, "entry \(key)") }
        #expect(notes.count == expected, "\(notes.count) notes for \(expected) delivered records")
        let books = try store.verifyBooks()
        #expect(books.problems == [] && books.records > 0, "\(books.problems)")
        print(figures, "books: \(books.records) records, \(books.entries) entries, verified")
        #expect(figures.duplicates == 0 && figures.lost == 0)
    }
}

/// libcurl re-sends a request whose reused connection died before any byte of the answer came back. For a write that
/// already ran on the server, that is a second write: writes must never ride a reused connection.
@Suite struct NoSilentResendTests {
    @Test func aWriteWhoseAnswerIsLostIsSentOnceEvenOnAReusedConnection() async throws {
        let server = try await FakeGLPIServer(state: makeFixtureState())
        defer { Task { await server.stop() } }
        server.state.addTicket(1, name: "Laptop", entity: 1, category: 1, groups: [1])
        let plan = Locked<FaultProxy.Fault>(.pass)
        let proxy = try FaultProxy(upstreamPort: server.port) { request in request.method == "POST" ? plan.withLock { $0 } : .pass }
        defer { proxy.stop() }
        let client = CurlHTTPClient()
        let base = "http://127.0.0.1:\(proxy.port)/apirest.php"
        let token = try await FaultProxyTests().session(server, via: proxy.port)
        let headers = [("App-Token", server.state.appToken), ("Session-Token", token), ("Content-Type", "application/json")]
        // Warm the connection, so the next request would reuse it.
        _ = try await client.send(HTTPRequest(url: base + "/Ticket/1", headers: headers))
        plan.withLock { $0 = .dropAnswer }
        await #expect(throws: HTTPClientError.self) {
            _ = try await client.send(HTTPRequest(method: "POST", url: base + "/TicketTask", headers: headers,
                                                  body: Array(#"{"input":{"tickets_id":1,"actiontime":60,"content":"once"}}"#.utf8)))
        }
        #expect(server.state.tasks(ofTicket: 1).count == 1)
        #expect(server.state.requests.filter { $0.method == "POST" }.count == 1)
    }
}
