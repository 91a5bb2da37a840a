import FakeGLPI
import Foundation
import HourLedgerUseCases
import HourLedgerApp
import HourLedgerHTTPClient
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A plain TCP client for loopback, to hold connections open the way an idle or hostile client does.
enum RawSocket {
    static func connect(port: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let done = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard done == 0 else { close(fd); return nil }
        return fd
    }

    /// What arrives within `timeout` (empty on a timeout); nil when the server closed the connection.
    static func read(_ fd: Int32, timeout: Double) -> String? {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, Int32(timeout * 1000)) > 0 else { return "" }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = recv(fd, &buffer, buffer.count, 0)
        return count <= 0 ? nil : String(decoding: buffer[0..<count], as: UTF8.self)
    }

    static func send(_ fd: Int32, _ text: String) { _ = text.withCString { Glibc.send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) } }

    /// Runs blocking socket work on a thread of its own, never on Swift's cooperative pool, where it would starve the
    /// fake servers that share this test process.
    static func blocking<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        try! await offPool(work)
    }
}

/// Idle and slow connections cannot exhaust the daemon: a cap answers 503 beyond it, and a connection that does not
/// send its request head in time is closed.
@Suite(.serialized) struct ConnectionTests {
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: CrashSafetyTests.binary)))
    func fifteenHundredIdleConnectionsOnAThousandDescriptorsMeetTheCapNotACrash() async throws {
        let directory = TemporaryDirectory()
        let server = try await FakeGLPIServer(state: makeFixtureState())
        defer { Task { await server.stop() } }
        let yaml = configYAML(url: server.url, database: directory.path + "/ledger.sqlite",
                              contracts: "  - { id: acme, name: ACME, entity: 1, quota_hours: 20, starts: 2026-01-01 }")
            .replacingOccurrences(of: "  port: 0", with: "  port: 0\n  idle_timeout_seconds: 6\n  max_connections: 100")
        let config = directory.write("hourledger.yaml", yaml)
        let log = directory.path + "/daemon.log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        // systemd's default soft limit: 1024 descriptors.
        let process = try ChildProcess("/bin/sh", ["-c", "ulimit -n 1024 && exec \"$0\" serve --config \"$1\"", CrashSafetyTests.binary, config],
                                       output: .file(log))
        defer { if process.isRunning { process.terminate(); process.waitUntilExit() } }
        var port = 0
        for _ in 0..<100 {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.contains("ready") && $0.contains("listen=") }),
               let value = line.split(separator: ":").last.flatMap({ Int($0.prefix { $0.isNumber }) }) {
                port = value
                break
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        try #require(port > 0)
        let listening = port

        let sockets = await RawSocket.blocking { (0..<1500).compactMap { _ in RawSocket.connect(port: listening) } }
        defer { for fd in sockets { close(fd) } }
        #expect(sockets.count == 1500)
        // At most a hundred are held; every one beyond the cap that reached the daemon is told so and closed, its
        // descriptor freed at once. (A few of a flood like this never make it past the kernel's accept queue.)
        let (refused, held) = await RawSocket.blocking { () -> (Int, Int) in
            var refused = 0, held = 0
            for fd in sockets {
                switch RawSocket.read(fd, timeout: 0.5) {
                case let text? where text.hasPrefix("HTTP/1.1 503 Service Unavailable"): refused += 1
                case ""?: held += 1
                default: break
                }
            }
            return (refused, held)
        }
        #expect(held <= 100 && refused >= 1300, "\(held) held, \(refused) refused")
        #expect(process.isRunning)

        // The idle ones are closed once the request-head timeout passes; the daemon answers again.
        try await Task.sleep(for: .seconds(7))
        let open = await RawSocket.blocking { sockets.filter { RawSocket.read($0, timeout: 0.01) == "" }.count }
        #expect(open == 0, "\(open) idle connections still open")
        let health = try await CurlHTTPClient().send(HTTPRequest(url: "http://127.0.0.1:\(port)/healthz"))
        #expect(health.status == 200)

        // A client sending its headers a byte at a time is cut off too.
        let cut = await RawSocket.blocking { () -> Bool in
            guard let slow = RawSocket.connect(port: listening) else { return false }
            defer { close(slow) }
            for byte in ("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + String(repeating: "a", count: 60)).map(String.init) {
                RawSocket.send(slow, byte)
                if RawSocket.read(slow, timeout: 0.25) == nil { return true }
            }
            return false
        }
        #expect(cut)
        let metrics = try await CurlHTTPClient().send(HTTPRequest(url: "http://127.0.0.1:\(port)/metrics"))
        let body = String(decoding: metrics.body, as: UTF8.self)
        #expect(body.contains("hourledger_http_connections_refused_total \(refused)"), "\(body.split(separator: "\n").filter { $0.contains("connections") })")
        #expect(body.contains("hourledger_http_connections_timed_out_total "))
        #expect(process.isRunning)
        let rss = (try? String(contentsOfFile: "/proc/\(process.pid)/status", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("VmRSS") } ?? ""
        print("daemon after 1,500 connections: \(rss.trimmingCharacters(in: .whitespaces))")
    }
}
