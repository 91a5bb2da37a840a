import FakeGLPI
import FakeITop
import Foundation
import HourLedgerUseCases
import HourLedgerApp
import HourLedgerCore
import Testing

/// `check-config` logs in and checks each right the daemon needs, naming what is missing; `--offline` checks the file.
@Suite(.serialized) struct CheckConfigTests {
    let contracts = "  - { id: acme, name: ACME, entity: 1, quota_hours: 20, starts: 2026-01-01 }"

    func glpiConfig(_ directory: TemporaryDirectory, url: String, appToken: String = "fixture-app-token", credentials: String? = nil) -> String {
        let yaml = configYAML(helpdesk: """
          kind: glpi
          url: \(url)
          app_token: \(appToken)
        \(credentials ?? "  user_token: fixture-user-token")
        """, database: directory.path + "/l.sqlite", contracts: contracts)
        return directory.write("hourledger.yaml", yaml)
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: CrashSafetyTests.binary)))
    func glpiLoginFailuresAreNamedAndTheDocumentedProfileIsChecked() async throws {
        let directory = TemporaryDirectory()
        let server = try await FakeGLPIServer(state: makeFixtureState())
        defer { Task { await server.stop() } }

        let good = try await CLI.run(["check-config", "--config", glpiConfig(directory, url: server.url)])
        #expect(good.exitedNormally && good.status == 0, "\(good.output)")
        #expect(good.output.contains("logged in to \(server.url) as svc-hours (profile \"Contract hours API\")"), "\(good.output)")
        for need in ["read tickets", "read tasks", "read entities", "read groups", "read ITIL categories", "see every ticket",
                     "add private tasks to any ticket", "update the tasks it wrote", "purge the tasks of deleted entries"] {
            #expect(good.output.contains("ok      \(need)"), "\(need): \(good.output)")
        }

        // GLPI's Technician profile plus Contract READ, as recorded: no READ on ITIL categories.
        server.state.setProfile(FakeGLPIState.recordedProfile)
        let technician = try await CLI.run(["check-config", "--config", glpiConfig(directory, url: server.url)])
        #expect(technician.exitedNormally && technician.status != 0)
        #expect(technician.output.contains("MISSING read ITIL categories: GLPI answered ERROR_RIGHT_MISSING; grant Setup > Dropdowns > ITIL categories: Read"),
                "\(technician.output)")
        #expect(technician.output.contains("1 right missing"))
        // A profile that cannot add tasks is named too, though nothing is written to find out.
        server.state.setProfile(FakeGLPIState.documentedProfile.merging(["task": 8192 | 1]) { $1 })
        let readOnly = try await CLI.run(["check-config", "--config", glpiConfig(directory, url: server.url)])
        #expect(readOnly.output.contains("MISSING add private tasks to any ticket: grant Assistance > Tasks: Add to all tickets"), "\(readOnly.output)")
        #expect(server.state.requests.allSatisfy { $0.method == "GET" })
        server.state.setProfile(FakeGLPIState.documentedProfile)

        for (url, appToken, credentials, expected) in [
            (server.url, "wrong", nil, "GLPI refused the app_token"),
            (server.url, "fixture-app-token", "  user_token: wrong", "GLPI refused the user_token"),
            (server.url, "fixture-app-token", "  username: svc-hours\n  password: wrong", "GLPI refused the username or password"),
            ("http://127.0.0.1:9/apirest.php", "fixture-app-token", nil, "cannot reach GLPI at http://127.0.0.1:9/apirest.php"),
            ("http://nonexistent.invalid/apirest.php", "fixture-app-token", nil, "cannot reach GLPI at http://nonexistent.invalid/apirest.php"),
            ("http://127.0.0.1:\(server.port)/glpi/apirest.php", "fixture-app-token", nil, "does not answer as GLPI's REST API"),
        ] {
            let run = try await CLI.run(["check-config", "--config", glpiConfig(directory, url: url, appToken: appToken, credentials: credentials)])
            #expect(run.exitedNormally && run.status != 0, "\(expected): \(run.output)")
            #expect(run.output.contains(expected), "\(expected): \(run.output)")
            #expect(!run.output.contains("fixture-user-token") && !run.output.contains("wrong\n"))
        }
        let offline = try await CLI.run(["check-config", "--offline", "--config", glpiConfig(directory, url: "http://127.0.0.1:9/apirest.php")])
        #expect(offline.status == 0 && offline.output.contains("the helpdesk was not contacted"), "\(offline.output)")
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: CrashSafetyTests.binary)))
    func anITopLoginFailureIsNotReportedAsARefusedRule() async throws {
        let directory = TemporaryDirectory()
        let server = try await FakeITopServer(state: try makeITopFixtureState())
        defer { Task { await server.stop() } }
        func config(_ login: String, _ password: String, oql: String = ITopEndToEndTests.oql) -> String {
            let contracts = """
              - { id: rule, name: Rule, match: { oql: "\(oql)" }, quota_hours: 10, starts: 2026-06-01, timezone: Europe/Paris }
            """
            return directory.write("hourledger.yaml", itopConfigYAML(url: server.url, database: directory.path + "/l.sqlite", contracts: contracts)
                .replacingOccurrences(of: "username: hours-daemon", with: "username: \(login)")
                .replacingOccurrences(of: "password: Daemon-Passw0rd!", with: "password: \(password)"))
        }
        let good = try await CLI.run(["check-config", "--config", config("hours-daemon", "Daemon-Passw0rd!")])
        #expect(good.status == 0, "\(good.output)")
        #expect(good.output.contains("ok      read UserRequest") && good.output.contains("ok      1 query rule accepted"), "\(good.output)")
        #expect(good.output.contains("unchecked append to private logs"))

        let wrong = try await CLI.run(["check-config", "--config", config("hours-daemon", "nope")])
        #expect(wrong.status != 0 && wrong.output.contains("iTop refused the username or password (Invalid login)"), "\(wrong.output)")
        #expect(!wrong.output.contains("oql") && !wrong.output.contains("REFUSED"))
        let noREST = try await CLI.run(["check-config", "--config", config("agent-no-rest", "Agent-Passw0rd!")])
        #expect(noREST.status != 0 && noREST.output.contains("give it the profile REST Services User"), "\(noREST.output)")
        let badRule = try await CLI.run(["check-config", "--config", config("hours-daemon", "Daemon-Passw0rd!", oql: "SELECT UserRequest WHERE nosuchfield = 1")])
        #expect(badRule.status != 0 && badRule.output.contains("REFUSED contracts[rule].match.oql"), "\(badRule.output)")
    }
}

