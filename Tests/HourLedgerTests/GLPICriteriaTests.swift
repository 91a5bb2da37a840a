import FakeGLPI
import Foundation
import HourLedgerApp
import HourLedgerCore
import HourLedgerGLPI
import HourLedgerUseCases
import Testing

/// Contract rules given as GLPI search criteria, evaluated by GLPI's search: the exact requests, the reasons that
/// name the rule, tickets moving with their hours, and refusals at load, at check-config and on reload.
@Suite struct GLPICriteriaTests {
    /// Requests (type 2) of entity 1 go to the request contract, the rest of entity 1 to the general one.
    let contracts = """
      - { id: acme, name: ACME, entity: 1, quota_hours: 20, starts: 2026-01-01 }
      - { id: acme-requests, name: ACME requests, entity: 1, priority: 10, quota_hours: 5, starts: 2026-01-01,
          match: { glpi_criteria: [ { field: 14, searchtype: equals, value: 2 }, { link: AND NOT, field: 12, searchtype: equals, value: 6 } ] } }
    """
    static let rule = #"field 14 equals "2" AND NOT field 12 equals "6""#
    static let ruleParameters = "criteria[0][criteria][0][field]=14&criteria[0][criteria][0][searchtype]=equals"
        + "&criteria[0][criteria][0][value]=2&criteria[0][criteria][1][link]=AND NOT&criteria[0][criteria][1][field]=12"
        + "&criteria[0][criteria][1][searchtype]=equals&criteria[0][criteria][1][value]=6"

