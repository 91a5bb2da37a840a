import Foundation
import GRDB
import HourLedgerCore
import HourLedgerMemoryStore
@testable import HourLedgerStore
@testable import HourLedgerUseCases
import TestKit
import Testing

/// Balances and counts are kept between reads (`/status` and the contract list read them on every request). Whatever
/// changes the ledger, from this process or another one on the same file, and however time moves across period
/// boundaries, what a read returns equals what working it out afresh from the stored totals gives.
@Suite struct KeptFiguresTests {
    static let contracts: [Contract] = [
        Contract(id: "paris", name: "Paris", entity: 1, quotaSeconds: 36_000, starts: CivilDate("2026-01-01")!, timeZone: "Europe/Paris",
                 rounding: RoundingPolicy(incrementSeconds: 900, mode: .up),
                 carryOver: CarryOverPolicy(maxSeconds: 18_000, expiresAfterPeriods: 1)),
        Contract(id: "tokyo", name: "Tokyo", entity: 2, quotaSeconds: 7200, starts: CivilDate("2026-03-15")!, timeZone: "Asia/Tokyo"),
        Contract(id: "later", name: "Later", entity: 3, quotaSeconds: 3600, starts: CivilDate("2027-02-01")!),
    ]

    /// The balances as worked out without anything kept: each contract's stored totals read now.
    static func fresh(_ ledger: Ledger, at now: Date) throws -> [String] {
        try contracts.compactMap { contract in
            let (usage, topUps) = try ledger.read { (try $0.periodUsage(contractID: contract.id), try $0.topUps(contractID: contract.id)) }
            let rows = try BalanceRow.statements(of: contract, usage: usage, topUps: topUps, now: now)
            return rows.last { $0.holds(now) }.map { "\(contract.id) \($0)" }
        }
    }

    static func kept(_ ledger: Ledger, at now: Date) throws -> [String] {
        let (balances, failures) = try ledger.currentBalances(at: now)
        #expect(failures.isEmpty)
        return balances.map { "\($0.0.id) \($0.1)" }
    }

    /// One random change: tickets synced with tasks (new, edited, gone), entries added, edited and deleted, a ticket
    /// moved to another contract, a ticket removed, hours bought and voided.
    static func change(_ ledger: Ledger, round: Int, now: Date, random: inout SplitMix64) async throws {
        let ticketID = Int.random(in: 1...12, using: &random)
        let entity = Int.random(in: 1...4, using: &random)
        let facts = TicketFacts(id: ticketID, name: "Ticket \(ticketID)", entity: entity, groups: [], category: 0)
        switch Int.random(in: 0..<6, using: &random) {
        case 5:
            if Bool.random(using: &random), let live = try ledger.topUps().filter({ $0.voidedAt == nil }).randomElement(using: &random) {
                _ = try await ledger.voidTopUp(id: live.id, reason: "mistake", actor: "mia", now: now)
            } else {
                let contract = contracts[Int.random(in: 0..<contracts.count, using: &random)]
                _ = try await ledger.addTopUp(contractID: contract.id, seconds: Int.random(in: 600...20_000, using: &random), note: "PO \(round)",
                                              expires: Bool.random(using: &random) ? CivilDate("2028-06-30") : nil, actor: "mia", now: now)
            }
        case 0, 1:
            let tasks = (0..<Int.random(in: 0...3, using: &random)).map { i in
                TaskFacts(id: ticketID * 100 + i, ticketID: ticketID, date: now.addingTimeInterval(-Double(Int.random(in: 0..<90 * 86_400, using: &random))),
                          seconds: Int.random(in: 60...14_400, using: &random), technician: 7, isPrivate: true)
            }
            let match = ContractMatcher.match(facts, contracts: contracts, entities: EntityTree(), terms: testTerms)
            _ = try await ledger.apply([TicketUpdate(ticket: facts, dateMod: "2026-11-\(10 + round % 18) 09:00:00", match: match, tasks: tasks)], now: now)
        case 2:
            guard let ticket = try ledger.read({ try $0.ticket(ticketID) }), ticket.removed == nil else { return }
            _ = try await ledger.addEntry(NewEntry(ticketID: ticketID, technician: 8, startedAt: now.addingTimeInterval(-3600),
                                                   rawSeconds: Int.random(in: 60...7200, using: &random), kind: .billable, note: "call",
                                                   createdBy: "bob"), now: now)
        case 3:
            let live = try ledger.liveTicketIDs()
            guard let entry = try ledger.read({ try $0.ownEntries(ticketID: nil, contractID: nil) }).filter({ live.contains($0.ticketID) })
                .randomElement(using: &random), let key = entry.key else { return }
            if Bool.random(using: &random) {
                _ = try await ledger.editEntry(key: key, change: EntryChange(rawSeconds: Int.random(in: 60...7200, using: &random)),
                                               reason: "typo", actor: "bob", actingAs: nil, now: now)
            } else {
                try await ledger.deleteEntry(key: key, reason: "duplicate", actor: "bob", actingAs: nil, now: now)
            }
        default:
            _ = try await ledger.markRemoved([ticketID], as: .purged, now: now)
        }
    }

