import FakeGLPI
import FakeITop
import Foundation
import HourLedgerApp
import HourLedgerCore
import HourLedgerITop
import HourLedgerUseCases
import Testing

/// The helpdesk keeps the contracts (who has one, since when, until when); the config's `helpdesk_contracts` gives
/// their terms. A contract added, changed or ended in GLPI or iTop is in force here from the next poll on, and the
/// tickets it gains or loses move with their hours.
@Suite struct HelpdeskContractTests {
    /// No contract in the file: every one comes from GLPI. Type 1 "Prepaid support hours" gets 40 h rounded up to
    /// 15 min; GLPI contract 2 has terms of its own (20 h, no rounding), which win over its type's.
    static let glpiTerms = """
      []
    helpdesk_contracts:
      by_type:
        "Prepaid support hours": { quota_hours: 40, rounding: { increment_minutes: 15, mode: up } }
        "Hours & <more>": { quota_hours: 10 }
      by_id:
        2: { quota_hours: 20 }
    """

    @Test func glpiContractsAppearChangeAndEndAtTheNextPollAndTheirTicketsMoveWithTheirHours() async throws {
        let h = try await GLPIHarness.start(contracts: Self.glpiTerms) { glpi in
            glpi.addTicket(1, name: "Laptop", entity: 1, category: 1, groups: [1])
            glpi.addTicket(2, name: "Mail", entity: 2, category: 1, groups: [1])
            glpi.addTicket(3, name: "Paris printer", entity: 3, category: 1, groups: [1])
            glpi.addTask(ticket: 1, seconds: 3000, technician: 7, date: "2026-11-20 09:00:00")
            glpi.addTask(ticket: 2, seconds: 1000, technician: 7, date: "2026-05-10 10:00:00")
            glpi.addTask(ticket: 2, seconds: 500, technician: 7, date: "2026-11-20 10:00:00")
            glpi.addTask(ticket: 3, seconds: 600, technician: 7, date: "2026-11-20 11:00:00")
        }
        defer { Task { await h.stop() } }
        let ledger = h.runtime.ledger
        // The exact reads: the contracts with raw ids (entity), then with names (type), before the tickets.
        let targets = h.glpi.requests.map(\.target)
        let reads = targets.filter { $0.hasPrefix("/apirest.php/Contract") }
        #expect(reads == ["/apirest.php/Contract?range=0-999", "/apirest.php/Contract?expand_dropdowns=true&range=0-999"])
        #expect(targets.firstIndex(of: reads[0])! < targets.firstIndex { $0.hasPrefix("/apirest.php/search/Ticket") }!)

        // Contract 1: tacit renewal, so open-ended, monthly (periodicity 1). Contract 2: 6 months from 2026-03-01
        // with express renewal, so it ends 2026-08-31; quarterly (periodicity 3); its own terms.
        var contracts = ledger.contracts
        #expect(contracts.map(\.id) == ["glpi-2", "glpi-1"])  // newest start first
        let one = try #require(ledger.book.contract("glpi-1"))
        #expect(one.name == "Support Hours 2026 - Customer A" && one.entity == 1 && one.match.linkedContract == 1)
        #expect(one.starts == CivilDate("2026-01-01")! && one.expires == nil && one.period == .monthly && one.quotaSeconds == 144_000)
        #expect(one.rounding.description == "up/900s")
        let two = try #require(ledger.book.contract("glpi-2"))
        #expect(two.entity == 2 && two.starts == CivilDate("2026-03-01")! && two.expires == CivilDate("2026-08-31"))
        #expect(two.period == .quarterly && two.quotaSeconds == 72_000)
        var matches = try ledger.ticketMatches()
        #expect(matches.mapValues(\.contractID) == [1: "glpi-1", 2: "glpi-2", 3: nil])
        func used(_ id: String, _ at: String) throws -> Int? {
            try ledger.balance(of: ledger.book.contract(id)!, at: Date.utc(at))?.usedSeconds
        }
        // 3000 s rounded up to 15 min is 3600; May's 1000 s count in glpi-2's quarter March to May; November's 500 s
        // fall after its end and count nowhere.
        #expect(try used("glpi-1", "2026-11-21 00:00:00") == 3600)
        #expect(try used("glpi-2", "2026-05-15 00:00:00") == 1000)

        // In GLPI: a new contract for Paris (entity 3) from November, and contract 1 moved to type 2, whose terms
        // give 10 h; GLPI stores the type's name encoded and HourLedger reads it decoded.
        h.glpi.addContractType(2, name: "Hours & <more>")
        h.glpi.putContract(.init(id: 3, entity: 3, name: "Paris & suburbs", number: "CT-P", type: 1, begins: "2026-11-01", months: 12,
                                 periodicity: 1, renewal: 1))
        h.glpi.updateContract(1) { $0.type = 2 }
        h.glpi.advance(seconds: 60)
        var report = try await h.runtime.engine.syncOnce(now: Date.utc("2026-11-21 12:00:00"))
        contracts = ledger.contracts
        #expect(contracts.map(\.id) == ["glpi-3", "glpi-2", "glpi-1"])
        #expect(ledger.book.contract("glpi-3")?.name == "Paris & suburbs" && ledger.book.contract("glpi-1")?.quotaSeconds == 36_000)
        matches = try ledger.ticketMatches()
        #expect(matches.mapValues(\.contractID) == [1: "glpi-1", 2: "glpi-2", 3: "glpi-3"] && report.contractMoves == 1)
        // Type 2's terms have no rounding: ticket 1's 3000 s count as they are now.
        #expect(try used("glpi-1", "2026-11-21 00:00:00") == 3000)
        #expect(try used("glpi-3", "2026-11-21 00:00:00") == 900)  // 600 s rounded up to 15 min
        let moved = try #require(try ledger.moves(ticketID: 3).last)
        #expect((moved.fromContract, moved.toContract, moved.rawSeconds) == (nil, "glpi-3", 600))

        // Contract 1 goes to GLPI's trash on 2026-11-25 (getItems no longer lists it): it ends that day. Time of
        // the 25th still counts; a task of the 26th does not. Ticket 1 stays with it, its hours where they were.
        h.glpi.updateContract(1) { $0.isDeleted = true }
        h.glpi.advance(seconds: 60)
        report = try await h.runtime.engine.syncOnce(now: Date.utc("2026-11-25 15:00:00"))
        #expect(ledger.book.contract("glpi-1")?.expires == CivilDate("2026-11-25"))
        #expect(ledger.contracts.map(\.id) == ["glpi-3", "glpi-2", "glpi-1"])  // ended ones last
        h.glpi.addTask(ticket: 1, seconds: 1200, technician: 7, date: "2026-11-25 09:00:00")
        h.glpi.addTask(ticket: 1, seconds: 1800, technician: 7, date: "2026-11-26 09:00:00")
        h.glpi.advance(seconds: 60)
        report = try await h.runtime.engine.syncOnce(now: Date.utc("2026-11-26 15:00:00"))
        #expect(ledger.book.contract("glpi-1")?.expires == CivilDate("2026-11-25"), "the end stays where it was first seen")
        #expect(try used("glpi-1", "2026-11-21 00:00:00") == 4200)
        #expect(try ledger.balance(of: ledger.book.contract("glpi-1")!, at: Date.utc("2026-11-26 12:00:00")) == nil)

        // What /status says, and what a restart and the CLI see before any poll: the same contracts, ended included.
        let status = try #require(await h.runtime.engine.status.helpdeskContracts)
        #expect(status.listed == 2 && status.billed == ["glpi-3", "glpi-2", "glpi-1"] && status.notBilled.isEmpty && status.error == nil)
        let restarted = try Runtime(configuration: h.runtime.configuration)
        #expect(restarted.ledger.contracts == ledger.contracts)
        #expect(try openLedger(h.runtime.configuration).contracts == ledger.contracts)

        // Restored from the trash: the end is lifted, and the 26th counts again.
        h.glpi.updateContract(1) { $0.isDeleted = false }
        h.glpi.advance(seconds: 60)
        _ = try await h.runtime.engine.syncOnce(now: Date.utc("2026-11-27 15:00:00"))
        #expect(ledger.book.contract("glpi-1")?.expires == nil)
        #expect(try used("glpi-1", "2026-11-21 00:00:00") == 6000)
    }

