import FakeGLPI
import Foundation
import HourLedgerApp
import HourLedgerHTTPClient
import HourLedgerGLPI
import HourLedgerUseCases

/// Times a full sync against a GLPI-shaped loopback server, and, in the same run, a bare libcurl download of the
/// same pages with the same concurrency: the ratio is HourLedger's own cost over the transport's.
///
///   hourledger-bench [--tickets 100000] [--tasks-per-ticket 10] [--concurrency 4] [--postgres postgres://USER@HOST:PORT/DB]
///     (--postgres: the first sync into a PostgreSQL ledger too, each in a new schema, the password from
///     HOURLEDGER_DATABASE_PASSWORD)
///   hourledger-bench reports [--contracts 1000] [--entries-per-month 40]
///   hourledger-bench webhooks [--duration 10] [--connections 64] [--threads 2] [--postgres postgres://USER@HOST:PORT/DB]
///   hourledger-bench itop [--tickets 20000]
///   hourledger-bench all [--tickets 100000] [--itop-tickets 20000] [--entries-per-month 84] [--duration 8] [--postgres URL]
///     (each of the above in turn, one after the other in one run, each in a process of its own so that each peak RSS
///     is its own)
@main struct Bench {
    static func main() async throws {
        // As the daemon does at its start, so the peak RSS below is the daemon's.
        limitMallocArenas()
        let arguments = CommandLine.arguments
        func option(_ name: String, _ fallback: Int) -> Int {
            guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count, let value = Int(arguments[index + 1]) else { return fallback }
            return value
        }
        let tickets = option("--tickets", 100_000)
        let tasksPerTicket = option("--tasks-per-ticket", 10)
        let concurrency = option("--concurrency", 4)
        if arguments.dropFirst().first == "all" {
            try runAll(Array(arguments.dropFirst(2)), option: option)
            return
        }
        if arguments.dropFirst().first == "webhooks" {
            let postgres = arguments.firstIndex(of: "--postgres").flatMap { $0 + 1 < arguments.count ? arguments[$0 + 1] : nil }
            try await WebhookBench.run(duration: option("--duration", 10), connections: option("--connections", 64), threads: option("--threads", 2),
                                       postgres: postgres)
            return
        }
        if arguments.dropFirst().first == "reports" {
            try await ReportBench.run(contracts: option("--contracts", 1000), entriesPerMonth: option("--entries-per-month", 40))
            return
        }
        if arguments.dropFirst().first == "itop" {
            try await ITopBench.run(tickets: option("--tickets", 20_000))
            return
        }
        if arguments.contains("--serve-itop") {
            try await ITopBench.serve(tickets: tickets)
            return
        }
        if arguments.contains("--serve-fake") {
            try await serveFake(tickets: tickets, tasksPerTicket: tasksPerTicket)
            return
        }

        // The fake runs in its own process, so the peak RSS printed below is the daemon side's alone.
        print("starting fake GLPI with \(tickets) tickets and \(tickets * tasksPerTicket) tasks ...")
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        child.arguments = ["--serve-fake", "--tickets", "\(tickets)", "--tasks-per-ticket", "\(tasksPerTicket)"]
        let pipe = Pipe()
        child.standardOutput = pipe
        let control = Pipe()
        child.standardInput = control
        try child.run()
        defer { child.terminate() }
        guard let line = try readLine(pipe.fileHandleForReading), line.hasPrefix("PORT "), let port = Int(line.dropFirst(5)) else {
            print("the fake GLPI did not start"); exit(1)
        }
        let url = "http://127.0.0.1:\(port)/apirest.php"

        // Warm the server's sorted index once, outside both timings.
        let client = CurlHTTPClient()
        let session = try await login(client, url)
        _ = try await client.send(HTTPRequest(url: url + "/search/Ticket?range=0-0&sort=19", headers: session))

        let baselineCPUBefore = cpuSeconds()
        let baseline = try await bareDownload(client, url: url, tickets: tickets, tasks: tickets * tasksPerTicket, concurrency: concurrency)
        let baselineCPU = cpuSeconds() - baselineCPUBefore
        // The peak below is the daemon's alone, not the bare download's (which holds its pages in flight too).
        let downloadPeak = peakRSSKilobytes()
        let changed = option("--changes", 100)
        let sync = try await fullSync(url: url, concurrency: concurrency) {
            // The fake changes `changed` tickets (tasks added, edited, deleted) and says when it is done.
            control.fileHandleForWriting.write(Data("change \(changed)\n".utf8))
            guard try readLine(pipe.fileHandleForReading) == "DONE" else { throw CocoaError(.fileReadUnknown) }
        }

        print("")
        print(String(format: "bare libcurl download : %8.2f s  %7d requests  %9.1f MB", baseline.seconds, baseline.requests, Double(baseline.bytes) / 1e6))
        print(String(format: "full sync             : %8.2f s  %7d requests  (%d tickets, %d entries)", sync.seconds, sync.requests, sync.tickets, sync.entries))
        print(String(format: "ratio sync / download : %8.2f", sync.seconds / baseline.seconds))
        // CPU on this side alone: steadier than wall time on a shared machine, where the fake takes its share.
        print(String(format: "  CPU, this side      : %8.2f s sync, %.2f s download", sync.cpu, baselineCPU))
        print(String(format: "re-sync, no changes   : %8.2f s  %7d requests", sync.resyncSeconds, sync.resyncRequests))
        print(String(format: "poll, %3d tickets changed: %5.2f s  %7d requests  (%d rebuilt from the changed tasks, %d read on their own)",
                     changed, sync.poll.seconds, sync.poll.requests, sync.poll.ticketsRebuilt, sync.poll.ticketsWithTasksRead))
        print(String(format: "  its requests replayed : %8.2f s  (bare libcurl, one after the other)", sync.pollReplay))
        print(String(format: "reconciliation        : %8.2f s  %7d requests  (%d drifting tickets)", sync.reconcile.seconds, sync.reconcile.requests,
                     sync.reconcile.drifts))
        print(String(format: "  its requests replayed : %8.2f s", sync.reconcile.replay))
        print(String(format: "peak RSS (daemon side): %8.1f MB  (%.1f MB by the end of the bare download)",
                     sync.peaks.map(\.megabytes).max() ?? 0, Double(downloadPeak) / 1024))
        print("  by phase            : " + sync.peaks.map { "\($0.phase) " + String(format: "%.1f MB", $0.megabytes) }.joined(separator: ", "))
        if let index = arguments.firstIndex(of: "--postgres"), index + 1 < arguments.count {
            let database = "{ kind: postgres, url: \"\(arguments[index + 1])?schema=bench_\(getpid())&sslmode=disable\" }"
            let onPostgres = try await firstSync(url: url, concurrency: concurrency, database: database)
            print(String(format: "first sync, PostgreSQL: %8.2f s  (%d entries; %.2f the SQLite sync's time, %.2f the download's)",
                         onPostgres.seconds, onPostgres.entries, onPostgres.seconds / sync.seconds, onPostgres.seconds / baseline.seconds))
        }
    }

