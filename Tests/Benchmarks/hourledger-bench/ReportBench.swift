import FakeGLPI
import Foundation
import GRDB
import HourLedgerCore
import HourLedgerServer
import HourLedgerGLPI
import HourLedgerStore
import HourLedgerUseCases
import HourLedgerApp
import Logging
import ServiceLifecycle

/// Times every report over a year of data for many contracts, and, in the same run, a bare scan of the same entries:
/// the ratio is what the report adds to reading the rows at all.
enum ReportBench {
    static func run(contracts count: Int, entriesPerMonth: Int) async throws {
        let directory = NSTemporaryDirectory() + "hourledger-report-bench-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try SQLiteLedger(path: directory + "/ledger.sqlite")
        let zones = ["Europe/Paris", "America/New_York", "UTC", "Asia/Tokyo"]
        let contracts = (0..<count).map { i -> Contract in
            let mode: Billing.Mode = i % 10 < 7 ? .block : (i % 10 < 9 ? .payg : .unlimited)
            return Contract(id: "c\(i)", name: "Customer \(i)", entity: i + 1, quotaSeconds: mode == .block ? 20 * 3600 : 0, period: .monthly,
                            starts: CivilDate(year: 2025, month: 12, day: 1 + i % 28), timeZone: zones[i % zones.count],
                            billing: Billing(mode: mode, rate: 9000, overageRate: 12000, technicianRates: [7: 15000]),
                            carryOver: mode == .block ? CarryOverPolicy(maxSeconds: 10 * 3600, expiresAfterPeriods: 1) : nil,
                            alertThresholds: mode == .block ? [80, 100] : [])
        }
        // Quiet: loading a year past every quota fires an alert per contract, which is not what is measured.
        var quiet = Logger(label: "hourledger.ledger")
        quiet.logLevel = .warning
        let ledger = Ledger(repository: store, profile: GLPIConnector.glpiProfile, book: ContractBook(contracts), logger: quiet)
        let start = Date(timeIntervalSince1970: 1_764_547_200)  // 2025-12-01 00:00 UTC
        let year = 365 * 86_400
        print("loading \(count) contracts × 12 months × \(entriesPerMonth) entries = \(count * 12 * entriesPerMonth) entries ...")
        let loadStarted = ContinuousClock.now
        var taskID = 1
        var generator = SystemRandomNumberGenerator()
        for chunk in stride(from: 0, to: count, by: 50) {
            var updates: [TicketUpdate] = []
            for i in chunk..<min(chunk + 50, count) {
                for t in 0..<5 {
                    let id = i * 5 + t + 1
                    let facts = TicketFacts(id: id, name: "Ticket \(id)", entity: i + 1, groups: [], category: 0)
                    let tasks = (0..<(12 * entriesPerMonth / 5)).map { _ -> TaskFacts in
                        defer { taskID += 1 }
                        return TaskFacts(id: taskID, ticketID: id, date: start.addingTimeInterval(Double(Int.random(in: 0..<year, using: &generator))),
                                         seconds: Int.random(in: 300...7200, using: &generator), technician: Int.random(in: 1...50, using: &generator),
                                         isPrivate: true, content: "work")
                    }
                    updates.append(.init(ticket: facts, dateMod: "2026-11-21 00:00:00",
                                         match: ContractMatcher.match(facts, contracts: [contracts[i]], entities: EntityTree(), terms: .glpi),
                                         tasks: tasks, taskFingerprint: nil))
                }
            }
            _ = try await ledger.apply(updates, now: start)
        }
        let now = start.addingTimeInterval(Double(year) - 86_400)
        try await ledger.settle(all: true, now: now)
        print(String(format: "loaded in %.1f s", seconds(since: loadStarted)))

        let range = ReportRange(from: start, to: start.addingTimeInterval(Double(year)))
        let utc = TimeZone(identifier: "UTC")!
        // Baselines: SQLite summing the entries' time in one pass, and fetching every entry's report columns into Swift.
        let (scan, total) = try measure {
            try store.writer.read { db in try Int.fetchOne(db, sql: "SELECT SUM(billed_seconds) FROM entry") ?? 0 }
        }
        let (baseline, rows) = try measure {
            try store.writer.read { db in
                try Row.fetchAll(db, sql: "SELECT technician, kind, billed_seconds, worked_at, contract_id, period_key, ticket_id FROM entry").count
            }
        }
        print("")
        print(label("baseline: SUM over all entries") + String(format: "%9.3f s", scan) + "  (\(total) s of time)")
        print(label("baseline: fetch all entries") + String(format: "%9.3f s  (%d rows)", baseline, rows))
        for kind in Report.Kind.allCases {
            for format in ["table", "json", "csv"] {
                let (time, text) = try measure {
                    try Report.render(kind, ledger: ledger, range: range, timeZone: utc, contractID: nil, format: format, now: now)
                }
                print(label("report \(kind.rawValue) (\(format))") + String(format: "%9.3f s  %6.2f × fetch  %8d bytes", time, time / baseline,
                                                                               text.utf8.count))
            }
        }
        let (invoices, lines) = try measure {
            try contracts.reduce(0) { sum, contract in
                sum + (try ledger.invoicePreview(contract, at: now, now: now)?.lines.count ?? 0)
            }
        }
        print(label("invoice preview, all \(count) contracts") + String(format: "%9.3f s  %6.2f × fetch  %8d lines", invoices, invoices / baseline, lines))
        let (balances, _) = try measure { try ledger.currentBalances(at: now).balances.count }
        print(label("current balances, all contracts") + String(format: "%9.3f s", balances))

        // What /api/v1/contracts, /status and the dashboard's cards compute on every read, and one contract's detail,
        // as percentiles, next to the store's own look-up of the same rows.
        print("")
        let all = try percentiles(runs: 30) { _ = try ledger.contractBalances(at: now) }
        print(label("read: every contract's balance") + all)
        let lookup = try percentiles(runs: 30) {
            _ = try store.writer.read { db in try Row.fetchAll(db, sql: "SELECT * FROM balance").count }
        }
        print(label("  baseline: fetch every balance row") + lookup)
        let balancesNow = try ledger.contractBalances(at: now).balances
        print(label("  their JSON, written afresh") + (try percentiles(runs: 30) { _ = BalanceJSON.bytes(balancesNow) }))
        let kept = BalanceJSON.Kept()
        _ = kept.bytes(balancesNow)
        print(label("  their JSON, kept since the last read") + (try percentiles(runs: 30) { _ = kept.bytes(balancesNow) }))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        print(label("  their JSON by JSONEncoder") + (try percentiles(runs: 30) { _ = try encoder.encode(balancesNow) }))
        _ = try kept.current(ledger, at: now)
        print(label("read: the list, kept whole") + (try percentiles(runs: 30) { _ = try kept.current(ledger, at: now) }))
        // What /status reads besides the balances.
        print(label("  /status: counts") + (try percentiles(runs: 30) { _ = try ledger.counts() }))
        print(label("  /status: outbox, parked, failing") + (try percentiles(runs: 30) {
            _ = try ledger.outboxStats(now: now)
            _ = try ledger.outboxItems(parkedOnly: true, limit: 20)
            _ = try ledger.ticketFailures(limit: 50)
        }))
        print(label("  /status: alerts and deliveries") + (try percentiles(runs: 30) {
            _ = try ledger.alerts(limit: 20)
            _ = try ledger.alertDeliveryStats()
        }))
        let detail = try percentiles(runs: 200) {
            let contract = contracts[Int.random(in: 0..<count)]
            let rows = try ledger.balances(of: contract, now: now)
            if let last = rows.last { _ = try ledger.ticketBreakdown(contractID: contract.id, periodKey: last.periodKey) }
        }
        print(label("read: one contract's detail") + detail)
        try await httpReads(directory: directory, contracts: contracts)
    }