    /// A contract without terms, or with a periodicity HourLedger has no period for, is not billed and says why; a
    /// refused read keeps the contracts as last read and the poll goes on.
    @Test func contractsWithoutTermsAreNamedAndARefusedReadKeepsTheLastOnes() async throws {
        let terms = """
          []
        helpdesk_contracts:
          by_id:
            1: { quota_hours: 40 }
            4: { quota_hours: 5 }
        """
        let h = try await GLPIHarness.start(contracts: terms) { glpi in
            glpi.addTicket(1, name: "Laptop", entity: 1, category: 1, groups: [1])
            glpi.addTask(ticket: 1, seconds: 3000, technician: 7, date: "2026-11-20 09:00:00")
            glpi.putContract(.init(id: 4, entity: 1, name: "Half-yearly", type: 1, begins: "2026-01-01", months: 12, periodicity: 6, renewal: 1))
        }
        defer { Task { await h.stop() } }
        var status = try #require(await h.runtime.engine.status.helpdeskContracts)
        #expect(status.billed == ["glpi-1"])
        #expect(status.notBilled.map(\.contractID) == ["glpi-2", "glpi-4"])
        #expect(status.notBilled.first?.error == "no terms for it: add helpdesk_contracts.by_id.2 or by_type \"Prepaid support hours\"")
        #expect(status.notBilled.last?.error.hasPrefix("its periodicity is 6 months") == true)

        h.glpi.denyRight("Contract")
        h.glpi.addTask(ticket: 1, seconds: 600, technician: 7, date: "2026-11-20 10:00:00")
        h.glpi.advance(seconds: 60)
        let report = try await h.runtime.engine.syncOnce()
        #expect(report.ticketsSeen == 1)
        status = try #require(await h.runtime.engine.status.helpdeskContracts)
        #expect(status.error?.contains("ERROR_RIGHT_MISSING") == true, "\(status.error ?? "-")")
        #expect(h.runtime.ledger.contracts.map(\.id) == ["glpi-1"])
        #expect(try h.runtime.ledger.balance(of: h.runtime.ledger.book.contract("glpi-1")!, at: Date.utc("2026-11-21 00:00:00"))?.usedSeconds == 3600)
    }

