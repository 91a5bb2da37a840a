import FakeGLPI
import Foundation
import GRDB
import HourLedgerApp
import HourLedgerCore
import HourLedgerGLPI
import HourLedgerHelpdeskKit
import HourLedgerITop
import HourLedgerUseCases
import HourLedgerServer
import HourLedgerStore
import Hummingbird
import HummingbirdTesting
import Testing

/// Dates are read strictly: an impossible day is refused, never moved, and fractions of a second are allowed.
@Suite struct TimestampTests {
    @Test func rfc3339IsReadStrictly() {
        #expect(Timestamp.parse("2026-11-21T10:00:00Z") == Date.utc("2026-11-21 10:00:00"))
        #expect(Timestamp.parse("2026-11-21T10:00:00.5Z") == Date.utc("2026-11-21 10:00:00"))
        #expect(Timestamp.parse("2026-11-21T10:00:00.999999+01:00") == Date.utc("2026-11-21 09:00:00"))
        #expect(Timestamp.parse("2026-11-21t10:00:00z") == Date.utc("2026-11-21 10:00:00"))
        #expect(Timestamp.parse("2024-02-29T00:00:00Z") == Date.utc("2024-02-29 00:00:00"))
        for bad in ["2026-02-30T10:00:00Z", "2025-02-29T00:00:00Z", "2026-11-31T00:00:00Z", "2026-13-01T00:00:00Z", "2026-11-21T24:00:00Z",
                    "2026-11-21T10:60:00Z", "2026-11-21T10:00:00", "2026-11-21T10:00Z", "2026-11-21", "10000-01-01T00:00:00Z",
                    "2026-11-21T10:00:00.Z", "2026-11-21T10:00:00+25:00", "yesterday", ""] {
            #expect(Timestamp.parse(bad) == nil, "\(bad)")
        }
    }

    @Test func helpdeskDatesAreReadStrictlyToo() {
        let utc = TimeZone(identifier: "UTC")!
        #expect(GLPIDate.parse("2026-11-21 10:00:00", timeZone: utc) == Date.utc("2026-11-21 10:00:00"))
        #expect(GLPIDate.parse("2026-02-30 10:00:00", timeZone: utc) == nil)
        #expect(GLPIDate.parse("9999-12-31 00:00:00", timeZone: utc) == nil)
        #expect(GLPIDate.parse("99999999999999999999-01-01 00:00:00", timeZone: utc) == nil)
    }
}

/// A one-off block (`period: none`) has one period from its start to its expiry, with a balance like any other.
@Suite struct OneOffBlockTests {
    @Test func aPeriodNoneContractHasItsOnePeriod() throws {
        let contract = Contract(id: "beta", name: "Beta", entity: 2, quotaSeconds: 36_000, period: .none,
                                starts: CivilDate(year: 2026, month: 3, day: 1), expires: CivilDate(year: 2026, month: 12, day: 31))
        let now = Date.utc("2026-11-21 10:00:00")
        let statements = BlockLedger.statements(for: contract, used: ["2026-03-01": 7200], now: now)
        #expect(statements.count == 1)
        #expect(statements.first?.period.start == Date.utc("2026-03-01 00:00:00"))
        #expect(statements.first?.period.end == Date.utc("2027-01-01 00:00:00"))
        #expect(statements.first?.remainingSeconds == 28_800)
        #expect(BlockLedger.statement(for: contract, used: ["2026-03-01": 7200], at: now, now: now)?.usedSeconds == 7200)
        // Open-ended: one period with no end.
        let open = Contract(id: "open", name: "Open", entity: 2, quotaSeconds: 3600, period: .none, starts: CivilDate(year: 2026, month: 3, day: 1))
        #expect(BlockLedger.statements(for: open, used: [:], now: now).map(\.period.end) == [nil])
    }

