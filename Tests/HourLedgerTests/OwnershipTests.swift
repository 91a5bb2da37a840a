import FakeGLPI
import FaultProxy
import Foundation
import HourLedgerUseCases
import HourLedgerApp
import HourLedgerCore
import HourLedgerStore
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// One process owns a ledger: a second daemon on the same file is refused, naming the first, and a daemon that
/// cannot listen writes nothing.
@Suite(.serialized) struct OwnershipTests {
    let contracts = "  - { id: acme, name: ACME, entity: 1, quota_hours: 20, starts: 2026-01-01 }"

    func prepared() async throws -> (FakeGLPIServer, TemporaryDirectory, String) {
        let directory = TemporaryDirectory()
        let server = try await FakeGLPIServer(state: makeFixtureState())
        server.state.addTicket(1, name: "Laptop", entity: 1, category: 1, groups: [1])
        let yaml = configYAML(url: server.url, database: directory.path + "/ledger.sqlite", contracts: contracts)
        // The ledger knows the ticket and holds one write-back waiting to be delivered.
        let runtime = try Runtime(configuration: try ConfigLoader.parse(yaml))
        try await runtime.engine.syncOnce()
        _ = try await runtime.ledger.addEntry(NewEntry(ticketID: 1, technician: 7, startedAt: Date.utc("2026-11-21 09:00:00"), rawSeconds: 600,
                                                      kind: .billable, note: "", createdBy: "test"), now: Date())
        try runtime.repository.close()
        server.state.clearRequests()
        return (server, directory, yaml)
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: CrashSafetyTests.binary)))
    func aSecondDaemonOnTheSameLedgerIsRefusedAndNamesTheFirst() async throws {
        let (server, directory, yaml) = try await prepared()
        defer { Task { await server.stop() } }
        let config = directory.write("hourledger.yaml", yaml)
        let log = directory.path + "/first.log"
        let first = try CrashSafetyTests.Daemon(config: config, log: log)
        defer { if first.process.isRunning { first.process.signal(SIGKILL) } }
        for _ in 0..<100 where !((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("ready") {
            try await Task.sleep(for: .milliseconds(100))
        }
        let second = try await CLI.run(["serve", "--config", config])
        #expect(second.exitedNormally && second.status != 0)
        #expect(second.output.contains("is in use by hourledger serve (pid \(first.process.pid)"), "\(second.output)")
        let sync = try await CLI.run(["sync", "--once", "--config", config])
        #expect(sync.exitedNormally && sync.status != 0 && sync.output.contains("is in use by hourledger serve"), "\(sync.output)")
        // Only the first daemon talks to GLPI, and the write-back is made once.
        for _ in 0..<100 where server.state.tasks(ofTicket: 1).isEmpty { try await Task.sleep(for: .milliseconds(100)) }
        #expect(server.state.requests.filter { $0.target.hasSuffix("/initSession") }.count == 1)
        #expect(server.state.tasks(ofTicket: 1).count == 1)

        // Once the first is gone (even killed), the ledger is free again.
        first.process.signal(SIGKILL)
        first.process.waitUntilExit()
        let again = try CrashSafetyTests.Daemon(config: config, log: directory.path + "/again.log")
        try await Task.sleep(for: .seconds(1))
        #expect(again.process.isRunning)
        await again.stop()
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: CrashSafetyTests.binary)))
    func aDaemonWhosePortIsTakenSyncsAndWritesNothing() async throws {
        let (server, directory, yaml) = try await prepared()
        defer { Task { await server.stop() } }
        // Something else listens on the port.
        let squatter = try FaultProxy(upstreamPort: 9) { _ in .pass }
        defer { squatter.stop() }
        let config = directory.write("hourledger.yaml", yaml.replacingOccurrences(of: "port: 0", with: "port: \(squatter.port)"))
        let run = try await CLI.run(["serve", "--config", config])
        #expect(run.exitedNormally && run.status != 0)
        #expect(run.output.contains("cannot listen on 127.0.0.1:\(squatter.port): the address is in use by another process; nothing was synced"),
                "\(run.output)")
        #expect(server.state.requests.isEmpty, "\(server.state.requests.map(\.target))")
        let store = try makeLedger(path: directory.path + "/ledger.sqlite")
        let item = try #require(try store.outboxItems().first)
        #expect(item.attempts == 0 && item.inDoubtSince == nil)
    }
}
