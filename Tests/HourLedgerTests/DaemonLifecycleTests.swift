import FakeGLPI
import Foundation
import HourLedgerUseCases
import HourLedgerGLPI
import HourLedgerHelpdeskKit
import HourLedgerITop
import GRDB
import HourLedgerApp
import HourLedgerHTTPClient
import HourLedgerServer
import HourLedgerStore
import Logging
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A datagram socket standing in for systemd's `$NOTIFY_SOCKET`: it keeps every message the daemon sends.
final class NotifySocket: Sendable {
    let path: String
    private let descriptor: Int32

    init(path: String) throws {
        self.path = path
        descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EINVAL) }
        var timeout = timeval(tv_sec: 0, tv_usec: 20_000)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(descriptor) }

    /// Messages that arrived since the last call.
    func drain() -> [String] {
        var messages: [String] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(descriptor, &buffer, buffer.count, 0)
            if count <= 0 { return messages }
            messages.append(String(decoding: buffer[0..<count], as: UTF8.self))
        }
    }
}

@Suite(.serialized) struct DaemonLifecycleTests {
    static let webhookSecret = "rotate-me-0123456789abcdefghijABCDEFGHIJ"

    static func contracts(_ ids: [String]) -> String {
        ids.map { "  - {id: \($0), name: \($0), entity: 1, quota_hours: 10, period: monthly, starts: 2026-01-01, timezone: UTC}" }
            .joined(separator: "\n")
    }

    /// The real binary under a fake systemd: READY=1 once it listens, watchdog pings, SIGHUP reloads (and refuses a
    /// broken file), SIGTERM drains with STOPPING=1 and closes the store; logs stay one line each and hold no secret.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: CrashSafetyTests.binary)))
    func reloadThenDrainUnderSystemd() async throws {
        let directory = TemporaryDirectory()
        let server = try await FakeGLPIServer(state: makeFixtureState())
        defer { Task { await server.stop() } }
        server.state.addTicket(1, name: "Laptop", entity: 1, category: 1, groups: [1])
        let secretFile = directory.write("webhook-secret", Self.webhookSecret + "\n")
        func yaml(_ contracts: [String]) -> String {
            configYAML(url: server.url, database: directory.path + "/ledger.sqlite", contracts: Self.contracts(contracts),
                       extraHelpdesk: "  webhook_secret_file: \(secretFile)")
        }
        let configPath = directory.write("hourledger.yaml", yaml(["alpha"]))
        let token = try makeLedger(path: directory.path + "/ledger.sqlite").createToken(user: "ops", helpdeskUserID: 2, role: .manager)
        let notify = try NotifySocket(path: directory.path + "/notify.sock")
        let log = directory.path + "/daemon.log"
        FileManager.default.createFile(atPath: log, contents: nil)
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("HOURLEDGER_") && $0.key != "JOURNAL_STREAM" }
        environment["NOTIFY_SOCKET"] = notify.path
        environment["WATCHDOG_USEC"] = "1000000"
        let process = try ChildProcess(CrashSafetyTests.binary, ["serve", "--config", configPath], environment: environment, output: .file(log))
        defer { process.signal(SIGKILL) }

        var messages: [String] = []
        func waitFor(_ what: String, _ condition: () async throws -> Bool) async throws {
            for _ in 0..<150 {
                messages += notify.drain()
                if try await condition() { return }
                try await Task.sleep(for: .milliseconds(100))
            }
            Issue.record("timed out waiting for \(what); notify messages: \(messages)")
            throw CancellationError()
        }
        try await waitFor("READY=1") { messages.contains { $0.hasPrefix("READY=1") } }
        let ready = messages.first { $0.hasPrefix("READY=1") }!
        let port = try #require(ready.split(separator: ":").last.flatMap { Int($0) })
        let base = "http://127.0.0.1:\(port)"
        let http = CurlHTTPClient(configuration: HTTPClientConfiguration())
        func contractIDs() async throws -> [String] {
            let response = try await http.send(HTTPRequest(method: "GET", url: base + "/api/v1/contracts", headers: [("Authorization", "Bearer \(token)")]))
            let list = try JSONSerialization.jsonObject(with: Data(response.body)) as? [[String: Any]] ?? []
            return list.compactMap { $0["id"] as? String }.sorted()
        }
        #expect(try await contractIDs() == ["alpha"])

        // The watchdog is fed while the poller loop runs (interval 1 s: pings every 0.5 s).
        try await waitFor("three WATCHDOG=1") { messages.filter { $0 == "WATCHDOG=1" }.count >= 3 }

        // systemctl reload: a new contract takes effect without a restart.
        _ = directory.write("hourledger.yaml", yaml(["alpha", "beta"]))
        process.signal(SIGHUP)
        try await waitFor("beta after reload") { try await contractIDs() == ["alpha", "beta"] }
        try await waitFor("RELOADING=1 then READY=1") {
            let reloading = messages.lastIndex { $0.hasPrefix("RELOADING=1\nMONOTONIC_USEC=") }
            return reloading.map { index in messages[index...].contains { $0 == "READY=1" } } ?? false
        }

