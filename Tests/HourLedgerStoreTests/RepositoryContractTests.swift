import Foundation
import HourLedgerCore
import HourLedgerMemoryStore
import HourLedgerPostgres
import HourLedgerStore
import HourLedgerUseCases
import PostgresTestServer
import TestKit
import Testing

/// Every ledger repository. A new store joins this list and must pass every test below. PostgreSQL runs on a real
/// server of the tests' own (`PostgresTestServer`), each test in a schema of its own.
enum Repository: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite, memory, postgres

    var testDescription: String { rawValue }

    func make() throws -> any LedgerRepository {
        switch self {
        case .sqlite: try SQLiteLedger.inMemory()
        case .memory: MemoryLedger()
        case .postgres: try PostgresLedger(location: PostgresTestServer.start().freshLocation())
        }
    }

    func ledger(contracts: [Contract] = [], clock: WallClock = .system) throws -> Ledger {
        Ledger(repository: try make(), profile: testProfile,
               book: ContractBook(contracts, alertChannels: AlertChannels(webhooks: ["ops"], followup: true)), clock: clock)
    }
}

/// What a ledger repository promises the use cases, run against each repository: the same operations give the same
/// answers to the second, in the same order, with the same refusals.
@Suite struct RepositoryContractTests {
    static let acme = Contract(id: "acme", name: "ACME", entity: 1, quotaSeconds: 36_000, starts: CivilDate("2026-01-01")!,
                               rounding: RoundingPolicy(incrementSeconds: 900, mode: .up), alertThresholds: [20, 50])
    static let beta = Contract(id: "beta", name: "Beta", entity: 2, quotaSeconds: 7200, starts: CivilDate("2026-01-01")!, approvalRequired: true)
    let t0 = Date.utc("2026-11-10 09:00:00")

    static func ticket(_ id: Int, entity: Int, name: String = "t") -> TicketFacts {
        TicketFacts(id: id, name: name, entity: entity, groups: [1], category: 1)
    }

    func update(_ ticket: TicketFacts, tasks: [TaskFacts]?, dateMod: String = "2026-11-10 09:00:00") -> TicketUpdate {
        TicketUpdate(ticket: ticket, dateMod: dateMod,
                     match: ContractMatcher.match(ticket, contracts: [Self.acme, Self.beta], entities: EntityTree(), terms: testTerms), tasks: tasks)
    }

    /// One working month: tasks read from the helpdesk, a task edited and one deleted, entries logged, edited, moved,
    /// approved, rejected and deleted, a ticket moved to another contract, a ticket gone.
    func workload(_ ledger: Ledger) async throws {
        let laptop = Self.ticket(1, entity: 1, name: "Laptop & dock"), printer = Self.ticket(2, entity: 2, name: "Printer"),
            orphan = Self.ticket(3, entity: 9, name: "Nobody's")
        func task(_ id: Int, _ ticket: Int, _ seconds: Int, day: Int) -> TaskFacts {
            TaskFacts(id: id, ticketID: ticket, date: t0.addingTimeInterval(Double(day * 86_400)), seconds: seconds, technician: 7, isPrivate: false)
        }
        _ = try await ledger.apply([update(laptop, tasks: [task(10, 1, 1200, day: 0), task(11, 1, 60, day: 1)]),
                                    update(printer, tasks: [task(20, 2, 3600, day: 2)]),
                                    update(orphan, tasks: [task(30, 3, 500, day: 0)])], now: t0)
        _ = try await ledger.apply([update(laptop, tasks: [task(10, 1, 1500, day: 0)], dateMod: "2026-11-12 10:00:00")], now: t0)
        let mine = try await ledger.addEntry(NewEntry(ticketID: 1, technician: 8, startedAt: t0, rawSeconds: 100, kind: .billable, note: "call",
                                                      createdBy: "bob"), now: t0)
        _ = try await ledger.editEntry(key: mine.key, change: EntryChange(rawSeconds: 1000, startedAt: .utc("2026-10-31 23:59:59")),
                                       reason: "it was October", actor: "bob", actingAs: 8, now: t0)
        let internalTime = try await ledger.addEntry(NewEntry(ticketID: 1, technician: 7, startedAt: t0, rawSeconds: 1800, kind: .internal,
                                                              note: "", createdBy: "alice"), now: t0)
        let pending = try await ledger.addEntry(NewEntry(ticketID: 2, technician: 7, startedAt: t0, rawSeconds: 900, kind: .billable, note: "",
                                                         createdBy: "alice"), now: t0)
        let rejected = try await ledger.addEntry(NewEntry(ticketID: 2, technician: 7, startedAt: t0, rawSeconds: 300, kind: .billable,
                                                          note: "", createdBy: "alice"), now: t0)
        _ = try await ledger.review(key: pending.key, approve: true, note: "ok", actor: "boss", now: t0)
        _ = try await ledger.review(key: rejected.key, approve: false, note: "no", actor: "boss", now: t0)
        try await ledger.deleteEntry(key: internalTime.key, reason: "duplicate", actor: "alice", actingAs: 7, now: t0)
        let (timer, _) = try await ledger.startTimer(technician: 7, ticketID: 1, now: t0)
        _ = try await ledger.timerTransition(id: timer.id, actingAs: 7, action: .stop, note: "fixed", actor: "alice", now: t0.addingTimeInterval(61))
        // The printer moves to ACME's entity: its time moves with it.
        _ = try await ledger.apply([update(Self.ticket(2, entity: 1, name: "Printer"), tasks: nil, dateMod: "2026-11-13 08:00:00")], now: t0)
        _ = try await ledger.markRemoved([3], as: .purged, now: t0)
        try await ledger.settle(all: true, now: t0)
    }

