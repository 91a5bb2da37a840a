import Foundation
import HourLedgerUseCases
import HourLedgerCore
import HourLedgerStore
import PropertyBased
import TestKit
import Testing

/// Random sequences of entries, edits, deletions and rollovers against each store: no hour is created or lost.
@Suite struct CarryOverPropertyTests {
    static let hour = 3600
    static let contract = Contract(
        id: "blk", name: "Block", entity: 1, quotaSeconds: 10 * hour, period: .monthly, starts: CivilDate("2026-01-31")!,
        timeZone: "Europe/Paris", billing: Billing(mode: .block, overageRate: 10000),
        carryOver: CarryOverPolicy(maxSeconds: 6 * hour, expiresAfterPeriods: 2), alertThresholds: [80, 100])

    /// (operation, a, b): 0 add, 1 edit, 2 delete, 3 let time pass and roll over.
    static let operations = zip(Gen.int(in: 0...3), Gen.int(in: 0...10_000), Gen.int(in: 0...100_000)).array(of: 1...60)

    @Test(arguments: Repository.allCases)
    func everyPeriodBalancesAndNoHourIsCreatedOrLost(_ repository: Repository) async {
        await propertyCheck(count: 60, input: Self.operations) { operations in
            try await Self.run(operations, on: repository)
        }
    }

    static func run(_ operations: [(Int, Int, Int)], on repository: Repository) async throws {
        let contract = Self.contract
        let contracts = [contract]
        let store = try repository.ledger(contracts: contracts)
        let ticket = TicketFacts(id: 1, name: "t", entity: 1, groups: [], category: 0)
        _ = try await store.apply([TicketUpdate(ticket: ticket, dateMod: "2026-01-31 00:00:00",
                                                match: ContractMatcher.match(ticket, contracts: contracts, entities: EntityTree(), terms: testTerms),
                                                tasks: [])])
        let calculator = PeriodCalculator(kind: .monthly, starts: contract.starts, expires: nil, calendar: contract.calendar)
        var now = Date.utc("2026-02-02 00:00:00")
        // The model: entry key → (period index, seconds, kind).
        var model: [String: (period: Int, seconds: Int, kind: EntryKind)] = [:]
        var keys: [String] = []

        func openIndex() -> Int { (0..<40).last { calculator.boundary($0) <= now } ?? 0 }
        func instant(period: Int, offset: Int) -> Date {
            let start = calculator.boundary(period)
            let length = calculator.boundary(period + 1).timeIntervalSince(start)
            // Anywhere in the period, its first and last second included.
            return start.addingTimeInterval(Double(offset % 3 == 0 ? 0 : offset % 3 == 1 ? Int(length) - 1 : offset % Int(length)))
        }

        for (operation, a, b) in operations {
            switch operation {
            case 0:
                let period = a % (openIndex() + 1)
                let kind = EntryKind.allCases[b % 3]
                let seconds = (b * 37) % (8 * hour)
                let entry = try await store.addEntry(NewEntry(ticketID: 1, technician: 7, startedAt: instant(period: period, offset: b), rawSeconds: seconds,
                                                              kind: kind, note: "", createdBy: "prop"), now: now)
                model[entry.key] = (period, seconds, kind)
                keys.append(entry.key)
            case 1 where !keys.isEmpty:
                let key = keys[a % keys.count]
                let period = b % (openIndex() + 1)
                let seconds = (a * 53 + b) % (12 * hour)
                _ = try await store.editEntry(key: key, change: EntryChange(rawSeconds: seconds, startedAt: instant(period: period, offset: a)),
                                              reason: "prop", actor: "prop", actingAs: nil, now: now)
                model[key]!.period = period
                model[key]!.seconds = seconds
            case 2 where !keys.isEmpty:
                let key = keys.remove(at: a % keys.count)
                try await store.deleteEntry(key: key, reason: "prop", actor: "prop", actingAs: nil, now: now)
                model[key] = nil
            case 3:
                now = now.addingTimeInterval(Double(a % 45) * 86_400 + Double(b % 86_400))
                try await store.settle(all: true, now: now)
            default:
                break
            }
        }
        try await store.settle(now: now)

        let rows = try store.balances(of: contract, now: now)
        #expect(try store.balanceDiscrepancies().isEmpty)
        // Usage per period equals the model's: internal time never draws from the block.
        for (index, row) in rows.enumerated() {
            let expected = model.values.filter { $0.period == index && $0.kind != .internal }.reduce(0) { $0 + $1.seconds }
            #expect(row.usedSeconds == expected, "period \(row.periodKey)")
        }
        var previousOut = 0
        var quota = 0, consumed = 0, expired = 0
        for (index, row) in rows.enumerated() {
            // What one period carries out is exactly what the next carries in, and never more than the cap.
            #expect(row.carriedInSeconds == previousOut, "period \(row.periodKey)")
            #expect(row.carriedInSeconds <= contract.carryOver!.maxSeconds)
            let carriedOut = row.closed ? max(0, row.remainingSeconds) : 0
            previousOut = carriedOut
            if row.overageSeconds > 0 { #expect(row.remainingSeconds == -row.overageSeconds && row.expiredSeconds == 0) }
            // Hours bought more than two periods ago are never available.
            for movement in row.movements where movement.kind == .carriedIn {
                #expect(rows.firstIndex { $0.periodKey == movement.originKey }! >= index - 2)
            }
            #expect(row.movements.filter { $0.kind == .carriedIn }.reduce(0) { $0 + $1.seconds } == row.carriedInSeconds)
            #expect(row.movements.filter { $0.kind == .expired }.reduce(0) { $0 + $1.seconds } == row.expiredSeconds)
            quota += row.quotaSeconds
            consumed += row.usedSeconds - row.overageSeconds
            expired += row.expiredSeconds
        }
        // Conservation: every hour bought is used, expired, or still there.
        #expect(quota == consumed + expired + max(0, rows.last!.remainingSeconds))
        // The stored carry-over and expiry lines are exactly the computed ones, after every edit.
        let stored = try store.blockMovements(contractID: contract.id)
        let computed = rows.flatMap(\.movements)
        #expect(Set(stored) == Set(computed))
    }
}