    /// The real CLI: check-config shows what the terms make of GLPI's contracts; `balances` (a process that does not
    /// poll) sees the contracts the last poll read, from the ledger.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: CrashSafetyTests.binary)))
    func checkConfigShowsTheHelpdeskContractsAndTheCLISeesThem() async throws {
        let h = try await GLPIHarness.start(contracts: Self.glpiTerms) { glpi in
            glpi.addTicket(1, name: "Laptop", entity: 1, category: 1, groups: [1])
            glpi.addTask(ticket: 1, seconds: 3000, technician: 7, date: Self.today(hour: 0))
            glpi.putContract(.init(id: 4, entity: 1, name: "Half-yearly", type: 3, begins: "2026-01-01", months: 12, periodicity: 6, renewal: 1))
            glpi.addContractType(3, name: "Other")
        }
        defer { Task { await h.stop() } }
        let file = h.directory.write("hourledger.yaml", configYAML(url: h.server.url, database: h.directory.path + "/l.sqlite", contracts: Self.glpiTerms))
        let check = try await CLI.run(["check-config", "--config", file])
        #expect(check.exitedNormally && check.status == 0, "\(check.output)")
        #expect(check.output.contains("ok      the helpdesk lists 3 contracts; 2 billed here:"), "\(check.output)")
        #expect(check.output.contains("glpi-1 \"Support Hours 2026 - Customer A\": entity 1, 2026-01-01 to open end, monthly, 40 h, block"), "\(check.output)")
        #expect(check.output.contains("glpi-2 \"Support Hours 2026 - Customer B\": entity 2, 2026-03-01 to 2026-08-31, quarterly, 20 h, block"))
        #expect(check.output.contains("not billed: contract 4: no terms for it: add helpdesk_contracts.by_id.4 or by_type \"Other\""))
        let balances = try await CLI.run(["balances", "--config", file, "--format", "csv"])
        #expect(balances.exitedNormally && balances.status == 0, "\(balances.output)")
        let rows = balances.output.split(separator: "\n").map(String.init)
        let glpi1 = try #require(rows.first { $0.hasPrefix("glpi-1,") }, "\(balances.output)")
        #expect(glpi1.contains(",144000,3600,"), "\(glpi1)")  // 40 h quota, 3000 s rounded up to 3600
        // Without READ on contracts, check-config says so and fails.
        h.glpi.setProfile(FakeGLPIState.documentedProfile.merging(["contract": 0]) { $1 })
        let refused = try await CLI.run(["check-config", "--config", file])
        #expect(refused.exitedNormally && refused.status != 0)
        #expect(refused.output.contains("REFUSED helpdesk_contracts: the helpdesk's contracts could not be read"), "\(refused.output)")
    }