    /// The example config's `beta-2026` shows up in balances, the contract API, the blocks report and the invoice preview.
    @Test func theExampleOneOffBlockIsEverywhere() async throws {
        let clock = TestClock()
        let h = try await GLPIHarness.start(contracts: """
              - { id: beta-2026, name: Customer B block, entity: 2, quota_hours: 10, period: none, starts: 2026-03-01, expires: 2026-12-31,
                  timezone: UTC, overage_rate: 9000 }
            """, clock: clock.wall) { glpi in
            glpi.addTicket(2, name: "Printer", entity: 2, category: 1, groups: [1])
            glpi.addTask(ticket: 2, seconds: 5400, date: "2026-11-20 09:00:00")
        }
        defer { Task { await h.stop() } }
        let now = Date.utc("2026-11-21 10:00:00")
        clock.set(now)
        let balance = try #require(try h.runtime.ledger.contractBalances(at: now).balances.first)
        #expect((balance.id, balance.periodKey, balance.usedSeconds, balance.remainingSeconds) == ("beta-2026", "2026-03-01", 5400, 30_600))
        let manager = try h.runtime.ledger.createToken(user: "boss", helpdeskUserID: 2, role: .manager)
        let app = buildApplication(runtime: h.runtime)
        try await app.test(.router) { client in
            let detail = try await client.call(.get, "/api/v1/contracts/beta-2026", token: manager)
            #expect(detail.status == .ok)
            #expect((detail.object["balance"] as? [String: Any])?["used_seconds"] as? Int == 5400)
            let blocks = try await client.call(.get, "/api/v1/reports/blocks?from=2026-01-01&to=2027-01-01", token: manager)
            #expect(blocks.list.map { $0["contract_id"] as? String } == ["beta-2026"])
            let preview = try await client.call(.get, "/api/v1/contracts/beta-2026/invoice-preview?period=current", token: manager)
            #expect(preview.status == .ok && preview.object["period_key"] as? String == "2026-03-01")
            let list = try await client.call(.get, "/api/v1/contracts", token: manager)
            #expect(list.list.map { $0["id"] as? String } == ["beta-2026"])
        }
    }
}

/// Every duration, amount and date is bounded where it enters; nothing a technician types can crash the daemon.
@Suite struct EntryBoundsTests {
    let contracts = """
      - { id: acme, name: ACME, entity: 1, quota_hours: 20, starts: 2026-01-01, rounding: { increment_minutes: 15, mode: up }, alerts: { thresholds: [50] } }
    """

