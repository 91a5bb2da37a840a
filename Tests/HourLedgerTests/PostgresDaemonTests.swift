import FakeGLPI
import Foundation
import HourLedgerApp
import HourLedgerCore
import HourLedgerPostgres
import HourLedgerUseCases
import PostgresTestServer
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The daemon and the CLI on a PostgreSQL ledger (a real server of the tests' own), configured as an operator would:
/// `database: { kind: postgres, url, password_file }`.
@Suite(.serialized) struct PostgresDaemonTests {
    let contracts = "  - { id: acme, name: ACME, entity: 1, quota_hours: 20, starts: 2026-01-01 }"

    /// The config of `OwnershipTests`, with the ledger on PostgreSQL and its password in a file.
    func yaml(url: String, directory: TemporaryDirectory, location: PostgresLocation, extraHelpdesk: String = "") -> String {
        let passwordFile = directory.write("db-password", (location.password ?? "") + "\n")
        return configYAML(url: url, database: "unused", contracts: contracts, extraHelpdesk: extraHelpdesk).replacingOccurrences(of: "  path: unused", with: """
              kind: postgres
              url: postgres://\(location.user)@\(location.host):\(location.port)/\(location.database)?schema=\(location.schema)&sslmode=disable
              password_file: \(passwordFile)
            """)
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: CrashSafetyTests.binary)))
    func aDaemonOnPostgreSQLSyncsWritesBackOnceAndASecondStandsByUntilTheFirstIsKilled() async throws {
        let location = try PostgresTestServer.start().freshLocation()
        let directory = TemporaryDirectory()
        let server = try await FakeGLPIServer(state: makeFixtureState())
        defer { Task { await server.stop() } }
        server.state.addTicket(1, name: "Laptop & dock", entity: 1, category: 1, groups: [1])
        server.state.addTask(ticket: 1, seconds: 1500, technician: 7, date: HelpdeskContractTests.today(hour: 0))
        let yaml = yaml(url: server.url, directory: directory, location: location)
        let config = directory.write("hourledger.yaml", yaml)
        // The config never shows the password, and check-config opens the ledger.
        #expect(!yaml.contains(location.password ?? "-"))
        let check = try await CLI.run(["check-config", "--config", config])
        #expect(check.exitedNormally && check.status == 0, "\(check.output)")

        // One sync, then a write-back queued by a technician through the CLI's own ledger.
        let sync = try await CLI.run(["sync", "--once", "--config", config])
        #expect(sync.exitedNormally && sync.status == 0, "\(sync.output)")
        let configuration = try ConfigLoader.parse(yaml)
        let ledger = try openLedger(configuration)
        _ = try await ledger.addEntry(NewEntry(ticketID: 1, technician: 7, startedAt: Date().addingTimeInterval(-3600), rawSeconds: 600,
                                               kind: .billable, note: "on site", createdBy: "alice"), now: Date())
        let log = directory.path + "/first.log"
        let first = try CrashSafetyTests.Daemon(config: config, log: log)
        defer { if first.process.isRunning { first.process.signal(SIGKILL) } }
        let leases = try PostgresLedger(location: location)
        func leader() -> String { (try? leases.currentLease()?.holder) ?? "" }
        for _ in 0..<100 where !leader().contains("hourledger serve (pid \(first.process.pid)") { try await Task.sleep(for: .milliseconds(100)) }
        #expect(leader().contains("hourledger serve (pid \(first.process.pid)"), "\(leader())")
        // A second one stands by: it runs, and it writes nothing while the first leads.
        let secondLog = directory.path + "/second.log"
        let second = try CrashSafetyTests.Daemon(config: config, log: secondLog)
        defer { if second.process.isRunning { second.process.signal(SIGKILL) } }
        for _ in 0..<100 where server.state.tasks(ofTicket: 1).count < 2 { try await Task.sleep(for: .milliseconds(100)) }
        #expect(server.state.tasks(ofTicket: 1).count == 2)
        #expect(second.process.isRunning)
        #expect(leader().contains("hourledger serve (pid \(first.process.pid)"))
        // Neither log shows the password.
        for file in [log, secondLog] { #expect(!(try String(contentsOfFile: file, encoding: .utf8)).contains(location.password ?? "-")) }

        // The balance, to the second, read by another process: 1500 s read and 600 s logged, each rounded as the
        // contract says (none: 2100 s).
        let balances = try await CLI.run(["balances", "--config", config, "--format", "csv"])
        let acme = try #require(balances.output.split(separator: "\n").first { $0.hasPrefix("acme,") }, "\(balances.output)")
        #expect(acme.contains(",72000,2100,"), "\(acme)")
        #expect(try ledger.verifyBooks().problems == [])

        // Killed, the first lets go of the ledger at once (the server ends its session): the second leads, and
        // writes nothing again.
        first.process.signal(SIGKILL)
        first.process.waitUntilExit()
        for _ in 0..<100 where !leader().contains("hourledger serve (pid \(second.process.pid)") { try await Task.sleep(for: .milliseconds(100)) }
        #expect(leader().contains("hourledger serve (pid \(second.process.pid)"), "\(leader())")
        try await Task.sleep(for: .seconds(2))
        #expect(second.process.isRunning)
        await second.stop()
        #expect(server.state.tasks(ofTicket: 1).count == 2)
    }

    /// A SQLite ledger with a working month in it (synced tasks, an entry of HourLedger's own with its write-back
    /// waiting, a top-up, a token, the books) copied by the real CLI: every count, balance and entry the same, the
    /// books verify, and the daemon's CLI reads the same balances from PostgreSQL as from the file.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: CrashSafetyTests.binary)))
    func migrateFromSQLiteCopiesEverythingAndProvesIt() async throws {
        let location = try PostgresTestServer.start().freshLocation()
        let directory = TemporaryDirectory()
        let server = try await FakeGLPIServer(state: makeFixtureState())
        defer { Task { await server.stop() } }
        server.state.addTicket(1, name: "Laptop & <dock>", entity: 1, category: 1, groups: [1])
        server.state.addTicket(2, name: "Printer", entity: 1, category: 1, groups: [1])
        server.state.addTask(ticket: 1, seconds: 1500, technician: 7, date: HelpdeskContractTests.today(hour: 0))
        server.state.addTask(ticket: 2, seconds: 61, technician: 8, date: HelpdeskContractTests.today(hour: 0))
        let sqliteYAML = configYAML(url: server.url, database: directory.path + "/ledger.sqlite", contracts: contracts)
        let runtime = try Runtime(configuration: try ConfigLoader.parse(sqliteYAML))
        try await runtime.engine.syncOnce()
        _ = try await runtime.ledger.addEntry(NewEntry(ticketID: 1, technician: 7, startedAt: Date().addingTimeInterval(-600), rawSeconds: 600,
                                                      kind: .billable, note: "on site", createdBy: "alice"), now: Date())
        _ = try await runtime.ledger.addTopUp(contractID: "acme", seconds: 7200, note: "PO 4711", actor: "max", now: Date())
        try runtime.repository.close()
        let sqliteConfig = directory.write("sqlite.yaml", sqliteYAML)
        let postgresConfig = directory.write("postgres.yaml", yaml(url: server.url, directory: directory, location: location))
        _ = try await CLI.run(["token", "create", "--config", sqliteConfig, "--user", "max", "--role", "manager", "--helpdesk-user-id", "3"])

        let migrate = try await CLI.run(["migrate", "--config", postgresConfig, "--from-sqlite", directory.path + "/ledger.sqlite"])
        #expect(migrate.exitedNormally && migrate.status == 0, "\(migrate.output)")
        #expect(migrate.output.contains("exact: every count, balance, top-up and entry is the same"), "\(migrate.output)")
        #expect(migrate.output.contains("entry              3 -> 3"), "\(migrate.output)")
        #expect(migrate.output.contains("outbox             1 -> 1"), "\(migrate.output)")
        let fromFile = try await CLI.run(["balances", "--config", sqliteConfig, "--format", "csv"])
        let fromPostgres = try await CLI.run(["balances", "--config", postgresConfig, "--format", "csv"])
        // Every column the same but the forecast, which moves with the clock between two runs, not with the ledger.
        func ledgerColumns(_ csv: String) -> [[Substring]] {
            csv.split(separator: "\n").map { line in
                var columns = line.split(separator: ",", omittingEmptySubsequences: false)
                if columns.count > 12 { columns.remove(at: 12) }
                return columns
            }
        }
        #expect(fromPostgres.output.hasPrefix("id,period_start,period_end,quota_seconds,used_seconds,raw_seconds,remaining_seconds,percent_used,entry_count,carried_in_seconds,expired_seconds,overage_seconds,depletes_at,"))
        #expect(fromPostgres.status == 0 && ledgerColumns(fromPostgres.output) == ledgerColumns(fromFile.output),
                "\(fromFile.output)\n\(fromPostgres.output)")
        #expect(fromPostgres.output.contains(",72000,2161,2161,77039,"), "\(fromPostgres.output)")  // 20 h + 2 h topped up; 1500 + 61 + 600 s
        let verify = try await CLI.run(["verify", "--config", postgresConfig])
        #expect(verify.status == 0, "\(verify.output)")

        // A second copy into the same ledger is refused and changes nothing.
        let again = try await CLI.run(["migrate", "--config", postgresConfig, "--from-sqlite", directory.path + "/ledger.sqlite"])
        #expect(again.status != 0 && again.output.contains("is not empty"), "\(again.output)")
        #expect(ledgerColumns(try await CLI.run(["balances", "--config", postgresConfig, "--format", "csv"]).output) == ledgerColumns(fromFile.output))
        // The daemon on PostgreSQL delivers the write-back that was waiting in the file, once.
        let daemon = try CrashSafetyTests.Daemon(config: postgresConfig, log: directory.path + "/daemon.log")
        defer { if daemon.process.isRunning { daemon.process.signal(SIGKILL) } }
        for _ in 0..<100 where server.state.tasks(ofTicket: 1).count < 2 { try await Task.sleep(for: .milliseconds(100)) }
        await daemon.stop()
        #expect(server.state.tasks(ofTicket: 1).count == 2)
    }

    @Test func theDatabaseSettingsAreCheckedWhereTheyEnter() throws {
        func refused(_ database: String) -> String {
            let yaml = configYAML(url: "http://127.0.0.1:9", database: "unused", contracts: contracts)
                .replacingOccurrences(of: "  path: unused", with: database)
            do {
                _ = try ConfigLoader.parse(yaml)
                return ""
            } catch {
                return "\(error)"
            }
        }
        #expect(refused("  kind: postgres\n  url: postgres://u:secret@db/ledger").contains("holds a password"))
        #expect(refused("  kind: postgres").contains("kind postgres needs url"))
        #expect(refused("  kind: postgres\n  url: mysql://db/x").contains("must look like postgres://"))
        #expect(refused("  kind: postgres\n  url: postgres://u@db/ledger?schema=Robert');DROP").contains("schema must be a lower-case SQL name"))
        #expect(refused("  kind: oracle").contains("must be sqlite or postgres"))
        #expect(refused("  url: postgres://u@db/ledger").contains("is a PostgreSQL setting"))
        #expect(refused("  kind: postgres\n  url: postgres://u@db/ledger\n  password_file: /nonexistent/x").contains("cannot read secret file"))
        #expect(refused("  kind: postgres\n  url: postgres://u@db/ledger\n  lease_seconds: 1").contains("database.lease_seconds"))
        #expect(refused("  kind: postgres\n  url: postgres://u@db/ledger\n  lease_seconds: 121").contains("database.lease_seconds"))
        #expect(refused("  path: /tmp/x.sqlite\n  lease_seconds: 6").contains("is a PostgreSQL setting"))
        let parsed = try ConfigLoader.parse(configYAML(url: "http://127.0.0.1:9", database: "unused", contracts: contracts)
            .replacingOccurrences(of: "  path: unused", with: "  kind: postgres\n  url: postgres://hl@db.example:6432/ledger?schema=msp"),
            environment: ["HOURLEDGER_DATABASE_PASSWORD": "from-env"])
        #expect(parsed.postgres == PostgresLocation(host: "db.example", port: 6432, user: "hl", password: "from-env", database: "ledger",
                                                    schema: "msp", tls: .prefer))
        #expect(parsed.secretValues.contains("from-env"))
        #expect(parsed.leaseSeconds == 6 && parsed.writeFenceSeconds == parsed.helpdesk.writeFenceSeconds + 6)
        // The unit's HOURLEDGER_DATABASE_PATH does not get in the way of a PostgreSQL ledger: one unit file for both.
        let shared = try ConfigLoader.parse(configYAML(url: "http://127.0.0.1:9", database: "unused", contracts: contracts)
            .replacingOccurrences(of: "  path: unused", with: "  kind: postgres\n  url: postgres://hl@db.example/ledger\n  lease_seconds: 10"),
            environment: ["HOURLEDGER_DATABASE_PATH": "/var/lib/hourledger/ledger.sqlite"])
        #expect(shared.postgres?.host == "db.example" && shared.leaseSeconds == 10)
    }
}