    @Test(arguments: Repository.allCases)
    func keptBalancesEqualFreshOnesAfterEveryChangeAndAcrossPeriodEnds(_ repository: Repository) async throws {
        let store = try repository.make()
        // Two use-case instances on one store: one writes, the other reads, as a second process would.
        let book = ContractBook(Self.contracts)
        let writer = Ledger(repository: store, profile: testProfile, book: book)
        let reader = Ledger(repository: store, profile: testProfile, book: book)
        var random = SplitMix64(seed: 20261202)
        var now = Date.utc("2026-11-20 09:00:00")
        for round in 0..<120 {
            try await Self.change(round % 3 == 0 ? reader : writer, round: round, now: now, random: &random)
            if round % 40 == 39 { try await writer.settle(all: true, now: now) }
            // Time moves on, now and then across a month end (Paris and Tokyo close theirs at different instants).
            now = now.addingTimeInterval(Double(Int.random(in: 0...(round % 10 == 9 ? 20 * 86_400 : 3600), using: &random)))
            for ledger in [reader, writer] {
                #expect(try Self.kept(ledger, at: now) == Self.fresh(ledger, at: now), "round \(round) at \(now)")
            }
            // A burn chart's points: each period's running total after each counted entry, as its entries add up.
            for (contract, row) in try reader.currentBalances(at: now).balances {
                let (points, counted) = try store.read { tx in
                    (try tx.usageOverTime(contractID: contract.id, periodKey: row.periodKey), try tx.countedEntries(contractID: contract.id, periodKey: row.periodKey))
                }
                var total = 0
                let expected = counted.map { counted -> String in
                    total += counted.entry.billedSeconds
                    return "\(counted.entry.workedAt) \(total)"
                }
                #expect(points.map { "\($0.at) \($0.usedSeconds)" } == expected, "round \(round), \(contract.id)")
                #expect(points.last?.usedSeconds ?? 0 == row.usedSeconds || contract.billing.mode != .block)
            }
        }
        // Reading again at an earlier instant works it out for that instant, not from what was kept for a later one.
        let earlier = Date.utc("2026-12-01 00:30:00")
        #expect(try Self.kept(reader, at: earlier) == Self.fresh(reader, at: earlier))
        #expect(try reader.balances(of: Self.contracts[0], now: earlier)
                == BalanceRow.statements(of: Self.contracts[0], usage: try store.read { try $0.periodUsage(contractID: "paris") },
                                         topUps: try store.read { try $0.topUps(contractID: "paris") }, now: earlier))
        #expect(try !store.read { try $0.topUps(contractID: nil) }.isEmpty)
    }

    /// A second process on the same SQLite file: its commits reach this process's next read.
    @Test func anotherProcessesWritesReachTheNextRead() async throws {
        let directory = TemporaryDirectory()
        let path = directory.path + "/ledger.sqlite"
        let here = try sqliteLedger(path: path, contracts: Self.contracts)
        let there = try sqliteLedger(path: path, contracts: Self.contracts)
        let now = Date.utc("2026-11-20 09:00:00")
        let facts = TicketFacts(id: 1, name: "Mail", entity: 1, groups: [], category: 0)
        let match = ContractMatcher.match(facts, contracts: Self.contracts, entities: EntityTree(), terms: testTerms)
        #expect(try here.currentBalances(at: now).balances.first?.1.usedSeconds == 0)
        _ = try await there.apply([TicketUpdate(ticket: facts, dateMod: "2026-11-20 09:00:00", match: match,
                                                tasks: [TaskFacts(id: 5, ticketID: 1, date: now, seconds: 1000, technician: 7, isPrivate: true)])],
                                  now: now)
        #expect(try here.currentBalances(at: now).balances.first?.1.usedSeconds == 1800)
        #expect(try here.counts().entries == 1)
        // Hours bought from the command line while the daemon runs count in the daemon's next read.
        let before = try #require(try here.currentBalances(at: now).balances.first?.1)
        let topUp = try await there.addTopUp(contractID: "paris", seconds: 7200, note: "PO 1", actor: "cli", now: now)
        let after = try #require(try here.currentBalances(at: now).balances.first?.1)
        #expect((after.topUpSeconds, after.availableSeconds, after.remainingSeconds) == (7200, before.availableSeconds + 7200, before.remainingSeconds + 7200))
        _ = try await there.voidTopUp(id: topUp.id, reason: "typo", actor: "cli", now: now)
        #expect(try here.currentBalances(at: now).balances.first?.1 == before)
    }

    /// The counts of tickets and entries come from rows the triggers keep: they equal counting the tables.
    @Test func keptCountsEqualCountingTheTables() async throws {
        let directory = TemporaryDirectory()
        let path = directory.path + "/ledger.sqlite"
        let ledger = try sqliteLedger(path: path, contracts: Self.contracts)
        var random = SplitMix64(seed: 7)
        let now = Date.utc("2026-11-20 09:00:00")
        let queue = try DatabaseQueue(path: path)
        func counted() throws -> [Int] {
            try queue.read { db in
                try ["SELECT COUNT(*) FROM ticket WHERE removed IS NULL", "SELECT COUNT(*) FROM ticket WHERE removed IS NULL AND contract_id IS NULL",
                     "SELECT COUNT(*) FROM entry"].map { try Int.fetchOne(db, sql: $0) ?? -1 }
            }
        }
        for round in 0..<150 {
            try await Self.change(ledger, round: round, now: now, random: &random)
            let counts = try ledger.counts()
            #expect([counts.tickets, counts.unmatched, counts.entries] == (try counted()), "round \(round)")
        }
        #expect(try ledger.counts().entries > 0)
    }

    /// A ledger of version 11 gets its counts and balance revisions on opening, figures intact.
    @Test func aVersion11LedgerGetsItsKeptFigures() async throws {
        let directory = TemporaryDirectory()
        let path = directory.path + "/v11.sqlite"
        try await oldLedgerFile(at: path, upTo: "v11-task-lookups") { db in
            try db.execute(sql: """
                INSERT INTO ticket(id, name, entity, groups, category, status, date_mod, contract_id, match_reason, synced_at)
                    VALUES (1, 'Laptop', 1, '', 0, 2, '2026-11-20 09:00:00', 'paris', 'contract paris: entity 1', 0),
                           (2, 'Stray', 9, '', 0, 2, '2026-11-20 09:00:00', NULL, 'no contract', 0);
                INSERT INTO entry(source, source_id, ticket_id, contract_id, period_key, worked_at, raw_seconds, billed_seconds, rounding,
                                  technician, is_private, content, updated_at)
                    VALUES ('helpdesk_task', 55, 1, 'paris', '2026-11-01', 1795165200, 1200, 1800, 'up to 15 min', 7, 1, 'swap', 0),
                           ('helpdesk_task', 56, 2, NULL, NULL, 1795165200, 300, 300, '', 7, 1, 'look', 0);
                INSERT INTO balance(contract_id, period_key, period_start, period_end, quota_seconds, used_seconds, raw_seconds, entry_count)
                    VALUES ('paris', '2026-11-01', 1793487600, 1796079600, 36000, 1800, 1200, 1);
                """)
        }
        let ledger = try sqliteLedger(path: path, contracts: Self.contracts)
        let counts = try ledger.counts()
        #expect([counts.tickets, counts.unmatched, counts.entries] as [Int] == [2, 1, 2])
        #expect(try ledger.read { try $0.balanceRevision() } == 1)
        let now = Date.utc("2026-11-21 00:00:00")
        #expect(try ledger.currentBalances(at: now).balances.first { $0.0.id == "paris" }?.1.usedSeconds == 1800)
    }
}
