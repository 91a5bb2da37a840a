import FakeGLPI
import Foundation
import HourLedgerUseCases
import HourLedgerApp
import HourLedgerCore
import HourLedgerStore
import Testing

/// The real daemon binary, killed with SIGKILL at several points of a write-back and started again: exactly one GLPI
/// task per entry in the end, and the balance right.
@Suite(.serialized) struct CrashSafetyTests {
    /// The daemon under test: the debug build, or `HOURLEDGER_BINARY` (the soak script runs a copy, so a rebuild
    /// during a long run cannot swap it).
    static var binary: String {
        if let path = ProcessInfo.processInfo.environment["HOURLEDGER_BINARY"] { return path }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/debug/hourledger").path
    }

    final class Daemon {
        let process: ChildProcess
        init(config: String, log: String) throws {
            process = try ChildProcess(CrashSafetyTests.binary, ["serve", "--config", config], output: .file(log))
        }
        /// SIGKILL: the kernel ends it at once, so waiting cannot hold anything up.
        func kill() {
            process.signal(SIGKILL)
            process.waitUntilExit()
        }
        /// SIGTERM and a wait off the cooperative pool: a draining daemon still talks to this process's fakes.
        func stop() async {
            process.terminate()
            let process = process
            _ = try? await offPool { process.waitUntilExit() }
        }
    }

    /// Waits (up to 30 s) for `condition`.
    func eventually(_ what: String, _ condition: () throws -> Bool) async throws {
        for _ in 0..<300 {
            if try condition() { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("timed out waiting for \(what)")
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: CrashSafetyTests.binary)))
    func killedDuringWriteBacksTheDaemonStillWritesEachTaskOnce() async throws {
        let directory = TemporaryDirectory()
        let server = try await FakeGLPIServer(state: makeFixtureState())
        defer { Task { await server.stop() } }
        let glpi = server.state
        glpi.addTicket(1, name: "Laptop", entity: 1, category: 1, groups: [1])
        let yaml = configYAML(url: server.url, database: directory.path + "/ledger.sqlite", contracts: """
              - { id: acme-2026, name: ACME, entity: 1, quota_hours: 20, starts: 2026-01-01, rounding: { increment_minutes: 15, mode: up } }
            """, extraHelpdesk: "  write_grace_seconds: 1")
        let configPath = directory.write("hourledger.yaml", yaml)
        let log = directory.path + "/daemon.log"
        let runtime = try Runtime(configuration: try ConfigLoader.parse(yaml))
        try await runtime.engine.syncOnce()
        let t0 = Date.utc("2026-11-21 09:00:00")
        func addEntry(_ seconds: Int) async throws -> WorkEntry {
            try await runtime.ledger.addEntry(NewEntry(ticketID: 1, technician: 7, startedAt: t0, rawSeconds: seconds, kind: .billable, note: "",
                                                      createdBy: "test"), now: Date())
        }
        func posts() -> Int { glpi.requests.filter { $0.method == "POST" }.count }
        var entries: [WorkEntry] = []
        var killPoints = 0

        // 1. Killed as it starts, before or during its first delivery.
        entries.append(try await addEntry(600))
        var daemon = try Daemon(config: configPath, log: log)
        try await Task.sleep(for: .milliseconds(150))
        daemon.kill()
        killPoints += 1

        // 2. Killed after GLPI created the task but before the answer arrived: GLPI has it, the daemon does not know.
        entries.append(try await addEntry(1200))
        glpi.setWriteDelays(after: .seconds(3))
        var before = posts()
        daemon = try Daemon(config: configPath, log: log)
        try await eventually("a POST") { posts() > before }
        daemon.kill()
        killPoints += 1

        // 3. Killed while the request waits at GLPI, before GLPI applied it (GLPI applies it after the client died).
        entries.append(try await addEntry(1800))
        glpi.setWriteDelays(before: .seconds(2))
        before = posts()
        daemon = try Daemon(config: configPath, log: log)
        try await eventually("a POST") { posts() > before }
        daemon.kill()
        killPoints += 1
        try await Task.sleep(for: .seconds(2.5))

        // 4. Killed right after a delivery completed.
        glpi.setWriteDelays()
        entries.append(try await addEntry(2400))
        daemon = try Daemon(config: configPath, log: log)
        try await eventually("a completed write-back") { try runtime.ledger.outboxStats(now: Date()).depth < 4 }
        daemon.kill()
        killPoints += 1

        // A last, undisturbed run drains the rest; the daemon's retries look each key up before writing.
        daemon = try Daemon(config: configPath, log: log)
        try await eventually("an empty outbox") { try runtime.ledger.outboxStats(now: Date()).depth == 0 }
        await daemon.stop()

        let tasks = glpi.tasks(ofTicket: 1)
        for entry in entries {
            #expect(tasks.filter { $0.content.contains(EntrySource.marker(entry.key)) }.count == 1, "entry \(entry.key)")
        }
        #expect(tasks.count == entries.count)
        #expect(posts() == entries.count, "a write was sent twice")
        #expect(tasks.map(\.seconds).sorted() == [900, 1800, 1800, 2700])
        let stored = try runtime.ledger.workEntries(ticketID: 1)
        #expect(stored.allSatisfy { $0.remoteTaskID != nil })
        #expect(try runtime.ledger.balance(of: runtime.configuration.contracts[0], at: t0)?.usedSeconds == 900 + 1800 + 1800 + 2700)
        #expect(try runtime.ledger.balanceDiscrepancies() == [])
        #expect(killPoints == 4)
        if tasks.count != entries.count, let text = try? String(contentsOfFile: log, encoding: .utf8) { print(text) }
    }
}