    /// Entry keys are random: each becomes its order of first appearance, so two ledgers' texts compare.
    static func numberingKeys(_ lines: [String]) -> [String] {
        let uuid = try! Regex("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
        var numbers: [String: Int] = [:]
        return lines.map { line in
            line.replacing(uuid) { match in
                let key = String(line[match.range])
                if numbers[key] == nil { numbers[key] = numbers.count + 1 }
                return "key#\(numbers[key]!)"
            }
        }
    }

    /// Everything a person or a report can read, in one comparable text.
    func everythingReadable(_ ledger: Ledger) throws -> [String] {
        let range = ReportRange(from: .utc("2026-10-01 00:00:00"), to: .utc("2026-12-01 00:00:00"))
        var lines: [String] = ["ticket seconds: \(try ledger.read { try $0.ticketSeconds() })"]
        for contract in [Self.acme, Self.beta] {
            lines.append("balances \(contract.id): \(try ledger.balances(of: contract, now: t0))")
            lines.append("movements \(contract.id): \(try ledger.blockMovements(contractID: contract.id))")
            for row in try ledger.balances(of: contract, now: t0) {
                lines.append("breakdown \(contract.id) \(row.periodKey): \(try ledger.ticketBreakdown(contractID: contract.id, periodKey: row.periodKey))")
                lines.append("invoice \(contract.id) \(row.periodKey): \(try ledger.invoiceEntries(contractID: contract.id, periodKey: row.periodKey))")
            }
        }
        lines.append("entries: \(try [1, 2, 3].map { id in try ledger.read { try $0.entries(ticketID: id) } })")
        lines.append("work: \(try ledger.workEntries())")
        lines.append("technician 7: \(try ledger.entries(technician: 7, from: range.from, to: range.to).map { ($0.ticketID, $0.workedAt, $0.rawSeconds) })")
        lines.append("pending: \(try ledger.pendingEntries())")
        lines.append("audit: \(try ledger.auditTrail())")
        lines.append("outbox: \(try ledger.outboxItems())")
        lines.append("outbox stats: \(try ledger.outboxStats(now: t0))")
        lines.append("timers: \(try ledger.timers(openOnly: false))")
        lines.append("alerts: \(try ledger.alerts()) \(try ledger.alertDeliveries()) \(try ledger.alertDeliveryStats())")
        lines.append("unmatched: \(try ledger.unmatchedTickets())")
        lines.append("live: \(try ledger.liveTickets())")
        lines.append("matches: \(try ledger.ticketMatches().sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" })")
        lines.append("moves: \(try [1, 2, 3].map { try ledger.moves(ticketID: $0) })")
        lines.append("counts: \(try ledger.counts())")
        lines.append("discrepancies: \(try ledger.balanceDiscrepancies())")
        lines.append("technicians: \(try ledger.technicianReport(range: range, timeZone: TimeZone(identifier: "Europe/Paris")!))")
        lines.append("contracts: \(try ledger.contractReport(range: range))")
        lines.append("tickets: \(try ledger.ticketReport(range: range))")
        lines.append("blocks: \(try ledger.blockUsageReport(range: range, now: t0))")
        return lines
    }