    /// A task time earlier today (UTC), so that it falls in the running period whatever the date.
    static func today(hour: Int) -> String {
        let formatter = DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd"
        return formatter.string(from: Date()) + String(format: " %02d:00:00", hour)
    }

    /// The file is refused, with `message` among its errors.
    static func expectRefused(_ yaml: String, _ message: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try ConfigLoader.parse(yaml)
            Issue.record("took a file that should be refused for \(message)", sourceLocation: sourceLocation)
        } catch { #expect("\(error)".contains(message), "\(error)", sourceLocation: sourceLocation) }
    }

    @Test func theTermsAreCheckedWhereTheyEnter() throws {
        for (section, message) in [
            ("helpdesk_contracts:\n  by_type:\n    \"Prepaid support hours\": { quota_hours: 40, entity: 1 }",
             "helpdesk_contracts.by_type.Prepaid support hours.entity: comes from the helpdesk's contract"),
            ("helpdesk_contracts:\n  by_id:\n    abc: { quota_hours: 40 }", "helpdesk_contracts.by_id.abc: must be a helpdesk contract id"),
            ("helpdesk_contracts:\n  by_id:\n    2: { quota_hours: -1 }", "helpdesk_contracts.by_id.2.quota_hours"),
            ("helpdesk_contracts:\n  default: { quota_hours: 4, period: weekly }", "helpdesk_contracts.default.period: must be monthly"),
            ("helpdesk_contracts: {}", "helpdesk_contracts: gives no terms"),
            ("helpdesk_contracts:\n  by_name: {}", "helpdesk_contracts.by_name: unknown key"),
        ] {
            Self.expectRefused(configYAML(url: "http://127.0.0.1:9/apirest.php", database: "/tmp/u.sqlite", contracts: "  []\n" + section), message)
        }
    }

    /// iTop's CustomerContracts: organisation and services become the rule, start and end the dates, the billing
    /// frequency the period; one retired (`obsolete`) or deleted ends at the poll that sees it.
    @Test func itopCustomerContractsBecomeContractsByOrganisationAndServices() async throws {
        let directory = TemporaryDirectory()
        let state = try makeITopFixtureState()
        state.addService(2, name: "Network")
        let server = try await FakeITopServer(state: state)
        defer { Task { await server.stop() } }
        let terms = """
          []
        helpdesk_contracts:
          by_type:
            "Prepaid hours block": { quota_hours: 40, timezone: Europe/Paris }
          by_id:
            2: { quota_hours: 100, timezone: Europe/Paris, rounding: { increment_minutes: 15, mode: up } }
        """
        let runtime = try Runtime(configuration: ConfigLoader.parse(itopConfigYAML(url: server.url, database: directory.path + "/l.sqlite", contracts: terms)))
        let t0 = Date.utc("2026-11-21 09:00:00")
        try await runtime.engine.syncOnce(now: t0)
        let read = try #require(state.requests.compactMap(\.operation).first { $0["class"] as? String == "CustomerContract" })
        #expect(read["key"] as? String == "SELECT CustomerContract")
        #expect(read["output_fields"] as? String == "id,name,org_id,contracttype_name,status,start_date,end_date,billing_frequency,services_list")
        let ledger = runtime.ledger
        #expect(ledger.contracts.map(\.id) == ["itop-2", "itop-1"])
        let globex = try #require(ledger.book.contract("itop-1"))
        #expect(globex.name == "Globex - Workplace support 2026" && globex.entity == 2 && globex.match.services == [1])
        #expect(globex.starts == CivilDate("2026-01-01")! && globex.expires == CivilDate("2026-12-31") && globex.period == .monthly)
        #expect(globex.quotaSeconds == 144_000)
        #expect(globex.match.linkedContract == nil)
        let initech = try #require(ledger.book.contract("itop-2"))
        #expect(initech.period == .yearly && initech.expires == CivilDate("2027-05-31") && initech.quotaSeconds == 360_000)
        #expect(try ledger.ticketMatches().mapValues(\.contractID) == [1: "itop-1", 2: "itop-1", 3: "itop-1", 4: "itop-2", 5: "itop-2", 6: "itop-2"])
        #expect(try ledger.ticketMatches()[4]?.reason == "contract itop-2: org 3 AND service 1")

        // 1000 s on R-000004, rounded up to 15 min under contract 2's own terms.
        let (timer, _) = try await ledger.startTimer(technician: 5, ticketID: 4, now: t0)
        _ = try await ledger.timerTransition(id: timer.id, actingAs: 5, action: .stop, note: "trace", actor: "dan", now: t0.addingTimeInterval(1000))
        #expect(try ledger.balance(of: ledger.book.contract("itop-2")!, at: t0)?.usedSeconds == 1800)

        // In iTop: Globex's contract now covers the Network service only, and Initech's is retired. The next poll
        // moves Globex's tickets (service 1) off it, and ends Initech's on the day it ran, in Paris.
        var globexContract = FakeITopState.CustomerContract(id: 1, name: "Globex - Workplace support 2026", org: 2, start: "2026-01-01", end: "2026-12-31",
                                                            services: [2])
        state.putCustomerContract(1, globexContract)
        state.putCustomerContract(2, .init(id: 2, name: "Initech - 100h support block", org: 3, status: "obsolete", start: "2026-06-01", end: "2027-05-31",
                                           billingFrequency: "yearly", services: [1]))
        state.advance(seconds: 60)
        let report = try await runtime.engine.syncOnce(now: Date.utc("2026-11-21 23:30:00"))
        #expect(ledger.book.contract("itop-1")?.match.services == [2])
        #expect(ledger.book.contract("itop-2")?.expires == CivilDate("2026-11-22"), "23:30 UTC is the 22nd in Paris")
        #expect(ledger.contracts.map(\.id) == ["itop-1", "itop-2"])
        let matches = try ledger.ticketMatches()
        #expect(matches.filter { $0.key <= 3 }.allSatisfy { $0.value.contractID == nil } && report.contractMoves == 3)
        #expect(matches[4]?.contractID == "itop-2")
        #expect(try ledger.balance(of: ledger.book.contract("itop-2")!, at: t0)?.usedSeconds == 1800)

        // Deleted in iTop: it stays ended where it was; Globex's contract back on service 1 takes its tickets back.
        globexContract.services = [1, 2]
        state.putCustomerContract(1, globexContract)
        state.putCustomerContract(2, nil)
        state.advance(seconds: 60)
        _ = try await runtime.engine.syncOnce(now: Date.utc("2026-11-30 10:00:00"))
        #expect(ledger.book.contract("itop-2")?.expires == CivilDate("2026-11-22"))
        #expect(try ledger.ticketMatches().filter { $0.key <= 3 }.allSatisfy { $0.value.contractID == "itop-1" })
        #expect(ledger.book.contract("itop-1")?.match.services == [1, 2])
    }