    /// GLPI, iTop, the reads and the webhooks, one after the other, each in a child process whose output is this one's.
    static func runAll(_ rest: [String], option: (String, Int) -> Int) throws {
        let postgres = rest.firstIndex(of: "--postgres").flatMap { $0 + 1 < rest.count ? ["--postgres", rest[$0 + 1]] : nil } ?? []
        let steps: [(String, [String])] = [
            ("GLPI first sync, poll and reconciliation",
             ["--tickets", "\(option("--tickets", 100_000))", "--tasks-per-ticket", "\(option("--tasks-per-ticket", 10))"] + postgres),
            ("iTop first sync", ["itop", "--tickets", "\(option("--itop-tickets", 20_000))"]),
            ("reads: balances, /status, contract list and detail, dashboard cards",
             ["reports", "--contracts", "\(option("--contracts", 1000))", "--entries-per-month", "\(option("--entries-per-month", 84))"]),
            ("signed webhooks", ["webhooks", "--duration", "\(option("--duration", 8))"] + postgres),
        ]
        let started = ContinuousClock.now
        for (title, arguments) in steps {
            print("\n=== \(title): hourledger-bench \(arguments.joined(separator: " ")) ===", terminator: "\n")
            fflush(nil)
            let child = Process()
            child.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
            child.arguments = arguments
            try child.run()
            child.waitUntilExit()
            if child.terminationStatus != 0 { print("(\(title) exited with status \(child.terminationStatus))") }
        }
        print(String(format: "\nall benchmarks: %.0f s", seconds(ContinuousClock.now - started)))
    }

