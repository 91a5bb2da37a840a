import FakeITop
import Foundation
import HourLedgerApp
import HourLedgerHTTPClient
import HourLedgerUseCases

/// An iTop first sync against the fake iTop in a second process, and, in the same run, the same requests replayed
/// one after the other by bare libcurl: the ratio is what HourLedger adds to the wire.
enum ITopBench {
    static func run(tickets: Int) async throws {
        print("starting fake iTop with \(tickets) tickets ...")
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        child.arguments = ["--serve-itop", "--tickets", "\(tickets)"]
        let pipe = Pipe()
        child.standardOutput = pipe
        child.standardInput = Pipe()
        try child.run()
        defer { child.terminate() }
        guard let line = try Bench.readLine(pipe.fileHandleForReading), line.hasPrefix("PORT "), let port = Int(line.dropFirst(5)) else {
            print("the fake iTop did not start"); exit(1)
        }
        let directory = NSTemporaryDirectory() + "hourledger-itop-bench-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let contracts = (1...10).map { org in
            "  - { id: customer-\(org), org: \(org), quota_hours: 400, starts: 2026-01-01, timezone: Europe/Paris }"
        }.joined(separator: "\n")
        let yaml = """
        helpdesk: { kind: itop, url: "http://127.0.0.1:\(port)", username: hours-daemon, password: "Daemon-Passw0rd!", timezone: Europe/Paris }
        database: { path: "\(directory)/ledger.sqlite" }
        log: { level: warning }
        contracts:
        \(contracts)
        """
        let recorder = RecordingHTTP(CurlHTTPClient(), methods: ["POST"])
        let runtime = try Runtime(configuration: try ConfigLoader.parse(yaml), http: recorder)
        let report = try await runtime.engine.syncOnce()
        let counts = try runtime.ledger.counts()
        let replayStart = ContinuousClock.now
        var bytes = 0
        for request in recorder.recorded { bytes += try await recorder.inner.send(request).body.count }
        let replay = Bench.seconds(ContinuousClock.now - replayStart)
        await runtime.connector.close()
        print("")
        print(String(format: "bare libcurl replay   : %8.2f s  %7d requests  %9.1f MB", replay, recorder.recorded.count, Double(bytes) / 1e6))
        print(String(format: "first sync            : %8.2f s  %7d requests  (%d tickets)", report.seconds, report.requests, counts.tickets))
        print(String(format: "ratio sync / replay   : %8.2f", report.seconds / replay))
        print(String(format: "peak RSS (daemon side): %8.1f MB", Double(Bench.peakRSSKilobytes()) / 1024))
    }

    /// Organisations 1-10 and `count` tickets, one in five an Incident, spread over teams, services and a month.
    static func serve(tickets count: Int) async throws {
        let state = FakeITopState()
        state.logRequests = false
        for org in 1...10 { state.addOrganization(org, name: "Customer \(org)", code: "C\(org)") }
        for id in 1...count {
            let stamp = String(format: "2026-11-%02d %02d:%02d:%02d", 1 + id % 20, id % 24, id % 60, (id / 60) % 60)
            state.insert(id: id, itemClass: id % 5 == 0 ? "Incident" : "UserRequest", ref: String(format: "R-%06d", id), title: "Ticket \(id)",
                         status: "assigned", org: id % 10 + 1, team: id % 20 + 1, agent: id % 7 + 1, service: id % 4 + 1, subcategory: id % 3 + 1,
                         lastUpdate: stamp)
        }
        let server = try await FakeITopServer(state: state)
        FileHandle.standardOutput.write(Data("PORT \(server.port)\n".utf8))
        while FileHandle.standardInput.availableData.count > 0 {}
        await server.stop()
    }
}
