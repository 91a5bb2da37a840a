import FakeGLPI
import Foundation
import HourLedgerUseCases
import HourLedgerApp
import HourLedgerCore
import HourLedgerGLPI
import HourLedgerStore
import HourLedgerMemoryStore
import HourLedgerHTTPClient
import HourLedgerHelpdeskKit
import Testing
@_exported import TestKit
@_exported import AppTestKit
import Hummingbird
import HummingbirdTesting

/// Where the recorded helpdesk fixtures live: ../shared/fixtures beside the repository.
enum Fixtures {
    static var root: URL {
        if let override = ProcessInfo.processInfo.environment["HOURLEDGER_FIXTURES"] { return URL(fileURLWithPath: override) }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("shared/fixtures")
    }

    static func glpiFiles() throws -> [URL] {
        let folder = root.appendingPathComponent("glpi")
        return try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "json" }.sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    static func glpi(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: root.appendingPathComponent("glpi/\(name)"))
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }
}

/// The fixture helpdesk: entities 1 "Customer A" and 2 "Customer B" under root, 3 "Customer A Paris" under 1,
/// groups 1 and 2, categories 1 and 2, as in shared/fixtures/glpi/README.md.
func makeFixtureState() -> FakeGLPIState {
    let state = FakeGLPIState()
    state.addEntity(1, name: "Customer A")
    state.addEntity(2, name: "Customer B")
    state.addEntity(3, name: "Customer A Paris", parent: 1)
    state.addGroup(1, name: "Tech Team Alpha")
    state.addGroup(2, name: "Tech Team Beta")
    state.addCategory(1, name: "Hardware support")
    state.addCategory(2, name: "Software support")
    return state
}

extension Fixtures {
    static func itopFiles(_ folder: String = "itop") throws -> [URL] {
        try FileManager.default.contentsOfDirectory(at: root.appendingPathComponent(folder), includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "json" }.sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    static func itop(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: root.appendingPathComponent("itop/\(name)"))
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }
}

/// A fake GLPI on loopback, a runtime on a ledger file in a scratch directory, synced once.
struct GLPIHarness {
    let server: FakeGLPIServer
    let runtime: Runtime
    let directory: TemporaryDirectory
    var glpi: FakeGLPIState { server.state }
    var contracts: [Contract] { runtime.configuration.contracts }

    static func start(contracts: String, environment: [String: String] = [:], extraHelpdesk: String = "", clock: WallClock = .system,
                      setup: (FakeGLPIState) -> Void = { _ in }) async throws -> GLPIHarness {
        let directory = TemporaryDirectory()
        let server = try await FakeGLPIServer(state: makeFixtureState())
        setup(server.state)
        let config = try ConfigLoader.parse(configYAML(url: server.url, database: directory.path + "/l.sqlite", contracts: contracts,
                                                       extraHelpdesk: extraHelpdesk), environment: environment)
        let runtime = try Runtime(configuration: config, clock: clock)
        try await runtime.engine.syncOnce()
        return GLPIHarness(server: server, runtime: runtime, directory: directory)
    }

    func stop() async { await server.stop() }
}

/// Runs blocking work (a child process, raw sockets) on a thread of its own, never on Swift's cooperative pool: with
/// two cores that pool has two threads, and the fake servers in this test process need them to answer.
func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try work() }) }.start()
    }
}

/// The use cases on a SQLite ledger (in memory, or the file at `path`), with the given contracts, as the daemon
/// builds them for GLPI.
func makeLedger(path: String? = nil, contracts: [Contract] = [], profile: HelpdeskProfile = GLPIConnector.glpiProfile,
                clock: WallClock = .system) throws -> Ledger {
    Ledger(repository: try path.map { try SQLiteLedger(path: $0) } ?? SQLiteLedger.inMemory(), profile: profile, book: ContractBook(contracts),
           clock: clock)
}

extension Ledger {
    /// The SQLite file behind the ledger, for tests that look at rows directly.
    var sqlite: SQLiteLedger { repository as! SQLiteLedger }
}