    /// The first sync alone, into the given `database:` section.
    static func firstSync(url: String, concurrency: Int, database: String) async throws -> (seconds: Double, entries: Int) {
        let yaml = """
        helpdesk: { kind: glpi, url: "\(url)", app_token: fixture-app-token, user_token: fixture-user-token, concurrency: \(concurrency) }
        database: \(database)
        log: { level: warning }
        contracts:
        \(benchContracts)
        """
        let runtime = try Runtime(configuration: try ConfigLoader.parse(yaml, environment: ProcessInfo.processInfo.environment))
        let start = ContinuousClock.now
        _ = try await runtime.engine.syncOnce()
        let elapsed = seconds(ContinuousClock.now - start)
        let entries = try runtime.ledger.counts().entries
        try runtime.repository.close()
        return (elapsed, entries)
    }

    static var benchContracts: String {
        var contracts = ""
        for entity in 1...10 {
            contracts += """
              - { id: customer-\(entity), entity: \(entity), include_subentities: true, match: { categories: [1, 2, 3, 4, 5, 6, 7, 8] },
                  quota_hours: 400, period: monthly, starts: 2026-01-01, timezone: Europe/Paris, rounding: { increment_minutes: 15, mode: up } }

            """
        }
        return contracts
    }

    static func login(_ client: CurlHTTPClient, _ url: String) async throws -> [(String, String)] {
        let response = try await client.send(HTTPRequest(url: url + "/initSession", headers: [("App-Token", "fixture-app-token"), ("Authorization", "user_token fixture-user-token")]))
        let token = try GLPIConnector.decode(response, operation: "initSession")["session_token"]!.string!
        return [("App-Token", "fixture-app-token"), ("Session-Token", token), ("Content-Type", "application/json")]
    }

    /// The same requests a full sync makes, with no parsing and no storage.
    static func bareDownload(_ client: CurlHTTPClient, url: String, tickets: Int, tasks: Int, concurrency: Int) async throws -> (seconds: Double, requests: Int, bytes: Int) {
        let clock = ContinuousClock()
        let start = clock.now
        let headers = try await login(client, url)
        var requests = 1, bytes = 0
        var query: [(String, String)] = []
        for (index, column) in GLPIConnector.ticketColumns.enumerated() { query.append(("forcedisplay[\(index)]", "\(column)")) }
        query += [("sort", "19"), ("order", "ASC")]
        var offset = 0
        while offset < tickets {
            let page = try await client.send(HTTPRequest(url: url + "/search/Ticket?" + GLPIConnector.encode(query + [("range", "\(offset)-\(offset + 999)")]), headers: headers))
            requests += 1
            bytes += page.body.count
            offset += 1000
        }
        for itemtype in ["Entity", "ITILCategory", "Group"] {
            bytes += try await client.send(HTTPRequest(url: url + "/\(itemtype)?range=0-999", headers: headers)).body.count
            requests += 1
        }
        // Every task by the page across tickets, `concurrency` pages in flight: what a first sync asks for.
        let pageSize = 5000
        let starts = Array(stride(from: 0, to: tasks, by: pageSize))
        let counted = try await withThrowingTaskGroup(of: Int.self) { group in
            var next = starts.makeIterator(), total = 0
            func fetch(_ start: Int) -> @Sendable () async throws -> Int {
                { try await client.send(HTTPRequest(url: url + "/TicketTask?range=\(start)-\(start + pageSize - 1)&expand_dropdowns=false", headers: headers)).body.count }
            }
            for _ in 0..<concurrency { if let start = next.next() { group.addTask(operation: fetch(start)) } }
            while let size = try await group.next() {
                total += size
                if let start = next.next() { group.addTask(operation: fetch(start)) }
            }
            return total
        }
        bytes += counted
        requests += starts.count
        return (seconds(clock.now - start), requests, bytes)
    }