    @Test(arguments: Repository.allCases)
    func aWorkingMonthReadsTheSameAsOnSQLite(_ repository: Repository) async throws {
        let reference = try Repository.sqlite.ledger(contracts: [Self.acme, Self.beta], clock: WallClock { self.t0 })
        let ledger = try repository.ledger(contracts: [Self.acme, Self.beta], clock: WallClock { self.t0 })
        try await workload(reference)
        try await workload(ledger)
        let expected = Self.numberingKeys(try everythingReadable(reference)), actual = Self.numberingKeys(try everythingReadable(ledger))
        #expect(expected.count == actual.count)
        for (want, got) in zip(expected, actual) { #expect(got == want) }

        // And what those figures are, to the second: ACME's November holds the laptop's edited task (1500 s, rounded
        // up to 15 min; its 60 s task was deleted in the helpdesk), the stopped timer (61 s → 900 s), and the printer's
        // task (3600 s) and approved entry (900 s) moved in from Beta; October holds the entry moved back to 31 October.
        let november = try #require(try ledger.balance(of: Self.acme, at: t0, now: t0))
        #expect((november.usedSeconds, november.rawSeconds, november.entryCount) == (1800 + 900 + 3600 + 900, 1500 + 61 + 3600 + 900, 4))
        let october = try #require(try ledger.balance(of: Self.acme, at: .utc("2026-10-15 00:00:00"), now: t0))
        #expect((october.usedSeconds, october.rawSeconds) == (1800, 1000))
        #expect(try ledger.balance(of: Self.beta, at: t0, now: t0)?.usedSeconds == 0)
        #expect(try ledger.balanceDiscrepancies().isEmpty)
        #expect(try ledger.liveTicketIDs() == [1, 2])
        // What the helpdesk should count per ticket: the laptop's edited task, the printer's task.
        #expect(try ledger.read { try $0.ticketSeconds() }.map { "\($0.ticketID) \($0.contractID ?? "-") \($0.helpdeskTaskSeconds)" } == ["1 acme 1500", "2 acme 3600"])
        #expect(try ledger.moves(ticketID: 2).map(\.toContract) == ["acme"])
        #expect(try ledger.auditTrail(ticketID: 1).map(\.field).contains("deleted"))
        // 7200 s of 36,000 s is 20 %: that alert fired once, to the webhook and as a followup on the last ticket worked.
        #expect(try ledger.alerts().map(\.threshold) == [20])
        #expect(try ledger.alertDeliveries().map(\.channel).sorted() == ["followup", "webhook:ops"])
    }

    /// A ticket's explicit links, type and category survive the store, and the linked ones are found without a scan
    /// of every ticket: what a poll diffs the helpdesk's links against.
    @Test(arguments: Repository.allCases)
    func linksTypesAndCategoriesAreKeptWithTheTicket(_ repository: Repository) async throws {
        let ledger = try repository.ledger(contracts: [Self.acme, Self.beta], clock: WallClock { self.t0 })
        var linked = Self.ticket(1, entity: 1, name: "Linked")
        linked.linkedContracts = ["beta", "acme"]
        linked.ticketClass = "Request"
        linked.categoryName = "Network & <VPN>"
        _ = try await ledger.apply([update(linked, tasks: []), update(Self.ticket(2, entity: 1), tasks: [])], now: t0)
        let found = try ledger.read { try $0.linkedTickets() }
        #expect(found.map(\.id) == [1])
        let facts = try #require(found.first?.facts)
        #expect((facts.linkedContracts, facts.ticketClass, facts.categoryName) == (["beta", "acme"], "Request", "Network & <VPN>"))
        linked.linkedContracts = []
        _ = try await ledger.apply([update(linked, tasks: nil, dateMod: "2026-11-11 09:00:00")], now: t0)
        #expect(try ledger.read { try $0.linkedTickets() }.isEmpty)
    }

    /// Purchased hours: used after the quota, carried into the next period until used or lapsed, counted in what
    /// alerts take as available, and voided without being erased. Every refusal names its field.
    @Test(arguments: Repository.allCases)
    func topUpsCountAfterTheQuotaMoveAlertsAndAVoidStaysOnRecord(_ repository: Repository) async throws {
        let ledger = try repository.ledger(contracts: [Self.acme, Self.beta], clock: WallClock { self.t0 })
        let laptop = Self.ticket(1, entity: 1, name: "Laptop")
        func task(_ id: Int, _ seconds: Int) -> TaskFacts {
            TaskFacts(id: id, ticketID: 1, date: t0.addingTimeInterval(Double(id)), seconds: seconds, technician: 7, isPrivate: false)
        }
        _ = try await ledger.apply([update(laptop, tasks: [task(10, 7200)])], now: t0)
        try await ledger.settle(now: t0)
        #expect(try ledger.alerts().map(\.threshold) == [20])

        let bought = try await ledger.addTopUp(contractID: "acme", seconds: 36_000, note: "PO 4711", price: 90_000, expires: CivilDate("2026-12-31"),
                                               actor: "mia", now: t0)
        #expect(bought.id > 0 && bought.addedAt == t0 && bought.addedBy == "mia")
        var november = try #require(try ledger.balance(of: Self.acme, at: t0, now: t0))
        #expect((november.topUpSeconds, november.availableSeconds, november.remainingSeconds, november.percentUsed) == (36_000, 72_000, 64_800, 10))

        // 37,800 s of 72,000 s is 52.5 %: the 50 % alert fires on what is available, the bought hours included.
        _ = try await ledger.apply([update(laptop, tasks: [task(10, 7200), task(11, 30_600)], dateMod: "2026-11-11 10:00:00")], now: t0)
        try await ledger.settle(now: t0)
        let alerts = try ledger.alerts()
        #expect(alerts.map(\.threshold).sorted() == [20, 50])
        #expect(alerts.first { $0.threshold == 50 }?.availableSeconds == 72_000)
        november = try #require(try ledger.balance(of: Self.acme, at: t0, now: t0))
        #expect((november.overageSeconds, november.remainingSeconds) == (0, 34_200))
        // December: the quota again, and what is left of the top-up (usable through 31 December).
        let december = Date.utc("2026-12-10 09:00:00")
        let next = try #require(try ledger.balance(of: Self.acme, at: december, now: december))
        #expect((next.quotaSeconds, next.topUpSeconds, next.availableSeconds) == (36_000, 34_200, 70_200))
        #expect(next.movements.map { "\($0.kind.rawValue) \($0.originKey) \($0.seconds)" } == ["top_up top-up-\(bought.id) 34200"])

        let voided = try await ledger.voidTopUp(id: bought.id, reason: "booked on the wrong contract", actor: "mia", now: t0)
        #expect(voided.voidReason == "booked on the wrong contract" && voided.voidedBy == "mia")
        november = try #require(try ledger.balance(of: Self.acme, at: t0, now: t0))
        #expect((november.topUpSeconds, november.availableSeconds, november.overageSeconds) == (0, 36_000, 1800))
        #expect(try ledger.topUps(contractID: "acme").map { "\($0.id) \($0.seconds) \($0.note) \($0.expires?.description ?? "-") \($0.price ?? -1) \($0.voidedAt != nil)" }
                == ["\(bought.id) 36000 PO 4711 2026-12-31 90000 true"])
        #expect(try ledger.auditTrail(ticketID: nil, contractID: "acme").filter { $0.entryKey == bought.ref }.map { "\($0.field) \($0.actor) \($0.reason)" }
                == ["top_up mia PO 4711", "top_up_voided mia booked on the wrong contract"])

