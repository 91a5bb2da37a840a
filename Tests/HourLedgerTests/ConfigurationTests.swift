import Foundation
import HourLedgerApp
import HourLedgerCore
import Testing

@Suite struct ConfigurationTests {
    static var exampleFile: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Config/hourledger.example.yaml").path
    }

    @Test func exampleConfigLoadsWithSecretsFromFiles() throws {
        let directory = TemporaryDirectory()
        _ = directory.write("app-token", "app-secret-123\n")
        _ = directory.write("user-token", "user-secret-456\n")
        let text = try String(contentsOfFile: Self.exampleFile, encoding: .utf8)
            .replacingOccurrences(of: "/etc/hourledger/", with: directory.path + "/")
        let config = try ConfigLoader.parse(text, file: "example.yaml")
        #expect(config.helpdesk.appToken?.value == "app-secret-123")
        #expect(config.helpdesk.credentials == .userToken(Secret("user-secret-456")))
        #expect(config.contracts.map(\.id) == ["acme-2026", "beta-2026"])
        let acme = config.contracts[0]
        #expect(acme.quotaSeconds == 72000)
        #expect(acme.match == MatchRule(groups: [1], categories: [1, 2]))
        #expect(acme.rounding == RoundingPolicy(incrementSeconds: 900, mode: .up))
        #expect(acme.timeZone == "Europe/Paris" && acme.includeSubentities && acme.priority == 10)
        #expect(config.contracts[1].expires == CivilDate("2026-12-31"))
        // Secrets never print.
        #expect(!"\(config)".contains("app-secret-123") && !"\(config)".contains("user-secret-456"))
    }

    @Test func environmentOverridesFileValuesAndSecrets() throws {
        let text = try String(contentsOfFile: Self.exampleFile, encoding: .utf8)
        let config = try ConfigLoader.parse(text, environment: [
            "HOURLEDGER_HELPDESK_APP_TOKEN": "env-app", "HOURLEDGER_HELPDESK_USER_TOKEN": "env-user",
            "HOURLEDGER_DATABASE_PATH": "/tmp/x.sqlite", "HOURLEDGER_HTTP_PORT": "9999", "HOURLEDGER_HELPDESK_URL": "https://glpi.example/apirest.php",
        ])
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
        #expect(lines.contains("line 5: helpdesk.poll_intervall_seconds: unknown key (did you mean 'poll_interval_seconds'?); allowed: " + "kind, url, app_token, app_token_file, user_token, user_token_file, username, password, password_file, poll_interval_seconds, overlap_seconds, timezone, verify_tls, ca_bundle, connect_timeout_seconds, timeout_seconds, page_size, concurrency, task_category"))
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

    @Test func brokenYAMLNamesTheLine() throws {
        let error = try #require(throws: ConfigError.self) { try ConfigLoader.parse("helpdesk:\n  url: [unclosed\n") }
        #expect(error.issues.first?.path == "(yaml)")
        #expect(error.issues.first?.line != nil)
    }
}