    @Test func theCanonicalLineRoundTripsAndBadCriteriaAreNamed() throws {
        let rule = try GLPICriteria(criteria: [.init(field: 14, searchtype: "equals", value: "2"),
                                               .init(link: "OR", field: 1, searchtype: "contains", value: #"say "hi" \ back"#)])
        #expect(rule.description == #"field 14 equals "2" OR field 1 contains "say \"hi\" \\ back""#)
        #expect(try GLPICriteria(text: rule.description) == rule)
        #expect(try GLPICriteria(text: Self.rule).criteria.map(\.link) == [nil, "AND NOT"])
        for (criteria, message) in [
            ([GLPICriteria.Criterion(field: 14, searchtype: "is", value: "2")], "[0].searchtype must be one of contains"),
            ([.init(link: "OR", field: 14, searchtype: "equals", value: "2")], "[0].link: the first criterion joins nothing"),
            ([.init(field: 14, searchtype: "equals", value: "2"), .init(link: "XOR", field: 12, searchtype: "equals", value: "1")], "[1].link must be one of"),
            ([.init(field: 0, searchtype: "equals", value: "2")], "[0].field must be a search option id"),
            ([.init(field: 1, searchtype: "contains", value: "two\nlines")], "[0].value must be one line"),
            ([], "gives no criteria"),
        ] {
            #expect(throws: GLPICriteria.Problem.self) { try GLPICriteria(criteria: criteria) }
            do { _ = try GLPICriteria(criteria: criteria) } catch { #expect("\(error)".contains(message), "\(error)") }
        }
    }

    @Test func theConfigNamesABadCriterionByItsPath() throws {
        func parse(_ match: String) throws {
            _ = try ConfigLoader.parse(configYAML(url: "http://127.0.0.1:9/apirest.php", database: "/tmp/unused.sqlite", contracts: """
              - { id: r, name: R, entity: 1, quota_hours: 5, starts: 2026-01-01, match: { glpi_criteria: \(match) } }
            """))
        }
        for (match, message) in [
            ("[ { field: 14, searchtype: is, value: 2 } ]", "contracts[0].match.glpi_criteria"),
            ("[ { field: 14, value: 2 } ]", "contracts[0].match.glpi_criteria[0].searchtype"),
            ("[ { field: 14, searchtype: equals, value: 2, extra: 1 } ]", "extra"),
            ("[ { field: many, searchtype: equals, value: 2 } ]", "contracts[0].match.glpi_criteria[0].field"),
            ("{ field: 14 }", "must be a list of criteria"),
        ] {
            do {
                try parse(match)
                Issue.record("accepted \(match)")
            } catch {
                #expect("\(error)".contains(message), "\(match): \(error)")
            }
        }
        #expect(throws: Never.self) { try parse("[ { field: 14, searchtype: equals, value: 2 } ]") }
    }

    @Test func glpiSelectsTheTicketsAndTheyMoveWithTheirHoursWhenTheTypeChanges() async throws {
        let h = try await GLPIHarness.start(contracts: contracts) { glpi in
            glpi.addTicket(1, name: "Mail down", entity: 1, category: 1, groups: [1], type: 1)
            glpi.addTicket(2, name: "New laptop", entity: 1, category: 1, groups: [1], type: 2)
            glpi.addTicket(3, name: "Old request", entity: 1, category: 1, groups: [1], status: 6, type: 2)
            glpi.addTicket(4, name: "Other customer's request", entity: 2, category: 1, groups: [1], type: 2)
            glpi.addTask(ticket: 1, seconds: 3600, technician: 7, date: "2026-11-20 09:00:00")
            glpi.addTask(ticket: 2, seconds: 1800, technician: 7, date: "2026-11-20 10:00:00")
        }
        defer { Task { await h.stop() } }
        // The first sync asked the rule once, in full, as one nested group.
        let ruleSearches = h.glpi.requests.map(\.target).filter { $0.contains("[criteria][0][field]=14") }
        #expect(ruleSearches == ["/apirest.php/search/Ticket?" + Self.ruleParameters + "&forcedisplay[0]=2&sort=2&order=ASC&range=0-999"])
        var matches = try h.runtime.ledger.ticketMatches()
        #expect(matches.mapValues(\.contractID) == [1: "acme", 2: "acme-requests", 3: "acme", 4: nil])
        #expect(matches[2]?.reason == "contract acme-requests: entity 1 AND GLPI criteria \"\(Self.rule)\"; also matched acme, won on priority 10",
                "\(matches[2]?.reason ?? "")")
        #expect(matches[3]?.reason == "contract acme: entity 1", "\(matches[3]?.reason ?? "")")  // closed: the rule's AND NOT left it out
        let requests = h.contracts.first { $0.id == "acme-requests" }!
        let general = h.contracts.first { $0.id == "acme" }!
        let at = Date.utc("2026-11-21 00:00:00")
        #expect(try h.runtime.ledger.balance(of: requests, at: at)?.usedSeconds == 1800)
        #expect(try h.runtime.ledger.balance(of: general, at: at)?.usedSeconds == 3600)

        // Ticket 1 turns out to be a request: the next poll asks the rule for what changed since, and the hour moves.
        h.glpi.advance(seconds: 60)
        h.glpi.updateTicket(1) { $0.type = 2 }
        h.glpi.clearRequests()
        let report = try await h.runtime.engine.syncOnce()
        let incremental = h.glpi.requests.map(\.target).filter { $0.contains("[criteria][0][field]=14") }
        #expect(incremental.count == 1 && incremental[0].contains("&criteria[1][link]=AND&criteria[1][field]=19&criteria[1][searchtype]=morethan"),
                "\(incremental)")
        matches = try h.runtime.ledger.ticketMatches()
        #expect(matches[1]?.contractID == "acme-requests" && report.contractMoves == 1)
        #expect(try h.runtime.ledger.balance(of: requests, at: at)?.usedSeconds == 5400)
        #expect(try h.runtime.ledger.balance(of: general, at: at)?.usedSeconds == 0)
        let move = try #require(try h.runtime.ledger.moves(ticketID: 1).last)
        #expect((move.fromContract, move.toContract, move.rawSeconds) == ("acme", "acme-requests", 3600))
    }

    /// A field GLPI does not know is refused by GLPI ("Bad field ID"): check-config names the rule, a reload that brings
    /// it is refused whole, and the running rules stay.
    @Test func aFieldGLPIRefusesIsAnErrorAtCheckConfigAndOnReload() async throws {
        let bad = contracts.replacingOccurrences(of: "field: 14,", with: "field: 99999,")
        let h = try await GLPIHarness.start(contracts: contracts)
        defer { Task { await h.stop() } }
        h.glpi.clearRequests()
        #expect(await h.runtime.validateQueryRules().isEmpty)
        // Narrowed to ticket 0: GLPI checks every field and answers no rows.
        #expect(h.glpi.requests.map(\.target) == ["/apirest.php/search/Ticket?" + Self.ruleParameters
            + "&criteria[1][link]=AND&criteria[1][criteria][0][field]=2&criteria[1][criteria][0][searchtype]=equals&criteria[1][criteria][0][value]=0"
            + "&forcedisplay[0]=2&sort=2&order=ASC&range=0-999"], "\(h.glpi.requests.map(\.target))")

        let config = h.directory.write("bad.yaml", configYAML(url: h.server.url, database: h.directory.path + "/l.sqlite", contracts: bad))
        let badRuntime = try Runtime(configuration: try ConfigLoader.load(path: config))
        let problems = await badRuntime.validateQueryRules()
        #expect(problems.map(\.contractID) == ["acme-requests"] && problems.first?.error.contains("Bad field ID") == true, "\(problems)")

        if FileManager.default.isExecutableFile(atPath: CrashSafetyTests.binary) {
            let run = try await CLI.run(["check-config", "--config", config])
            #expect(run.status != 0 && run.output.contains("REFUSED contracts[acme-requests].match.glpi_criteria:") && run.output.contains("Bad field ID"),
                    "\(run.output)")
        }

