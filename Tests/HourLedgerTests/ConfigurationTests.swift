import Foundation
import HourLedgerUseCases
import HourLedgerApp
import HourLedgerCore
import Testing

@Suite struct ConfigurationTests {
    static var exampleFile: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Config/hourledger.example.yaml").path
    }

    /// The README's first command must start the daemon on a fresh machine: its environment alone satisfies the example.
    @Test func theReadmeRunCommandLoadsTheExampleConfig() throws {
        let readme = URL(fileURLWithPath: Self.exampleFile).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("README.md")
        let text = try String(contentsOf: readme, encoding: .utf8)
        let command = try #require(text.components(separatedBy: "```sh\n").dropFirst().first?.components(separatedBy: "\n").first)
        #expect(command.contains("swift run hourledger serve --config Config/hourledger.example.yaml"))
        var environment: [String: String] = [:]
        for match in command.matches(of: /(HOURLEDGER_[A-Z_]+)=(\S+)/) { environment[String(match.1)] = String(match.2) }
        let config = try ConfigLoader.load(path: Self.exampleFile, environment: environment)
        #expect(config.databasePath == ".state/ledger.sqlite")
    }

    /// CI runs exactly the README's test command, which installs what the browser tests need.
    @Test func ciRunsTheReadmeTestCommand() throws {
        let root = URL(fileURLWithPath: Self.exampleFile).deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let command = try #require(readme.components(separatedBy: "```sh\n").dropFirst(2).first?.components(separatedBy: "\n").first)
        let ci = try String(contentsOf: root.appendingPathComponent(".ci/run"), encoding: .utf8)
        #expect(ci.components(separatedBy: "\n").contains(command))
        #expect(command.contains("chromium chromium-driver") && command.contains("selenium") && command.contains("swift test")
                && command.contains("Tests/Browser/dashboard_test.py"))
    }

    @Test func exampleConfigLoadsWithSecretsFromFiles() throws {
        let directory = TemporaryDirectory()
        _ = directory.write("app-token", "app-secret-123\n")
        _ = directory.write("user-token", "user-secret-456\n")
        _ = directory.write("alert-webhook-secret", "hook-secret-789\n")
        let text = try String(contentsOfFile: Self.exampleFile, encoding: .utf8)
            .replacingOccurrences(of: "/etc/hourledger/", with: directory.path + "/")
        let config = try ConfigLoader.parse(text, file: "example.yaml")
        #expect(config.helpdesk.appToken?.value == "app-secret-123")
        #expect(config.helpdesk.credentials == .userToken(Secret("user-secret-456")))
        #expect(config.contracts.map(\.id) == ["acme-2026", "beta-2026", "gamma-payg", "delta-unlimited"])
        let acme = config.contracts[0]
        #expect(acme.quotaSeconds == 72000)
        #expect(acme.match == MatchRule(groups: [1], categories: [1, 2]))
        #expect(acme.rounding == RoundingPolicy(incrementSeconds: 900, mode: .up))
        #expect(acme.timeZone == "Europe/Paris" && acme.includeSubentities && acme.priority == 10)
        #expect(config.contracts[1].expires == CivilDate("2026-12-31"))
        #expect(acme.billing == Billing(mode: .block, currency: "EUR", overageRate: 12000, blockFee: 180_000, technicianRates: [7: 15000]))
        #expect(acme.carryOver == CarryOverPolicy(maxSeconds: 36000, expiresAfterPeriods: 1))
        #expect(acme.alertThresholds == [50, 80, 100])
        #expect(config.contracts[2].billing == Billing(mode: .payg, rate: 9500, lines: .ticket) && config.contracts[2].quotaSeconds == 0)
        #expect(config.contracts[3].billing.mode == .unlimited)
        #expect(config.contracts[2].approvalRequired && !acme.customersSeeMoney && acme.visibleTo == nil)
        #expect(config.roles == StaffRoles(managerProfiles: ["Super-Admin", "Admin", "Supervisor"], technicianProfiles: ["Technician"]))
        #expect(config.dashboard.idleSeconds == 1800 && config.dashboard.maxSeconds == 12 * 3600 && config.dashboard.maxFailuresPerLogin == 5)
        #expect(config.alerts.followup && config.alerts.maxAttempts == 12)
        #expect(config.alerts.webhooks == [AlertWebhook(name: "ops", url: "https://hooks.example.com/hourledger", secret: Secret("hook-secret-789"))])
        // Secrets never print.
        #expect(!"\(config)".contains("app-secret-123") && !"\(config)".contains("user-secret-456") && !"\(config)".contains("hook-secret-789"))
    }

    @Test func environmentOverridesFileValuesAndSecrets() throws {
        let text = try String(contentsOfFile: Self.exampleFile, encoding: .utf8)
        let config = try ConfigLoader.parse(text, environment: [
            "HOURLEDGER_HELPDESK_APP_TOKEN": "env-app", "HOURLEDGER_HELPDESK_USER_TOKEN": "env-user",
            "HOURLEDGER_DATABASE_PATH": "/tmp/x.sqlite", "HOURLEDGER_HTTP_PORT": "9999", "HOURLEDGER_HELPDESK_URL": "https://glpi.example/apirest.php",
            "HOURLEDGER_WEBHOOK_OPS_SECRET": "env-hook",
        ])
        #expect(config.alerts.webhooks.first?.secret == Secret("env-hook"))
        #expect(config.databasePath == "/tmp/x.sqlite")
        #expect(config.httpPort == 9999)
        #expect(config.helpdesk.url == "https://glpi.example/apirest.php")
        #expect(config.helpdesk.appToken == Secret("env-app"))
    }

    @Test func everyProblemIsReportedWithItsKeyAndLine() throws {
        let text = """
        helpdesk:
          kind: glpi
          url: http://127.0.0.1/apirest.php
          user_token: t
          poll_intervall_seconds: 60
        contracts:
          - id: a
            entity: one
            quota_hours: 10
            starts: 2026-01-01
            timezone: Mars/Olympus
          - id: a
            entity: 2
            quota_hours: 5
            starts: 2026-02-30
            rounding: { increment_minutes: 0, mode: up }
          - id: c
            entity: 3
            quota_hours: 5
            starts: 2026-01-01
            rounding: { increment_minutes: 15, mode: sideways }
        """
        let error = try #require(throws: ConfigError.self) { try ConfigLoader.parse(text, file: "bad.yaml") }
        let lines = error.issues.map(\.description)
        #expect(lines.contains("line 5: helpdesk.poll_intervall_seconds: unknown key (did you mean 'poll_interval_seconds'?); allowed: " + "kind, url, app_token, app_token_file, user_token, user_token_file, username, password, password_file, poll_interval_seconds, overlap_seconds, timezone, verify_tls, ca_bundle, connect_timeout_seconds, timeout_seconds, page_size, concurrency, task_category, classes, webhook_secret, webhook_secret_file, webhook_max_age_seconds, webhook_max_body_bytes, write_grace_seconds, deletion_check_seconds, sign_in_lookup, task_page_size, reconcile_every_hours"))
        #expect(lines.contains("line 8: contracts[0].entity: must be an integer, got 'one'"))
        #expect(lines.contains("line 11: contracts[0].timezone: unknown time zone 'Mars/Olympus'"))
        #expect(lines.contains("line 15: contracts[1].starts: not a valid date '2026-02-30' (YYYY-MM-DD)"))
        #expect(lines.contains("line 16: contracts[1].rounding.increment_minutes: impossible increment 0: must be 1 to 1440 minutes"))
        #expect(lines.contains("line 21: contracts[2].rounding.mode: must be up, nearest or none, got 'sideways'"))
        #expect(error.description.hasPrefix("bad.yaml: 6 errors"))
    }

    @Test func duplicateContractIdsAndMissingCredentialsAreRefused() throws {
        let text = """
        helpdesk: { url: "http://h/apirest.php" }
        contracts:
          - { id: a, entity: 1, quota_hours: 1, starts: 2026-01-01 }
          - { id: a, entity: 2, quota_hours: 1, starts: 2026-01-01 }
        """
        let error = try #require(throws: ConfigError.self) { try ConfigLoader.parse(text) }
        #expect(error.issues.map(\.description) == [
            "line 1: helpdesk: no credentials: give user_token(_file), or username and password(_file)",
            "line 4: contracts[1].id: duplicate contract id 'a' (first at contracts[0])",
        ])
    }

    /// A misspelt kind used to become GLPI silently.
    @Test func anUnknownHelpdeskKindIsRefusedNamingTheKey() throws {
        let text = """
        helpdesk: { kind: itop3, url: "http://h/webservices/rest.php", user_token: "t" }
        contracts:
          - { id: a, entity: 1, quota_hours: 1, starts: 2026-01-01 }
        """
        let error = try #require(throws: ConfigError.self) { try ConfigLoader.parse(text) }
        #expect(error.issues.map(\.description).first == "line 1: helpdesk.kind: unsupported helpdesk kind 'itop3'; supported: glpi, itop")
    }

    @Test func brokenYAMLNamesTheLine() throws {
        let error = try #require(throws: ConfigError.self) { try ConfigLoader.parse("helpdesk:\n  url: [unclosed\n") }
        #expect(error.issues.first?.path == "(yaml)")
        #expect(error.issues.first?.line != nil)
    }

    @Test func billingMistakesAreNamedWithTheirKeys() throws {
        let yaml = configYAML(url: "http://x/apirest.php", database: "/tmp/unused.sqlite", contracts: """
              - { id: a, entity: 1, starts: 2026-01-01, billing: block }
              - { id: b, entity: 1, starts: 2026-01-01, billing: payg, quota_hours: 0 }
              - { id: c, entity: 1, quota_hours: 5, starts: 2026-01-01, period: none, currency: euro,
                  carry_over: { max_hours: 2 }, alerts: { thresholds: [80, 80, 0] }, rates: { by_technician: { x: 1 } } }
              - { id: d, entity: 1, starts: 2026-01-01, billing: unlimited, rate: 100, alerts: { thresholds: [50] } }
              - { id: e, entity: 1, starts: 2026-01-01, billing: hourly, customer: "" }
            """) + """

            alerts:
              webhooks:
                - { name: ops, url: "ftp://x" }
                - { name: ops, url: "https://y" }
            """
        #expect(throws: ConfigError.self) { try ConfigLoader.parse(yaml) }
        do {
            _ = try ConfigLoader.parse(yaml)
        } catch let error as ConfigError {
            let paths = error.issues.map(\.path)
            for expected in ["contracts[0].quota_hours", "contracts[1].rate", "contracts[2].currency", "contracts[2].carry_over",
                             "contracts[2].alerts.thresholds", "contracts[2].alerts.thresholds[2]", "contracts[2].rates.by_technician",
                             "contracts[3].billing", "contracts[3].alerts", "contracts[4].billing", "contracts[4].customer", "alerts.webhooks[0].url",
                             "alerts.webhooks[1].name"] {
                #expect(paths.contains(expected), "no issue for \(expected): \(error)")
            }
        }
    }
}