    static func fullSync(url: String, concurrency: Int, change: @Sendable () throws -> Void) async throws
        -> (seconds: Double, cpu: Double, requests: Int, tickets: Int, entries: Int, resyncSeconds: Double, resyncRequests: Int, poll: SyncReport,
            pollReplay: Double, reconcile: (seconds: Double, requests: Int, drifts: Int, replay: Double), peaks: [(phase: String, megabytes: Double)])
    {
        // Each phase's own peak RSS: the kernel's high-water mark is started again from what is held before it.
        var peaks: [(phase: String, megabytes: Double)] = []
        func phase<T>(_ name: String, _ body: () async throws -> T) async rethrows -> T {
            resetPeakRSS()
            let value = try await body()
            peaks.append((name, Double(peakRSSKilobytes()) / 1024))
            return value
        }
        let directory = NSTemporaryDirectory() + "hourledger-bench-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let contracts = benchContracts
        let yaml = """
        helpdesk: { kind: glpi, url: "\(url)", app_token: fixture-app-token, user_token: fixture-user-token, concurrency: \(concurrency) }
        database: { path: "\(directory)/ledger.sqlite" }
        log: { level: warning }
        contracts:
        \(contracts)
        """
        let recorder = RecordingHTTP(CurlHTTPClient())
        let runtime = try Runtime(configuration: try ConfigLoader.parse(yaml), http: recorder)
        let cpuBefore = cpuSeconds()
        let report = try await phase("first sync") { try await runtime.engine.syncOnce() }
        let cpu = cpuSeconds() - cpuBefore
        let counts = try runtime.ledger.counts()
        let again = try await phase("re-sync") { try await runtime.engine.syncOnce() }
        try change()
        // Warm the fake's date_mod order (a real GLPI keeps it in an index), so the poll and its replay both find it.
        _ = try await recorder.inner.send(HTTPRequest(url: url + "/TicketTask?range=0-0&sort=date_mod&order=DESC", headers: try await login(recorder.inner, url)))
        recorder.clear()
        let poll = try await phase("poll") { try await runtime.engine.syncOnce() }
        // The same requests again, one after the other, by bare libcurl: the wire's share of the poll.
        let replayStart = ContinuousClock.now
        for request in recorder.recorded { _ = try await recorder.inner.send(request) }
        let replay = seconds(ContinuousClock.now - replayStart)
        // A reconciliation of every ticket, and its requests replayed the same way.
        recorder.clear()
        let reconciliation = try await phase("reconciliation") { try await runtime.engine.reconcile() }
        let reconcileReplayStart = ContinuousClock.now
        for request in recorder.recorded { _ = try await recorder.inner.send(request) }
        let reconcileReplay = seconds(ContinuousClock.now - reconcileReplayStart)
        await runtime.connector.close()
        return (report.seconds, cpu, report.requests, counts.tickets, counts.entries, again.seconds, again.requests, poll, replay,
                (reconciliation?.seconds ?? 0, reconciliation?.requests ?? 0, reconciliation?.drifts.count ?? -1, reconcileReplay), peaks)
    }