        let path = h.directory.write("hourledger.yaml", configYAML(url: h.server.url, database: h.directory.path + "/l.sqlite", contracts: contracts))
        let reloader = ConfigReloader(path: path, runtime: h.runtime, webhooks: h.runtime.webhooks, notifier: SystemdNotifier(environment: [:]))
        _ = h.directory.write("hourledger.yaml", configYAML(url: h.server.url, database: h.directory.path + "/l.sqlite", contracts: bad))
        #expect(await reloader.reload() == false)
        #expect(h.runtime.configuration.contracts.first { $0.id == "acme-requests" }?.match.query == Self.rule)
    }
}

/// Tickets linked by hand to a GLPI contract (Ticket_Contract, search option 193) count on the HourLedger contract
/// that names it with `glpi_contract`, whatever the rules say; a link added or removed moves the ticket and its hours
/// at the next poll, though the ticket's date_mod did not move.
@Suite struct ExplicitLinkTests {
    let contracts = """
      - { id: acme, name: ACME, entity: 1, priority: 50, quota_hours: 20, starts: 2026-01-01 }
      - { id: beta, name: Beta, entity: 2, quota_hours: 20, starts: 2026-01-01 }
      - { id: acme-project, name: ACME project, entity: 1, glpi_contract: 1, match: { groups: [99] }, quota_hours: 10, starts: 2026-01-01 }
    """