        // A broken file is refused whole; the running config stays.
        _ = directory.write("hourledger.yaml", yaml(["alpha", "beta", "gamma"]).replacingOccurrences(of: "quota_hours: 10", with: "quota_hours: ten"))
        process.signal(SIGHUP)
        try await waitFor("the refusal in the log") { (try String(contentsOfFile: log, encoding: .utf8)).contains("reload refused") }
        #expect(try await contractIDs() == ["alpha", "beta"])
        #expect(process.isRunning)

        // A webhook accepted just before SIGTERM is on disk after the drain.
        let body = Array("{\"item\": {\"id\": 9, \"tickets_id\": 1}, \"event\": \"new\"}".utf8)
        let stamp = String(Int(Date().timeIntervalSince1970))
        let accepted = try await http.send(HTTPRequest(method: "POST", url: base + "/webhooks/glpi", headers: [
            ("X-GLPI-signature", GLPISignature.sign(body: body, timestamp: stamp, secret: Self.webhookSecret)), ("X-GLPI-timestamp", stamp),
        ], body: body))
        #expect(accepted.status == 200)
        let metrics = try await http.send(HTTPRequest(method: "GET", url: base + "/metrics"))
        let scraped = String(decoding: metrics.body, as: UTF8.self)
        #expect(scraped.contains("hourledger_webhooks_total{helpdesk=\"glpi\",outcome=\"accepted\"} 1\n"))
        #expect(scraped.contains("hourledger_polls_total{outcome=\"ok\"}"))
        #expect(scraped.contains("hourledger_helpdesk_requests_total{helpdesk=\"glpi\",outcome=\"ok\"}"))
        #expect(scraped.contains("hourledger_contract_available_seconds{contract=\"beta\"} 36000.0\n"))

        process.signal(SIGTERM)
        try await waitFor("exit") { !process.isRunning }
        messages += notify.drain()
        #expect(process.exitedNormally && process.exitCode == 0)
        #expect(messages.contains { $0.hasPrefix("STOPPING=1") })
        let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
        #expect(lines.last?.contains("stopped: store closed") == true)
        // The store was closed cleanly: the WAL was folded back into the database file.
        let wal = try? FileManager.default.attributesOfItem(atPath: directory.path + "/ledger.sqlite-wal")[.size] as? Int
        #expect((wal ?? 0) == 0)
        // The accepted delivery is on disk (the poller may already have served its hint, which is fine).
        let reopened = try makeLedger(path: directory.path + "/ledger.sqlite")
        let deliveries = try await reopened.sqlite.writer.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM webhook_delivery") }
        #expect(deliveries == 1)

        // Every line is one record with a timestamp and a level, and no secret appears anywhere.
        let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
        for line in lines {
            let fields = line.split(separator: " ", maxSplits: 2)
            #expect(fields.count == 3 && fields[0].contains("T") && levels.contains(String(fields[1])), "\(line)")
        }
        for secret in [Self.webhookSecret, "fixture-app-token", "fixture-user-token"] {
            #expect(!lines.contains { $0.contains(secret) }, "\(secret) leaked")
        }
    }

    /// A poller stuck past the watchdog interval stops the pings, so systemd restarts the daemon; a live one keeps them.
    @Test func theWatchdogIsFedOnlyWhileThePollerIsAlive() async throws {
        let directory = TemporaryDirectory()
        let notify = try NotifySocket(path: directory.path + "/notify.sock")
        let heartbeat = Heartbeat()
        let watchdog = WatchdogService(notifier: SystemdNotifier(environment: ["NOTIFY_SOCKET": notify.path]), interval: .milliseconds(400),
                                       heartbeat: heartbeat, logger: Logger(label: "test")) { "polling" }
        let task = Task { try await watchdog.run() }
        defer { task.cancel() }
        // Alive: the heartbeat is fresh, pings flow, and the status line is sent once.
        // (Up to 3 s of beats, so two cores shared with the rest of the suite still see two pings.)
        var alive: [String] = []
        for _ in 0..<30 where alive.filter({ $0 == "WATCHDOG=1" }).count < 2 {
            heartbeat.beat()
            try await Task.sleep(for: .milliseconds(100))
            alive += notify.drain()
        }
        #expect(alive.filter { $0 == "WATCHDOG=1" }.count >= 2)
        #expect(alive.filter { $0 == "STATUS=polling" }.count == 1)
        // Stuck: no beat for longer than the interval, no ping.
        try await Task.sleep(for: .milliseconds(500))
        _ = notify.drain()
        try await Task.sleep(for: .milliseconds(600))
        #expect(!notify.drain().contains("WATCHDOG=1"))
    }

    @Test func logLinesAreOneLineAndRedacted() {
        let written = Mutex<[String]>([])
        LogRedactor.shared.set(["s3cret-token-value"])
        defer { LogRedactor.shared.set([]) }
        var handler = JournalLogHandler(label: "hourledger", journal: true) { line in written.withLock { $0.append(line) } }
        handler.logLevel = .debug
        var logger = Logger(label: "hourledger") { _ in handler }
        logger.logLevel = .debug
        logger.warning("helpdesk said:\nInvalid token s3cret-token-value", metadata: ["url": "https://glpi/?t=s3cret-token-value"])
        logger.error("plain")
        let lines = written.withLock { $0 }
        #expect(lines == [
            "<4>warning hourledger: helpdesk said:\\nInvalid token [redacted] url=\"https://glpi/?t=[redacted]\"\n",
            "<3>error hourledger: plain\n",
        ])
    }
}