@Suite struct ITopConfigurationTests {
    static var exampleFile: String {
        URL(fileURLWithPath: ConfigurationTests.exampleFile).deletingLastPathComponent().appendingPathComponent("hourledger.itop.example.yaml").path
    }

    @Test func theITopExampleLoadsWithItsRuleKeys() throws {
        let directory = TemporaryDirectory()
        _ = directory.write("itop-password", "itop-pass-1\n")
        _ = directory.write("itop-webhook-secret", "itop-hook-2\n")
        let text = try String(contentsOfFile: Self.exampleFile, encoding: .utf8).replacingOccurrences(of: "/etc/hourledger/", with: directory.path + "/")
        let config = try ConfigLoader.parse(text, file: "itop.yaml")
        #expect(config.helpdesk.kind == .itop && config.helpdesk.timeZone == "Europe/Paris" && config.helpdesk.pageSize == 500)
        #expect(config.helpdesk.credentials == .password(login: "hours-daemon", password: Secret("itop-pass-1")))
        #expect(config.helpdesk.webhookSecret == Secret("itop-hook-2") && config.helpdesk.classes == ["UserRequest", "Incident"])
        #expect(config.contracts.map(\.id) == ["globex-2026", "initech-access", "initech-block"])
        #expect(config.contracts[0].entity == 2 && config.contracts[0].match == MatchRule(groups: [10, 11], services: [1]))
        #expect(config.contracts[1].entity == nil && config.contracts[1].match.query?.hasPrefix("SELECT UserRequest AS u JOIN Organization") == true)
        #expect(config.contracts[2].match == MatchRule(categories: [1, 2], classes: ["UserRequest"]))
        #expect(!"\(config)".contains("itop-pass-1") && !"\(config)".contains("itop-hook-2"))
    }