    /// The same reads through the daemon's HTTP stack on this ledger file, driven by wrk on loopback, next to the
    /// same stack refusing a wrong token (authentication middleware, no ledger work).
    static func httpReads(directory: String, contracts: [Contract]) async throws {
        guard Wrk.installed else { print("wrk is not installed (apt-get install -y wrk): no HTTP read figures"); return }
        let yaml = contracts.map { contract -> String in
            var line = "  - {id: \(contract.id), name: \"\(contract.name)\", entity: \(contract.entity ?? 0), period: monthly, "
                + "starts: \(contract.starts), timezone: \(contract.timeZone), billing: \(contract.billing.mode.rawValue)"
            switch contract.billing.mode {
            case .block: line += ", quota_hours: 20, overage_rate: 12000, carry_over: {max_hours: 10, expires_after_periods: 1}, alerts: {thresholds: [80, 100]}"
            case .payg: line += ", rate: 9000"
            case .unlimited: break
            }
            return line + "}"
        }.joined(separator: "\n")
        // A fake GLPI only checks the dashboard sign-in of a manager: nothing polls it.
        let glpiState = FakeGLPIState(clock: Date())
        glpiState.addPerson(FakeGLPIState.Person(id: 8, login: "manager.max", firstname: "Max", realname: "Boss", profileID: 7, profile: "Supervisor",
                                                 interface: "central", entities: [0]))
        let glpi = try await FakeGLPIServer(state: glpiState)
        let config = try ServedApp.configuration(directory: directory, url: glpi.url, helpdesk: "  app_token: \(glpiState.appToken)",
                                                 logLevel: "critical", contracts: yaml)
        let runtime = try Runtime(configuration: config)
        let token = try runtime.ledger.createToken(user: "bench", helpdeskUserID: 1, role: .manager)
        let served = try await ServedApp(runtime)
        let session = try await served.signIn("manager.max", password: glpiState.password)
        let port = served.port
        let base = "http://127.0.0.1:\(port)"
        let counts = try runtime.ledger.counts()
        print("")
        print("HTTP reads: \(contracts.count) contracts, \(counts.entries) entries, wrk -t1 -c1 -d5s on loopback: one reader at a time, so the latencies are a read's own (one warm-up run first)")
        let runs: [(String, [String])] = [
            ("baseline: wrong token, refused", ["-H", "Authorization: Bearer wrong", base + "/api/v1/contracts"]),
            ("GET /api/v1/contracts", ["-H", "Authorization: Bearer \(token)", base + "/api/v1/contracts"]),
            ("GET /status", [base + "/status"]),
            ("GET /api/v1/contracts/c1", ["-H", "Authorization: Bearer \(token)", base + "/api/v1/contracts/c1"]),
            ("dashboard: a manager's GET /contracts (the cards)", ["-H", "Cookie: \(session)", base + "/contracts"]),
        ]
        var rows: [String] = []
        for (name, arguments) in runs {
            _ = try Wrk.run(["-t1", "-c1", "-d2s"] + arguments, quiet: true)
            let result = try Wrk.run(["-t1", "-c1", "-d5s"] + arguments, quiet: true)
            rows.append("| \(name) | \(result.rate) | \(result.p50) | \(result.p99) | \(result.non2xx) of \(result.requests) |")
        }
        print("| read | requests/s | p50 | p99 | non-2xx |\n|---|---|---|---|---|\n" + rows.joined(separator: "\n"))
        try await served.stop(runtime)
        await glpi.stop()
    }

    /// p50 and p99 of `runs` timed calls, in milliseconds.
    static func percentiles(runs: Int, _ body: () throws -> Void) rethrows -> String {
        var times: [Double] = []
        for _ in 0..<runs {
            let started = ContinuousClock.now
            try body()
            times.append(seconds(since: started) * 1000)
        }
        times.sort()
        let p99 = times[min(times.count - 1, Int((Double(times.count) * 0.99).rounded(.up)) - 1)]
        return String(format: "p50 %8.2f ms  p99 %8.2f ms", times[times.count / 2], p99)
    }

    static func label(_ text: String) -> String { text.padding(toLength: 40, withPad: " ", startingAt: 0) }

    static func measure<T>(_ body: () throws -> T) rethrows -> (Double, T) {
        let started = ContinuousClock.now
        let value = try body()
        return (seconds(since: started), value)
    }

    static func seconds(since started: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - started
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }
}