/// The recorded Technician + Contract READ profile still syncs: category ids are learned from the tickets.
@Suite struct GLPIProfileTests {
    @Test func withoutReadOnCategoriesTicketsAreStillMatchedByCategory() async throws {
        let h = try await GLPIHarness.start(contracts: """
              - { id: hw, name: Hardware, entity: 1, match: { categories: [1] }, quota_hours: 20, starts: 2026-01-01 }
              - { id: sw, name: Software, entity: 1, match: { categories: [2] }, quota_hours: 20, starts: 2026-01-01 }
            """) { glpi in
            glpi.setProfile(FakeGLPIState.recordedProfile)
            glpi.addTicket(1, name: "Laptop", entity: 1, category: 1, groups: [1])
            glpi.addTicket(2, name: "Mail", entity: 1, category: 2, groups: [1])
            glpi.addTicket(3, name: "Screen", entity: 1, category: 1, groups: [1])
        }
        defer { Task { await h.stop() } }
        let matches = try h.runtime.ledger.ticketMatches()
        #expect([1, 2, 3].map { matches[$0]?.contractID } == ["hw", "sw", "hw"])
        // One getItem per category name, not per ticket.
        #expect(h.glpi.requests.filter { $0.target.hasPrefix("/apirest.php/Ticket/") && !$0.target.contains("Task") }.count == 2)
    }
}