    /// One iTop contract declared in the file by its id: the file names it and gives its terms, iTop its organisation,
    /// services and dates. The others have no terms and are named as not billed.
    @Test func anITopContractDeclaredInTheFileByItsID() async throws {
        let directory = TemporaryDirectory()
        let state = try makeITopFixtureState()
        let server = try await FakeITopServer(state: state)
        defer { Task { await server.stop() } }
        let contracts = "  - { id: globex, itop_contract: 1, quota_hours: 40, timezone: Europe/Paris, rounding: { increment_minutes: 15, mode: up } }"
        let runtime = try Runtime(configuration: ConfigLoader.parse(itopConfigYAML(url: server.url, database: directory.path + "/l.sqlite", contracts: contracts)))
        try await runtime.engine.syncOnce(now: Date.utc("2026-11-21 09:00:00"))
        #expect(runtime.ledger.contracts.map(\.id) == ["globex"])
        let globex = try #require(runtime.ledger.book.contract("globex"))
        #expect(globex.name == "Globex - Workplace support 2026" && globex.entity == 2 && globex.match.services == [1] && globex.quotaSeconds == 144_000)
        #expect(globex.expires == CivilDate("2026-12-31"))
        #expect(try runtime.ledger.ticketMatches().mapValues(\.contractID) == [1: "globex", 2: "globex", 3: "globex", 4: nil, 5: nil, 6: nil])
        let status = try #require(await runtime.engine.status.helpdeskContracts)
        #expect(status.billed == ["globex"] && status.notBilled.map(\.contractID) == ["itop-2"])

        for (contract, message) in [
            ("{ id: g, itop_contract: 0, quota_hours: 1 }", "contracts[0].itop_contract: must be an iTop CustomerContract id"),
            ("{ id: g, itop_contract: 1, org: 2, quota_hours: 1 }", "contracts[0].org: comes from the helpdesk's contract"),
            ("{ itop_contract: 1, quota_hours: 1 }", "contracts[0].id: missing"),
        ] {
            Self.expectRefused(itopConfigYAML(url: "http://127.0.0.1:9", database: "/tmp/u.sqlite", contracts: "  - " + contract), message)
        }
        Self.expectRefused(configYAML(url: "http://127.0.0.1:9/apirest.php", database: "/tmp/u.sqlite",
                                      contracts: "  - { id: g, entity: 1, itop_contract: 1, quota_hours: 1, starts: 2026-01-01 }"),
                           "contracts[0].itop_contract: unknown key")
    }

