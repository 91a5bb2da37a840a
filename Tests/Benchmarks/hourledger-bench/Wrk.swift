import Foundation
import HourLedgerApp
import HourLedgerHTTPClient
import HourLedgerHelpdeskKit
import ServiceLifecycle

/// wrk, the HTTP load generator, run once with latency percentiles and its figures read back.
enum Wrk {
    struct Result {
        var requests = 0
        var non2xx = 0
        var rate = "?"
        var p50 = "?"
        var p99 = "?"
    }

    static var installed: Bool { FileManager.default.isExecutableFile(atPath: "/usr/bin/wrk") }

    /// Runs `wrk --latency` with `arguments`, prints its output unless `quiet`, and returns its figures.
    static func run(_ arguments: [String], quiet: Bool = false) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/wrk")
        process.arguments = ["--latency"] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        if !quiet { print(output) }
        var result = Result()
        for line in output.split(separator: "\n").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if line.hasPrefix("50%") { result.p50 = String(fields.last ?? "?") }
            if line.hasPrefix("99%") { result.p99 = String(fields.last ?? "?") }
            if line.hasPrefix("Requests/sec:") { result.rate = String(fields.last ?? "?") }
            if line.hasPrefix("Non-2xx") { result.non2xx = Int(fields.last ?? "") ?? 0 }
            if line.contains("requests in"), let first = fields.first, let count = Int(first) { result.requests = count }
        }
        return result
    }
}

/// The daemon's HTTP application on a free loopback port, as the HTTP benchmarks drive it.
struct ServedApp {
    /// A daemon's configuration for a benchmark: a helpdesk that never answers (nothing syncs), the ledger file in
    /// `directory`, a free port, and these contracts (YAML list items) and extra helpdesk lines.
    static func configuration(directory: String, url: String = "http://127.0.0.1:9/apirest.php", helpdesk extra: String = "", logLevel: String,
                              contracts: String, database: String? = nil) throws -> HourLedgerConfiguration {
        try ConfigLoader.parse("""
            helpdesk:
              kind: glpi
              url: \(url)
              user_token: bench
            \(extra)
            database: \(database ?? "{ path: \(directory)/ledger.sqlite }")
            http:
              host: 127.0.0.1
              port: 0
            log:
              level: \(logLevel)
            contracts:
            \(contracts)
            """)
    }

    let port: Int
    private let group: ServiceGroup
    private let server: Task<Void, any Error>

    init(_ runtime: Runtime) async throws {
        let (portStream, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let app = buildApplication(runtime: runtime, onServerRunning: { port in portContinuation.yield(port ?? 0) })
        let group = ServiceGroup(services: [app], logger: runtime.logger)
        self.group = group
        server = Task { try await group.run() }
        var ports = portStream.makeAsyncIterator()
        guard let port = await ports.next(), port > 0 else { throw BenchError("the server did not start") }
        self.port = port
    }

    /// Signs `login` in to the dashboard as a browser would (the form's anti-forgery token, then the helpdesk's check
    /// of the password) and returns the `Cookie` header of the session.
    func signIn(_ login: String, password: String) async throws -> String {
        let http = CurlHTTPClient()
        let base = "http://127.0.0.1:\(port)"
        func cookies(_ response: HTTPResponse) -> [String] {
            response.headers.filter { $0.0.lowercased() == "set-cookie" && !$0.1.contains("Max-Age=0") }.map { String($0.1.split(separator: ";")[0]) }
        }
        let form = try await http.send(HTTPRequest(url: base + "/sign-in"))
        let html = String(decoding: form.body, as: UTF8.self)
        guard let range = html.range(of: #"name="csrf" value=""#) else { throw BenchError("the sign-in form has no anti-forgery token") }
        let csrf = String(html[range.upperBound...].prefix { $0 != "\"" })
        let body = FormEncoding.encode([("csrf", csrf), ("login", login), ("password", password), ("next", "/")])
        let signedIn = try await http.send(HTTPRequest(method: "POST", url: base + "/sign-in", headers: [
            ("Content-Type", "application/x-www-form-urlencoded"), ("Cookie", cookies(form).joined(separator: "; ")),
        ], body: Array(body.utf8)))
        guard let session = cookies(signedIn).first(where: { $0.hasPrefix("hourledger_session=") }) else {
            throw BenchError("sign-in of \(login) failed: HTTP \(signedIn.status)")
        }
        return session
    }

    /// Stops serving and closes the ledger.
    func stop(_ runtime: Runtime) async throws {
        await group.triggerGracefulShutdown()
        _ = try? await server.value
        try runtime.repository.close()
    }
}