    @Test func rulesAndSettingsOfTheOtherHelpdeskAreNamedAsErrors() throws {
        func problems(_ helpdesk: String, _ contract: String) -> [String] {
            let text = "helpdesk:\n\(helpdesk)\ncontracts:\n  - { id: c, quota_hours: 1, starts: 2026-01-01, \(contract) }\n"
            do {
                _ = try ConfigLoader.parse(text)
                return []
            } catch let error as ConfigError {
                return error.issues.map { "\($0.path): \($0.message)" }
            } catch { return ["\(error)"] }
        }
        let itop = "  kind: itop\n  url: https://itop.example.com\n  username: u\n  password: p\n  timezone: Europe/Paris"
        let glpi = "  kind: glpi\n  url: https://glpi.example.com/apirest.php\n  user_token: t"
        #expect(problems(itop, "org: 3, match: { teams: [1], subcategories: [2] }") == [])
        #expect(problems(itop, "entity: 3").contains { $0.hasPrefix("contracts[0].entity: unknown key") })
        #expect(problems(itop, "match: { teams: [1] }") == ["contracts[0].org: missing: give org (the iTop organization id), match.orgs or match.oql, so the contract covers one customer"])
        #expect(problems(itop, "org: 3, match: { groups: [1] }").contains { $0.hasPrefix("contracts[0].match.groups: unknown key") })
        #expect(problems(itop, "match: { oql: \"UserRequest WHERE org_id = 3\" }") == ["contracts[0].match.oql: an OQL rule starts with SELECT <Class>, got 'UserRequest WHERE org_id = 3'"])
        #expect(problems(glpi, "entity: 1, match: { oql: \"SELECT UserRequest\" }").contains { $0.hasPrefix("contracts[0].match.oql: unknown key") })
        #expect(problems(glpi, "entity: 1, match: { teams: [1] }").contains { $0.hasPrefix("contracts[0].match.teams: unknown key") })
        let noZone = itop.replacingOccurrences(of: "\n  timezone: Europe/Paris", with: "")
        #expect(problems(noZone, "org: 3") == ["helpdesk.timezone: missing: iTop's dates carry no offset, give its time zone (its 'timezone' setting, e.g. Europe/Paris)"])
        #expect(problems(itop + "\n  user_token: x", "org: 3").contains("helpdesk.user_token: is a GLPI setting; iTop takes username and password(_file)"))
        #expect(problems(glpi + "\n  classes: [UserRequest]", "entity: 1") == ["helpdesk.classes: is an iTop setting (the ticket classes polled)"])
    }
}