/// TLS to PostgreSQL, against the test server's certificate from a CA of the tests' own (as a private CA is).
@Suite struct PostgresTLSTests {
    @Test func aPrivateCAIsTrustedWhenNamedAndAServerItDidNotSignIsRefused() throws {
        let server = try PostgresTestServer.start()
        let ca = try #require(server.caFile, "openssl could not make the test CA")
        let location = server.freshLocation()
        let url = "postgres://\(location.user)@127.0.0.1:\(location.port)/\(location.database)?schema=\(location.schema)&sslmode=require&sslrootcert=\(ca)"
        let trusted = try PostgresLocation(url: url, password: location.password)
        #expect(trusted.caFile == ca && trusted.tls == .require)
        let ledger = try PostgresLedger(location: trusted)
        let ssl = try ledger.withWritingSession { try $0.rows("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") }
        #expect(try ssl.first?["ssl"] as Bool? == true)
        try ledger.write { try $0.setState("tls.check", "ok") }
        #expect(try ledger.read { try $0.state("tls.check") } == "ok")

        // Without the CA the system's trust store does not know the server: refused, and the message says why.
        let untrusted = try PostgresLocation(url: url.replacingOccurrences(of: "&sslrootcert=\(ca)", with: ""), password: location.password)
        do {
            _ = try PostgresLedger(location: untrusted)
            Issue.record("a server signed by an unknown CA was trusted")
        } catch {
            #expect("\(error)".lowercased().contains("certificate"), "\(error)")
        }
        // sslrootcert without TLS, or a file that is not there, is refused where it enters.
        #expect(throws: PostgresConfigError.self) {
            try PostgresLocation(url: url.replacingOccurrences(of: "sslmode=require", with: "sslmode=disable"), password: nil)
        }
        #expect(throws: PostgresConfigError.self) {
            try PostgresLocation(url: url.replacingOccurrences(of: ca, with: "/nonexistent/ca.pem"), password: nil)
        }
    }
}