    @Test func hugeDurationsAndImpossibleDatesAreRefusedByField() async throws {
        let h = try await GLPIHarness.start(contracts: contracts) { $0.addTicket(1, name: "Laptop", entity: 1, category: 1, groups: [1]) }
        defer { Task { await h.stop() } }
        let alice = try h.runtime.ledger.createToken(user: "tech.alice", helpdeskUserID: 7, role: .technician)
        let app = buildApplication(runtime: h.runtime)
        try await app.test(.router) { client in
            let created = try await client.call(.post, "/api/v1/entries", token: alice,
                                                body: #"{"ticket":1,"started_at":"2026-11-20T08:00:00.5Z","duration_seconds":600}"#)
            #expect(created.status == .created)
            #expect(created.object["worked_at"] as? String == "2026-11-20T08:00:00Z")
            let key = try #require(created.object["key"] as? String)
            for (body, field) in [
                (#"{"duration_seconds":4611686018427387904}"#, "duration_seconds"),
                (#"{"duration_seconds":-1}"#, "duration_seconds"),
                (#"{"duration_seconds":86401}"#, "duration_seconds"),
                (#"{"started_at":"2026-02-30T10:00:00Z"}"#, "started_at"),
                (#"{"started_at":"0001-01-01T00:00:00Z"}"#, "started_at"),
                (#"{"started_at":"9999-12-31T00:00:00Z"}"#, "started_at"),
                (#"{"note":"a\u0000b"}"#, "note"),
            ] {
                let answer = try await client.call(.patch, "/api/v1/entries/\(key)", token: alice, body: body)
                #expect(answer.status == .badRequest && answer.field == field, "\(body): \(answer.text)")
            }
            for (body, field) in [
                (#"{"ticket":1,"started_at":"10000-01-01T00:00:00Z","duration_seconds":60}"#, "started_at"),
                (#"{"ticket":1,"started_at":"0001-01-01T00:00:00Z","duration_seconds":60}"#, "started_at"),
                (#"{"ticket":1,"started_at":"2026-02-30T10:00:00Z","duration_seconds":60}"#, "started_at"),
                (#"{"ticket":1,"started_at":"2026-11-20T08:00:00Z","duration_seconds":9223372036854775807}"#, "duration_seconds"),
                (#"{"ticket":1,"started_at":"2026-11-20T08:00:00Z","duration_seconds":60,"description":"a\u0000b"}"#, "description"),
            ] {
                let answer = try await client.call(.post, "/api/v1/entries", token: alice, body: body)
                #expect(answer.status == .badRequest && answer.field == field, "\(body): \(answer.text)")
            }
        }
        // Nothing of that was stored, and settling still works.
        let entries = try h.runtime.ledger.workEntries(ticketID: 1)
        #expect(entries.map(\.rawSeconds) == [600] && entries.map(\.note) == [""])
        try await h.runtime.engine.settle(all: true)
    }

    @Test func amountsOfAYearAtTheHighestRateDoNotOverflow() {
        #expect(Billing.amount(seconds: 31_622_400, ratePerHour: 100_000_000) == 878_400_000_000)
        #expect(Billing.amount(seconds: 5400, ratePerHour: 9000) == 13_500)
        #expect(Billing.amount(seconds: 1, ratePerHour: 1800) == 1)
        #expect(Billing.amount(seconds: 1, ratePerHour: 1799) == 0)
        #expect(RoundingPolicy(incrementSeconds: 900, mode: .up).billedSeconds(forRaw: Int.max) == Int.max)
    }

    /// Damaged figures already in a ledger fail their own contract, reported; the other contracts are settled and shown.
    @Test func damagedStoredDataFailsOnlyItsContract() async throws {
        let h = try await GLPIHarness.start(contracts: """
              - { id: acme, name: ACME, entity: 1, quota_hours: 20, starts: 2026-01-01, alerts: { thresholds: [50] } }
              - { id: beta, name: Beta, entity: 2, quota_hours: 10, starts: 2026-01-01 }
            """) { glpi in
            glpi.addTicket(1, name: "Laptop", entity: 1, category: 1, groups: [1])
            glpi.addTask(ticket: 1, seconds: 600, date: "2026-11-20 09:00:00")
            glpi.addTicket(2, name: "Printer", entity: 2, category: 1, groups: [1])
            glpi.addTask(ticket: 2, seconds: 900, date: "2026-11-20 09:00:00")
        }
        defer { Task { await h.stop() } }
        try await h.runtime.ledger.sqlite.writer.write { db in
            try db.execute(sql: "UPDATE balance SET used_seconds = 4611686018427387904 WHERE contract_id = 'acme'")
            try db.execute(sql: "INSERT OR IGNORE INTO ledger_dirty(contract_id) VALUES ('acme')")
        }
        let now = Date.utc("2026-11-21 10:00:00")
        try await h.runtime.engine.settle(all: true, now: now)
        let failures = await h.runtime.engine.status.contractFailures
        #expect(failures.map(\.contractID) == ["acme"])
        #expect(failures.first?.error.contains("used_seconds of period 2026-11-01 is 4611686018427387904") == true)
        let (balances, reported) = try h.runtime.ledger.contractBalances(at: now)
        #expect(balances.map(\.id) == ["beta"] && balances.first?.usedSeconds == 900)
        #expect(reported.map(\.contractID) == ["acme"])
        let app = buildApplication(runtime: h.runtime)
        try await app.test(.router) { client in
            let status = try await client.call(.get, "/status")
            #expect(status.status == .ok)
            #expect((status.object["contract_errors"] as? [[String: Any]])?.first?["contract_id"] as? String == "acme")
            #expect((status.object["contracts"] as? [[String: Any]])?.map { $0["id"] as? String } == ["beta"])
            #expect(try await client.call(.get, "/metrics").status == .ok)
        }
    }

    /// The CLI refuses a duration that would overflow instead of crashing.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: CrashSafetyTests.binary)))
    func theCLIRefusesAnOverflowingDuration() async throws {
        let h = try await GLPIHarness.start(contracts: contracts) { $0.addTicket(1, name: "Laptop", entity: 1, category: 1, groups: [1]) }
        defer { Task { await h.stop() } }
        let config = h.directory.write("hourledger.yaml", configYAML(url: h.server.url, database: h.directory.path + "/l.sqlite", contracts: contracts))
        let run = try await CLI.run(["entry", "add", "--config", config, "--ticket", "1", "--technician", "7", "--started-at", "2026-11-20T08:00:00Z",
                               "--duration-seconds", "9223372036854775807"])
        #expect(run.exitedNormally && run.status != 0)
        #expect(run.output.contains("duration_seconds must be between 0 and 86400 seconds"), "\(run.output)")
        let bad = try await CLI.run(["entry", "add", "--config", config, "--ticket", "1", "--technician", "7", "--started-at", "2026-02-30T08:00:00Z",
                               "--duration-seconds", "60"])
        #expect(bad.exitedNormally && bad.status != 0 && bad.output.contains("RFC 3339"), "\(bad.output)")
        #expect(try h.runtime.ledger.workEntries(ticketID: 1).isEmpty)
    }
}

/// Numbers and days in the config are bounded, with the key and line named; a reload with them is refused, not a crash.
@Suite struct ConfigBoundsTests {
    @Test func hugeNumbersAndFarDaysAreRangeErrors() async throws {
        let text = """
        helpdesk:
          url: http://127.0.0.1:9/apirest.php
          user_token: t
        contracts:
          - id: a
            entity: 1
            quota_hours: 99999999999999999
            starts: 2026-01-01
          - id: b
            entity: 1
            quota_hours: 10
            starts: 2026-01-01
            carry_over: { max_hours: 1e300 }
          - id: c
            entity: 1
            quota_hours: -1
            priority: 100000000000
            starts: 1900-01-01
            expires: 2300-01-01
        """
        let error = try #require(throws: ConfigError.self) { try ConfigLoader.parse(text, file: "big.yaml") }
        let lines = error.issues.map(\.description)
        #expect(lines.contains("line 7: contracts[0].quota_hours: must be between 0 and 1000000, got 99999999999999999"), "\(lines)")
        #expect(lines.contains("line 13: contracts[1].carry_over.max_hours: must be between 0 and 1000000, got 1e300"), "\(lines)")
        #expect(lines.contains("line 16: contracts[2].quota_hours: must be between 0 and 1000000, got -1"), "\(lines)")
        #expect(lines.contains("line 17: contracts[2].priority: must be between -1000000 and 1000000, got 100000000000"), "\(lines)")
        #expect(lines.contains("line 18: contracts[2].starts: must lie between 2000 and 2199, got 1900-01-01"), "\(lines)")
        #expect(lines.contains("line 19: contracts[2].expires: must lie between 2000 and 2199, got 2300-01-01"), "\(lines)")

        // The same file on SIGHUP: refused, the running config stays.
        let directory = TemporaryDirectory()
        let good = configYAML(url: "http://127.0.0.1:9/apirest.php", database: directory.path + "/l.sqlite",
                              contracts: "  - {id: alpha, entity: 1, quota_hours: 40, starts: 2026-01-01}")
        let path = directory.write("hourledger.yaml", good)
        let runtime = try Runtime(configuration: try ConfigLoader.parse(good))
        let reloader = ConfigReloader(path: path, runtime: runtime, webhooks: runtime.webhooks, notifier: SystemdNotifier(environment: [:]))
        _ = directory.write("hourledger.yaml", text)
        #expect(await reloader.reload() == false)
        #expect(await runtime.engine.contracts.map(\.id) == ["alpha"])
    }

    @Test func aDuplicateKeyIsOneLineAndADirectoryIsNamed() throws {
        let text = "helpdesk:\n  url: http://h/apirest.php\n  user_token: t\n  user_token: u\ncontracts: []\n"
        let error = try #require(throws: ConfigError.self) { try ConfigLoader.parse(text, file: "dup.yaml") }
        #expect(error.issues.map(\.description) == ["line 3: (yaml): duplicate key 'user_token' in one mapping (the line is its first use)"])
        #expect(!error.description.contains("apirest"))
        let directory = TemporaryDirectory()
        let asDirectory = try #require(throws: ConfigError.self) { try ConfigLoader.load(path: directory.path) }
        #expect(asDirectory.description == "\(directory.path): 1 error\n  (file): is a directory; give the path of the YAML file")
        let missing = try #require(throws: ConfigError.self) { try ConfigLoader.load(path: directory.path + "/nope.yaml") }
        #expect(missing.issues.first?.message == "no such file")
    }
}

/// The hourledger binary, run once to completion.
enum CLI {
    struct Run {
        var status: Int32
        var exitedNormally: Bool
        var output: String
    }

    /// Runs on a thread of its own: waiting for the child on Swift's cooperative pool would starve the fake servers
    /// of this test process, which the child may be talking to.
    static func run(_ arguments: [String], environment: [String: String]? = nil) async throws -> Run {
        try await offPool { try runBlocking(arguments, environment: environment) }
    }

    static func runBlocking(_ arguments: [String], environment: [String: String]? = nil) throws -> Run {
        let process = try ChildProcess(CrashSafetyTests.binary, arguments, environment: environment, output: .pipe)
        let output = process.readAll()
        return Run(status: process.exitCode, exitedNormally: process.exitedNormally, output: output)
    }
}