    @Test func aLinkWinsOverRulesAndALinkAddedOrRemovedMovesTheHours() async throws {
        let h = try await GLPIHarness.start(contracts: contracts) { glpi in
            glpi.addTicket(1, name: "Migration", entity: 1, category: 1, groups: [1])
            glpi.addTicket(2, name: "Beta's part", entity: 2, category: 1, groups: [1])
            glpi.addTicket(3, name: "Printer", entity: 1, category: 1, groups: [1])
            glpi.addTask(ticket: 1, seconds: 3600, technician: 7, date: "2026-11-20 09:00:00")
            glpi.addTask(ticket: 2, seconds: 1200, technician: 7, date: "2026-11-20 10:00:00")
            glpi.addTask(ticket: 3, seconds: 1800, technician: 7, date: "2026-11-20 11:00:00")
            glpi.linkContract(1, ticket: 1)
            glpi.linkContract(1, ticket: 2)
        }
        defer { Task { await h.stop() } }
        #expect(h.glpi.requests.map(\.target).contains(
            "/apirest.php/search/Ticket?criteria[0][field]=193&criteria[0][searchtype]=equals&criteria[0][value]=1&forcedisplay[0]=2&sort=2&order=ASC&range=0-999"))
        var matches = try h.runtime.ledger.ticketMatches()
        #expect(matches.mapValues(\.contractID) == [1: "acme-project", 2: "acme-project", 3: "acme"])
        #expect(matches[1]?.reason == "contract acme-project: the ticket is linked to contract 1 in the helpdesk, which wins over rules")
        let at = Date.utc("2026-11-21 00:00:00")
        func used(_ id: String) throws -> Int? { try h.runtime.ledger.balance(of: h.contracts.first { $0.id == id }!, at: at)?.usedSeconds }
        #expect(try (used("acme-project"), used("acme"), used("beta")) == (4800, 1800, 0))

        // Linked and unlinked in GLPI an hour later, date_mod untouched (so both tickets are outside the poll's
        // window): the next poll finds both and moves the hours.
        h.glpi.advance(seconds: 3600)
        h.glpi.addTicket(4, name: "Later", entity: 2, category: 1, groups: [1])
        try await h.runtime.engine.syncOnce()
        h.glpi.linkContract(1, ticket: 3)
        h.glpi.linkContract(1, ticket: 1, linked: false)
        let report = try await h.runtime.engine.syncOnce()
        #expect(report.ticketsSeen == 1, "the linked tickets were polled again: \(report.ticketsSeen)")  // 4, in the overlap
        matches = try h.runtime.ledger.ticketMatches()
        #expect(matches.mapValues(\.contractID) == [1: "acme", 2: "acme-project", 3: "acme-project", 4: "beta"] && report.contractMoves == 2)
        #expect(try (used("acme-project"), used("acme"), used("beta")) == (3000, 3600, 0))
        let back = try #require(try h.runtime.ledger.moves(ticketID: 1).last)
        #expect((back.fromContract, back.toContract, back.rawSeconds) == ("acme-project", "acme", 3600))
        #expect(back.reason.contains("contract acme: entity 1"), "\(back.reason)")

        // A restart re-matches from the ledger (contracts changed): the links it stored hold.
        let restarted = try Runtime(configuration: try ConfigLoader.parse(configYAML(url: h.server.url, database: h.directory.path + "/l.sqlite",
                                                                                      contracts: contracts + "\n  - { id: extra, name: X, entity: 9, quota_hours: 1, starts: 2026-01-01 }")))
        try await restarted.engine.syncOnce()
        #expect(try restarted.ledger.ticketMatches().mapValues(\.contractID) == [1: "acme", 2: "acme-project", 3: "acme-project", 4: "beta"])
    }

    /// A link search GLPI refuses (no READ on contracts: the contract option is not there) is named in /status and
    /// check-config, and affects only its own contract: its tickets keep their stored links, and the poll goes on.
    @Test func aRefusedLinkSearchKeepsTheStoredLinksAndOnlyItsContractIsAffected() async throws {
        let h = try await GLPIHarness.start(contracts: contracts) { glpi in
            glpi.addTicket(1, name: "Migration", entity: 1, category: 1, groups: [1])
            glpi.addTask(ticket: 1, seconds: 3600, technician: 7, date: "2026-11-20 09:00:00")
            glpi.linkContract(1, ticket: 1)
        }
        defer { Task { await h.stop() } }
        #expect(try h.runtime.ledger.ticketMatches()[1]?.contractID == "acme-project")
        h.glpi.denyRight("Contract")
        h.glpi.advance(seconds: 60)
        h.glpi.updateTicket(1) { $0.name = "Migration, phase 2" }
        h.glpi.addTicket(2, name: "Printer", entity: 1, category: 1, groups: [1])
        let report = try await h.runtime.engine.syncOnce()
        #expect(report.ticketsSeen == 2)
        let matches = try h.runtime.ledger.ticketMatches()
        #expect(matches[1]?.contractID == "acme-project" && matches[2]?.contractID == "acme")
        let failure = try #require(await h.runtime.engine.status.ruleFailures.first)
        #expect(failure.contractID == "acme-project" && failure.error.contains("Bad field ID"), "\(failure.error)")
        let problems = await h.runtime.validateQueryRules()
        #expect(problems.map { "\($0.contractID) \($0.key)" } == ["acme-project glpi_contract"])
    }

    @Test func glpiContractIsAGLPIKeyAndIsBounded() throws {
        for (contract, message) in [
            ("{ id: x, name: X, entity: 1, glpi_contract: 0, quota_hours: 1, starts: 2026-01-01 }", "contracts[0].glpi_contract"),
            ("{ id: x, name: X, entity: 1, glpi_contract: one, quota_hours: 1, starts: 2026-01-01 }", "contracts[0].glpi_contract"),
        ] {
            #expect(throws: (any Error).self) { try ConfigLoader.parse(configYAML(url: "http://127.0.0.1:9/apirest.php", database: "/tmp/u.sqlite", contracts: "  - " + contract)) }
            do { _ = try ConfigLoader.parse(configYAML(url: "http://127.0.0.1:9/apirest.php", database: "/tmp/u.sqlite", contracts: "  - " + contract)) }
            catch { #expect("\(error)".contains(message), "\(error)") }
        }
        let itop = itopConfigYAML(url: "http://127.0.0.1:9", database: "/tmp/u.sqlite",
                                  contracts: "  - { id: x, name: X, org: 1, glpi_contract: 1, quota_hours: 1, starts: 2026-01-01 }")
        do {
            _ = try ConfigLoader.parse(itop)
            Issue.record("iTop took glpi_contract")
        } catch { #expect("\(error)".contains("contracts[0].glpi_contract: unknown key"), "\(error)") }
    }
}