        #expect(await refusal { try await ledger.voidTopUp(id: bought.id, reason: "again", actor: "mia", now: self.t0) }! == (.transition, "id"))
        #expect(await refusal { try await ledger.voidTopUp(id: 999, reason: "x", actor: "mia", now: self.t0) }! == (.unknownTopUp, "id"))
        #expect(await refusal { try await ledger.addTopUp(contractID: "nope", seconds: 60, note: "x", actor: "mia", now: self.t0) }! == (.unknownContract, "contract"))
        #expect(await refusal { try await ledger.addTopUp(contractID: "acme", seconds: 0, note: "x", actor: "mia", now: self.t0) }! == (.invalid, "seconds"))
        #expect(await refusal { try await ledger.addTopUp(contractID: "acme", seconds: 60, note: " ", actor: "mia", now: self.t0) }! == (.invalid, "note"))
        #expect(await refusal { try await ledger.addTopUp(contractID: "acme", seconds: 60, note: "x", expires: CivilDate("2026-11-09"), actor: "mia",
                                                          now: self.t0) }! == (.invalid, "expires"))
        #expect(await refusal { try await ledger.addTopUp(contractID: "acme", seconds: 60, note: "x", price: -1, actor: "mia", now: self.t0) }! == (.invalid, "price"))
        #expect(try ledger.topUps().count == 1)
    }

    /// The code and field of the use cases' refusal, nil (and a failed expectation) when `body` is not refused.
    func refusal(_ body: () async throws -> TopUp) async -> (LedgerError.Code, String)? {
        do {
            _ = try await body()
            Issue.record("not refused")
            return nil
        } catch {
            return (error as? LedgerError).map { ($0.code, $0.field) }
        }
    }

    /// A sync's batch is read in one pass and its new tasks stored many rows to a statement: a ticket given twice in
    /// one batch must be read again after its first update, and a ticket with more tasks than one statement takes must
    /// lose none. The figures must be those of the same updates applied one at a time.
    @Test(arguments: Repository.allCases)
    func aBatchHoldingATicketTwiceAndOneWithManyTasksBalancesToTheSecond(_ repository: Repository) async throws {
        func task(_ id: Int, _ ticket: Int, _ seconds: Int) -> TaskFacts {
            TaskFacts(id: id, ticketID: ticket, date: t0.addingTimeInterval(Double(id)), seconds: seconds, technician: 7, isPrivate: false)
        }
        let laptop = Self.ticket(1, entity: 1, name: "Laptop"), server = Self.ticket(2, entity: 1, name: "Server")
        let updates = [update(laptop, tasks: [task(10, 1, 1200), task(11, 1, 60), task(12, 1, 100)]),
                       update(server, tasks: (100..<195).map { task($0, 2, 61) }),
                       update(laptop, tasks: [task(10, 1, 1500), task(13, 1, 30)], dateMod: "2026-11-10 10:00:00")]
        let batched = try repository.ledger(contracts: [Self.acme, Self.beta], clock: WallClock { self.t0 })
        let outcomes = try await batched.apply(updates, now: t0)
        #expect(outcomes.map { [$0.entriesAdded, $0.entriesUpdated, $0.entriesDeleted] } == [[3, 0, 0], [95, 0, 0], [1, 1, 2]])
        let oneByOne = try repository.ledger(contracts: [Self.acme, Self.beta], clock: WallClock { self.t0 })
        for update in updates { _ = try await oneByOne.apply([update], now: t0) }

        // 95 tasks of 61 s, each rounded up to 15 min; the laptop's 1500 s and 30 s tasks, its 60 s and 100 s ones gone.
        let november = try #require(try batched.balance(of: Self.acme, at: t0, now: t0))
        #expect((november.usedSeconds, november.rawSeconds, november.entryCount) == (95 * 900 + 1800 + 900, 95 * 61 + 1500 + 30, 97))
        #expect(try batched.read { try $0.entries(ticketID: 2) }.map(\.sourceID) == Array(100..<195))
        #expect(try batched.read { try $0.entries(ticketID: 1) }.map(\.sourceID).sorted() == [10, 13])
        #expect(try batched.balanceDiscrepancies().isEmpty)
        let expected = Self.numberingKeys(try everythingReadable(oneByOne)), actual = Self.numberingKeys(try everythingReadable(batched))
        #expect(expected.count == actual.count)
        for (want, got) in zip(expected, actual) { #expect(got == want) }
    }

    /// Every text and number of a ticket and its task entries comes back as it went in: empty text stays empty (not
    /// NULL), quotes, accents, emoji and control characters stay byte for byte, absent numbers stay absent, and a
    /// batch of more rows than one multi-row insert holds keeps every row. SQLite binds these rows by hand.
    @Test(arguments: Repository.allCases)
    func everyTextAndNumberOfATicketAndItsEntriesComesBackAsStored(_ repository: Repository) async throws {
        let ledger = try repository.ledger(contracts: [Self.acme, Self.beta], clock: WallClock { self.t0 })
        let texts = ["", "Imprimante « salle 2 » en panne 🚀", "quote \" back\\slash\ttab\nline\u{1}", String(repeating: "é", count: 5_000)]
        var facts = TicketFacts(id: 4_000_000_001, name: texts[1], entity: 1, groups: [3, 1, 2], category: 0, status: 5, service: 12, agent: 0,
                                ticketClass: "", ref: texts[2], categoryName: texts[0], queryMatches: ["beta"])
        facts.linkedContracts = ["acme"]
        let tasks = (0..<45).map { index in
            TaskFacts(id: 9_000_000_000 + index, ticketID: facts.id, date: t0.addingTimeInterval(Double(index * 3600)), seconds: index * 61,
                      technician: index % 3, isPrivate: index % 2 == 0, content: texts[index % texts.count])
        }
        var update = update(facts, tasks: tasks, dateMod: "2026-11-10 09:00:00")
        update.taskFingerprint = texts[2]
        _ = try await ledger.apply([update], now: t0)

        let stored = try #require(try ledger.read { try $0.ticket(facts.id) })
        #expect(stored.facts == facts)
        #expect((stored.dateMod, stored.contractID, stored.taskFingerprint, stored.removed == nil) == ("2026-11-10 09:00:00", "acme", texts[2], true))
        let entries = try ledger.read { try $0.entries(ticketID: facts.id) }.sorted { $0.sourceID < $1.sourceID }
        #expect(entries.count == tasks.count)
        for (entry, task) in zip(entries, tasks) {
            #expect((entry.sourceID, entry.ticketID, entry.workedAt, entry.rawSeconds) == (task.id, task.ticketID, task.date, task.seconds))
            #expect((entry.technician, entry.isPrivate, entry.content) == (task.technician, task.isPrivate, task.content))
            #expect((entry.contractID, entry.key, entry.remoteTaskID, entry.createdBy, entry.taskCategory) == ("acme", nil, nil, nil, nil))
            #expect(entry.billedSeconds == (task.seconds + 899) / 900 * 900)
        }
    }

    /// Each repository lists the same tickets closed with no time, and pauses the same timers when a ticket closes.
    @Test(arguments: Repository.allCases)
    func closedTicketsWithNoTimeAndTheTimersTheirClosingPaused(_ repository: Repository) async throws {
        let ledger = try repository.ledger(contracts: [Self.acme, Self.beta], clock: WallClock { self.t0 })
        func closed(_ id: Int, status: Int = 5, entity: Int = 1, at offset: Double) -> TicketUpdate {
            var update = update(TicketFacts(id: id, name: "t\(id)", entity: entity, groups: [1], category: 1, status: status), tasks: [])
            update.changedAt = t0.addingTimeInterval(offset)
            return update
        }
        _ = try await ledger.apply([update(Self.ticket(1, entity: 1), tasks: []), update(Self.ticket(4, entity: 1), tasks: [])], now: t0)
        let (timer, _) = try await ledger.startTimer(technician: 7, ticketID: 4, now: t0)
        let later = t0.addingTimeInterval(3600)
        let outcomes = try await ledger.apply([closed(1, at: 60), closed(2, status: 6, entity: 2, at: 120), closed(3, at: 7200),
                                               closed(4, at: 900)], now: later)
        #expect(outcomes.map { $0.timersPaused.map(\.id) } == [[], [], [], [timer.id]])
        let paused = try #require(try ledger.timers(openOnly: true).first)
        #expect(paused.state.reviewReason == .ticketClosed && paused.state.elapsedSeconds(at: later) == 900)
        // Ticket 3 says it changed after the sync that saw it: it was closed by then at the latest.
        let day = ReportRange(from: t0, to: t0.addingTimeInterval(86_400))
        #expect(try ledger.untimedTicketReport(range: day).map { "\($0.ticketID) \($0.contractID ?? "-") \($0.status) \($0.closedAt.timeIntervalSince(t0))" }
                == ["1 acme solved 60.0", "2 beta closed 120.0", "3 acme solved 3600.0"])
        #expect(try ledger.untimedTicketReport(range: day, contractID: "beta").map(\.ticketID) == [2])
    }

    /// A task the ledger refuses (here one whose id another ticket already holds) fails its whole batch: the tickets
    /// before it in the batch are not half stored, and the error reaches the caller.
    @Test(arguments: Repository.allCases)
    func aRefusedTaskRollsBackItsWholeBatch(_ repository: Repository) async throws {
        func task(_ id: Int, _ ticket: Int, _ seconds: Int) -> TaskFacts {
            TaskFacts(id: id, ticketID: ticket, date: t0, seconds: seconds, technician: 7, isPrivate: false)
        }
        let ledger = try repository.ledger(contracts: [Self.acme, Self.beta], clock: WallClock { self.t0 })
        _ = try await ledger.apply([update(Self.ticket(1, entity: 1), tasks: [task(10, 1, 1200)])], now: t0)
        await #expect(throws: (any Error).self) {
            _ = try await ledger.apply([update(Self.ticket(5, entity: 1), tasks: (50..<100).map { task($0, 5, 600) }),
                                        update(Self.ticket(2, entity: 1), tasks: [task(200, 2, 300), task(10, 2, 300)])], now: t0)
        }
        #expect(try ledger.liveTicketIDs() == [1])
        #expect(try ledger.read { try $0.entries(ticketIDs: [1, 2, 5]) }.mapValues { $0.map(\.sourceID) } == [1: [10], 2: [], 5: []])
        let november = try #require(try ledger.balance(of: Self.acme, at: t0, now: t0))
        #expect((november.usedSeconds, november.rawSeconds, november.entryCount) == (1800, 1200, 1))
        #expect(try ledger.balanceDiscrepancies().isEmpty)
    }

    @Test(arguments: Repository.allCases)
    func aFailedTransactionStoresNothing(_ repository: Repository) throws {
        let store = try repository.make()
        struct Refused: Error {}
        #expect(throws: Refused.self) {
            try store.write { tx throws in
                try tx.setState("cursor", "2026-11-10 09:00:00")
                try tx.addHint(ticketID: 5, at: t0)
                throw Refused()
            }
        }
        try store.read { tx throws in
            #expect(try tx.state("cursor") == nil)
            #expect(try tx.pendingHints(limit: 10).isEmpty)
        }
    }

    @Test(arguments: Repository.allCases)
    func writeBacksLeaveInOrderPerTicketAndARefusedOneHoldsUpOnlyItsTicket(_ repository: Repository) throws {
        let store = try repository.make()
        func item(_ key: String, ticket: Int, at offset: Double = 0) -> OutboxItem {
            OutboxItem(entryKey: key, action: .create, ticketID: ticket, payload: WriteBack(seconds: 900, text: key, technician: 7, date: t0),
                       nextAttemptAt: t0.addingTimeInterval(offset), createdAt: t0)
        }
        let (a1, a2, b1) = try store.write { tx throws in
            (try tx.insertOutboxItem(item("a1", ticket: 1)), try tx.insertOutboxItem(item("a2", ticket: 1)), try tx.insertOutboxItem(item("b1", ticket: 2, at: 30)))
        }
        try store.read { tx throws in
            #expect(try tx.nextOutboxItem(now: t0, fenceSeconds: 65)?.id == a1)
            // b1's backoff has not ended; a2 waits behind a1.
            #expect(try tx.nextOutboxWakeUp(fenceSeconds: 65) == t0)
            #expect(try tx.outboxStats(now: t0.addingTimeInterval(10)) == OutboxStats(depth: 3, parked: 0, inDoubt: 0, oldestAgeSeconds: 10, lastError: nil))
        }
        // a1's attempt is in doubt: ticket 1 waits out the fence, ticket 2 goes on once due.
        try store.write { tx throws in
            var head = try #require(try tx.outboxItem(id: a1))
            head.inDoubtSince = t0.addingTimeInterval(0.7)
            head.attempts = 1
            try tx.updateOutboxItem(head)
        }
        try store.read { tx throws in
            #expect(try tx.nextOutboxItem(now: t0.addingTimeInterval(30), fenceSeconds: 65)?.id == b1)
            #expect(try tx.nextOutboxItem(now: t0.addingTimeInterval(64), fenceSeconds: 65)?.id == b1)
            #expect(try tx.nextOutboxWakeUp(fenceSeconds: 65) == t0.addingTimeInterval(30))
            #expect(try tx.outboxStats(now: t0).inDoubt == 1)
        }
        // Parked: a manager must act; ticket 1's later record stays behind it, ticket 2's are unaffected.
        try store.write { tx throws in
            var head = try #require(try tx.outboxItem(id: a1))
            head.parkedAt = t0
            head.lastError = "notFound: ticket 1 is gone"
            try tx.updateOutboxItem(head)
            var other = try #require(try tx.outboxItem(id: b1))
            other.doneAt = t0
            other.resolution = .delivered
            try tx.updateOutboxItem(other)
        }
        try store.read { tx throws in
            #expect(try tx.nextOutboxItem(now: t0.addingTimeInterval(3600), fenceSeconds: 65) == nil)
            #expect(try tx.nextOutboxWakeUp(fenceSeconds: 65) == nil)
            #expect(try tx.pendingOutboxItems(parkedOnly: true, limit: 10).map(\.id) == [a1])
            #expect(try tx.pendingOutboxItems(parkedOnly: false, limit: 10).map(\.id) == [a1, a2])
            #expect(try tx.outboxStats(now: t0) == OutboxStats(depth: 2, parked: 1, inDoubt: 1, oldestAgeSeconds: 0, lastError: "notFound: ticket 1 is gone"))
            #expect(try tx.outboxItems(entryKey: "b1").first?.resolution == .delivered)
        }
    }

    @Test(arguments: Repository.allCases)
    func anAlertFiresOnceAndADoubtfulFollowupWaitsOutTheFence(_ repository: Repository) throws {
        let store = try repository.make()
        let alert = AlertRecord(contractID: "acme", periodKey: "2026-11-01", threshold: 80, firedAt: t0, usedSeconds: 2880, availableSeconds: 3600,
                                usedBasisPoints: 8000, depletesAt: nil, ticketID: 4)
        let (id, again) = try store.write { tx in (try tx.insertAlert(alert), try tx.insertAlert(alert)) }
        #expect(id != nil && again == nil)
        let alertID = try #require(id)
        let (hook, followup) = try store.write { tx throws in
            (try tx.insertAlertDelivery(AlertDelivery(alertID: alertID, channel: "webhook:ops", ticketID: nil, payload: "{}", nextAttemptAt: t0, createdAt: t0)),
             try tx.insertAlertDelivery(AlertDelivery(alertID: alertID, channel: AlertDelivery.followupChannel, ticketID: 4, payload: "80 %",
                                                      nextAttemptAt: t0, createdAt: t0)))
        }
        try store.write { tx throws in
            for id in [hook, followup] {
                var delivery = try #require(try tx.alertDelivery(id: id))
                delivery.inDoubtSince = t0
                delivery.attempts = 1
                delivery.lastError = "timeout"
                try tx.updateAlertDelivery(delivery)
            }
        }
        try store.read { tx throws in
            #expect(try tx.dueAlertDeliveries(now: t0.addingTimeInterval(10), fenceSeconds: 65, limit: 10).map(\.id) == [hook])
            #expect(try tx.dueAlertDeliveries(now: t0.addingTimeInterval(65), fenceSeconds: 65, limit: 10).map(\.id) == [hook, followup])
            #expect(try tx.alertDeliveryStats() == AlertDeliveryStats(pending: 2, failed: 0, lastError: "timeout"))
            #expect(try tx.alerts(contractID: "acme", limit: 5).map(\.threshold) == [80])
            #expect(try tx.alerts(contractID: "beta", limit: 5).isEmpty)
            #expect(try tx.counts().alerts == 1)
        }
    }

    @Test(arguments: Repository.allCases)
    func webhookSignaturesAreRememberedAndHintsCountUntilServed(_ repository: Repository) throws {
        let store = try repository.make()
        try store.write { tx throws in
            #expect(try tx.rememberSignature("sig-1", at: t0))
            #expect(try !tx.rememberSignature("sig-1", at: t0.addingTimeInterval(5)))
            #expect(try tx.rememberSignature("sig-2", at: t0.addingTimeInterval(100)))
            try tx.forgetSignatures(before: t0.addingTimeInterval(50))
            #expect(try tx.rememberSignature("sig-1", at: t0.addingTimeInterval(101)))
            #expect(try !tx.rememberSignature("sig-2", at: t0.addingTimeInterval(101)))
            try tx.addHint(ticketID: 9, at: t0.addingTimeInterval(1))
            try tx.addHint(ticketID: 4, at: t0.addingTimeInterval(2))
            try tx.addHint(ticketID: 9, at: t0.addingTimeInterval(3))
        }
        let read = try store.read { try $0.pendingHints(limit: 10) }
        #expect(read == [TicketHint(ticketID: 9, receivedAt: t0.addingTimeInterval(1), count: 2), TicketHint(ticketID: 4, receivedAt: t0.addingTimeInterval(2), count: 1)])
        // Ticket 9 is hinted again while the sync that read it runs: that hint stays for the next sync.
        try store.write { tx throws in
            try tx.addHint(ticketID: 9, at: t0.addingTimeInterval(4))
            for hint in read { try tx.clearHint(hint) }
        }
        #expect(try store.read { try $0.pendingHints(limit: 10) }.map(\.ticketID) == [9])
    }

    /// A webhook burst stored in one go: replays (of earlier deliveries, or twice in the batch) are told apart in order,
    /// and each ticket's hint counts every fresh delivery.
    @Test(arguments: Repository.allCases)
    func aBatchOfDeliveriesIsRememberedAsOneByOneWouldBe(_ repository: Repository) throws {
        let store = try repository.make()
        try store.write { tx throws in
            #expect(try tx.rememberSignature("old", at: t0))
            #expect(try tx.rememberSignatures(["a", "old", "b", "a", "c"], at: t0.addingTimeInterval(10)) == [true, false, true, false, true])
            #expect(try tx.rememberSignatures([], at: t0) == [])
            try tx.addHint(ticketID: 4, at: t0)
            try tx.addHints(ticketIDs: [9, 4, 9, 9], at: t0.addingTimeInterval(10))
            try tx.addHints(ticketIDs: [], at: t0)
        }
        #expect(try store.read { try $0.pendingHints(limit: 10) }
                == [TicketHint(ticketID: 4, receivedAt: t0, count: 2), TicketHint(ticketID: 9, receivedAt: t0.addingTimeInterval(10), count: 3)])
        // Forgotten by age like the ones remembered one by one.
        try store.write { tx throws in
            try tx.forgetSignatures(before: t0.addingTimeInterval(5))
            #expect(try tx.rememberSignatures(["old", "a"], at: t0.addingTimeInterval(20)) == [true, false])
        }
    }

    @Test(arguments: Repository.allCases)
    func failingTicketsAndTokens(_ repository: Repository) throws {
        let store = try repository.make()
        try store.write { tx throws in
            #expect(try tx.recordTicketFailure(ticketID: 7, error: "403", at: t0))
            #expect(try !tx.recordTicketFailure(ticketID: 7, error: "500", at: t0.addingTimeInterval(60)))
            #expect(try tx.recordTicketFailure(ticketID: 3, error: "403", at: t0.addingTimeInterval(30)))
            try tx.insertToken(hash: "h1", user: "alice", helpdeskUserID: 7, role: .technician, at: t0)
            try tx.insertToken(hash: "h2", user: "alice", helpdeskUserID: 7, role: .technician, at: t0)
            try tx.insertToken(hash: "h3", user: "boss", helpdeskUserID: 2, role: .manager, at: t0)
        }
        #expect(throws: (any Error).self) { try store.write { try $0.insertToken(hash: "h1", user: "eve", helpdeskUserID: 9, role: .manager, at: t0) } }
        try store.read { tx throws in
            let failures = try tx.ticketFailures(limit: 10)
            #expect(failures == [TicketFailureRecord(ticketID: 7, error: "500", firstFailedAt: t0, lastFailedAt: t0.addingTimeInterval(60), attempts: 2),
                                 TicketFailureRecord(ticketID: 3, error: "403", firstFailedAt: t0.addingTimeInterval(30), lastFailedAt: t0.addingTimeInterval(30), attempts: 1)])
            #expect(try tx.principal(tokenHash: "h1") == Principal(user: "alice", helpdeskUserID: 7, role: .technician))
        }
        try store.write { tx throws in
            #expect(try tx.revokeTokens(user: "alice", at: t0) == 2)
            #expect(try tx.revokeTokens(user: "alice", at: t0) == 0)
            try tx.clearTicketFailures([7])
        }
        try store.read { tx throws in
            #expect(try tx.principal(tokenHash: "h1") == nil && tx.principal(tokenHash: "h2") == nil)
            #expect(try tx.principal(tokenHash: "h3")?.role == .manager)
            #expect(try tx.ticketFailures(limit: 10).map(\.ticketID) == [3])
            #expect(try tx.counts().failingTickets == 1)
        }
    }

    @Test(arguments: Repository.allCases)
    func oneOpenTimerPerTechnicianAndTicketEvenUnderAHundredConcurrentStarts(_ repository: Repository) async throws {
        let ledger = try repository.ledger(contracts: [Self.acme])
        _ = try await ledger.apply([update(Self.ticket(1, entity: 1), tasks: [])], now: t0)
        let t0 = self.t0
        let created = try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<100 { group.addTask { try await ledger.startTimer(technician: 7, ticketID: 1, now: t0).created } }
            return try await group.reduce(into: 0) { $0 += $1 ? 1 : 0 }
        }
        #expect(created == 1)
        #expect(try ledger.timers(openOnly: true).count == 1)
        // Instants are whole seconds in every store.
        let (timer, _) = try await ledger.startTimer(technician: 8, ticketID: 1, now: t0.addingTimeInterval(0.9))
        #expect(try ledger.read { try $0.timer(id: timer.id) }?.startedAt == t0)
    }

    @Test(arguments: Repository.allCases)
    func aClosedRepositoryRefusesWork(_ repository: Repository) throws {
        let store = try repository.make()
        try store.close()
        #expect(throws: (any Error).self) { try store.write { try $0.setState("k", "v") } }
    }
}