    /// A contract list that moved while it was paged (a contract deleted between two pages) ends nothing: the
    /// contracts as last read stay in force and /status says why.
    @Test func aContractListThatMovedWhileItWasPagedEndsNothing() async throws {
        let directory = TemporaryDirectory()
        let state = try makeITopFixtureState()
        for id in 3...6 {
            state.putCustomerContract(id, .init(id: id, name: "Other \(id)", org: 1, start: "2026-01-01", end: "", services: []))
        }
        let server = try await FakeITopServer(state: state)
        defer { Task { await server.stop() } }
        let terms = "  []\nhelpdesk_contracts:\n  default: { quota_hours: 10 }"
        let runtime = try Runtime(configuration: ConfigLoader.parse(itopConfigYAML(url: server.url, database: directory.path + "/l.sqlite", contracts: terms)))
        try await runtime.engine.syncOnce(now: Date.utc("2026-11-21 09:00:00"))
        #expect(runtime.ledger.contracts.count == 6)
        // Before page 2 of the CustomerContract read (page size 4), contract 6 is deleted.
        state.beforePage = { state, page in if page == 2 { state.putCustomerContract(6, nil) } }
        state.advance(seconds: 60)
        _ = try await runtime.engine.syncOnce(now: Date.utc("2026-11-22 09:00:00"))
        let status = try #require(await runtime.engine.status.helpdeskContracts)
        #expect(status.error?.contains("the contract list changed while it was read") == true, "\(status.error ?? "-")")
        #expect(runtime.ledger.contracts.allSatisfy { $0.expires == nil || $0.expires! > CivilDate("2026-11-22")! }, "nothing ended")
        state.beforePage = nil
        _ = try await runtime.engine.syncOnce(now: Date.utc("2026-11-23 09:00:00"))
        #expect(runtime.ledger.book.contract("itop-6")?.expires == CivilDate("2026-11-23"), "read in full, the deletion ends it")
    }

    @Test func theRecordedCustomerContractsReadAsTheyAre() throws {
        let body = try ITopConnector.decode(try ITopFixtureTests.response(try Fixtures.itop("20-get-customercontracts.json")), operation: "x")
        let contracts = try ITopConnector.objects(body, operation: "x").map { try ITopConnector.contract($0, operation: "x") }.sorted { $0.id < $1.id }
        #expect(contracts == [
            HelpdeskContract(id: 1, name: "Globex - Workplace support 2026", typeName: "Prepaid hours block", scope: 2, services: [1],
                             begins: CivilDate("2026-01-01"), ends: CivilDate("2026-12-31"), periodMonths: 1),
            HelpdeskContract(id: 2, name: "Initech - 100h support block", typeName: "Prepaid hours block", scope: 3, services: [1],
                             begins: CivilDate("2026-06-01"), ends: CivilDate("2027-05-31"), periodMonths: 12),
        ])
    }

    @Test func periodsAndEndsFromTheHelpdeskDates() {
        #expect(CivilDate("2026-01-31")!.adding(months: 1) == CivilDate("2026-02-28"))
        #expect(CivilDate("2026-03-01")!.adding(months: 6).dayBefore == CivilDate("2026-08-31"))
        #expect(CivilDate("2026-01-01")!.dayBefore == CivilDate("2025-12-31"))
        #expect(CivilDate("2024-03-01")!.dayBefore == CivilDate("2024-02-29"))
        let listed = HelpdeskContract(id: 1, name: "A", typeName: "T", scope: 1, begins: CivilDate("2026-01-01"), ends: nil, periodMonths: 1)
        let now = Date.utc("2026-11-25 15:00:00")
        let gone = KnownHelpdeskContract.merge([KnownHelpdeskContract(contract: listed)], listed: [], now: now)
        #expect(gone.map(\.endedAt) == [now])
        let later = KnownHelpdeskContract.merge(gone, listed: [], now: now.addingTimeInterval(86_400))
        #expect(later.map(\.endedAt) == [now], "the first day seen ended stays")
        #expect(KnownHelpdeskContract.merge(later, listed: [listed], now: now).map(\.endedAt) == [nil], "a contract back is in force again")
    }
}