    static func serveFake(tickets: Int, tasksPerTicket: Int) async throws {
        let state = FakeGLPIState()
        state.logRequests = false
        for top in 1...10 { state.addEntity(top, name: "Customer \(top)") }
        for sub in 11...100 { state.addEntity(sub, name: "Site \(sub)", parent: sub % 10 + 1) }
        for group in 1...20 { state.addGroup(group, name: "Team \(group)") }
        for category in 1...10 { state.addCategory(category, name: "Category \(category)") }
        var ticketRows: [FakeGLPIState.Ticket] = []
        var taskRows: [FakeGLPIState.Task] = []
        ticketRows.reserveCapacity(tickets)
        taskRows.reserveCapacity(tickets * tasksPerTicket)
        var taskID = 1
        for id in 1...tickets {
            let stamp = String(format: "2026-11-%02d %02d:%02d:%02d", 1 + id % 20, id % 24, id % 60, (id / 60) % 60)
            let groups = id % 7 == 0 ? [id % 20 + 1, (id + 1) % 20 + 1] : [id % 20 + 1]
            ticketRows.append(.init(id: id, name: "Ticket \(id)", entity: id % 100 + 1, category: id % 10 + 1, status: 2, groups: groups, dateMod: stamp))
            for n in 0..<tasksPerTicket {
                let date = String(format: "2026-11-%02d %02d:%02d:00", 1 + (id + n) % 20, (id + n) % 24, n % 60)
                let seconds: Int = 60 + (id * 37 + n * 101) % 7200
                let technician: Int = 7 + n % 5
                let content = "<p>Work item \(n) on ticket \(id)</p>"
                taskRows.append(FakeGLPIState.Task(id: taskID, ticketID: id, date: date, seconds: seconds, technician: technician,
                                                   isPrivate: n % 3 == 0, content: content, category: 1, state: 2, dateMod: stamp))
                taskID += 1
            }
        }
        state.bulkLoad(tickets: ticketRows, tasks: taskRows)
        ticketRows = []
        taskRows = []
        let server = try await FakeGLPIServer(state: state)
        FileHandle.standardOutput.write(Data("PORT \(server.port)\n".utf8))
        // Serve until the parent closes our stdin; `change N` changes N tickets: a task added to two in five, the
        // first task edited in two in five, deleted in one in five.
        while let line = try readLine(FileHandle.standardInput) {
            guard line.hasPrefix("change "), let count = Int(line.dropFirst(7)) else { continue }
            state.advance(seconds: 60)
            for index in 0..<count {
                let ticket = 1 + (index * 7919) % tickets
                let first = state.tasks(ofTicket: ticket).first?.id
                switch index % 5 {
                case 0, 1: state.addTask(ticket: ticket, seconds: 900, technician: 8, content: "<p>Follow-up call</p>")
                case 2, 3: if let first { state.editTask(first) { $0.seconds += 60 } }
                default: if let first { state.deleteTask(first) }
                }
            }
            FileHandle.standardOutput.write(Data("DONE\n".utf8))
        }
        await server.stop()
    }

    static func readLine(_ handle: FileHandle) throws -> String? {
        var bytes: [UInt8] = []
        while true {
            let chunk = handle.readData(ofLength: 1)
            if chunk.isEmpty { return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self) }
            if chunk[0] == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(chunk[0])
        }
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// User and system CPU time of this process so far.
    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    /// Starts the kernel's high-water mark of this process's RSS again from what it holds now.
    static func resetPeakRSS() {
        try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
    }

    static func peakRSSKilobytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
        }
        return 0
    }
}

/// Passes requests on and keeps the GET ones, so the bench can replay a poll's requests with bare libcurl.
final class RecordingHTTP: HTTPSending, @unchecked Sendable {
    let inner: CurlHTTPClient
    let methods: Set<String>
    private let lock = NSLock()
    private var requests: [HTTPRequest] = []

    init(_ inner: CurlHTTPClient, methods: Set<String> = ["GET"]) {
        self.inner = inner
        self.methods = methods
    }

    var recorded: [HTTPRequest] { lock.withLock { requests } }
    func clear() { lock.withLock { requests.removeAll() } }

    func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        if methods.contains(request.method) { lock.withLock { requests.append(request) } }
        return try await inner.send(request)
    }
}
