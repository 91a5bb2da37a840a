import Foundation
import TestKit
import HourLedgerCore
import Testing

/// Period boundaries, one row per case: the instant (UTC) and the period it must fall in, with its exact UTC bounds.
@Suite struct PeriodTableTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var kind: PeriodKind
        var starts: String
        var timeZone: String
        var instant: String
        var key: String
        var start: String
        var end: String
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        // Europe/Paris springs forward on 2026-03-29: March starts at +01:00 and ends at +02:00.
        .init(name: "Paris, last second of March", kind: .monthly, starts: "2026-01-01", timeZone: "Europe/Paris",
              instant: "2026-03-31 21:59:59", key: "2026-03-01", start: "2026-02-28 23:00:00", end: "2026-03-31 22:00:00"),
        .init(name: "Paris, first second of April (on the boundary)", kind: .monthly, starts: "2026-01-01", timeZone: "Europe/Paris",
              instant: "2026-03-31 22:00:00", key: "2026-04-01", start: "2026-03-31 22:00:00", end: "2026-04-30 22:00:00"),
        .init(name: "Paris, the skipped hour of the DST night", kind: .monthly, starts: "2026-01-01", timeZone: "Europe/Paris",
              instant: "2026-03-29 01:30:00", key: "2026-03-01", start: "2026-02-28 23:00:00", end: "2026-03-31 22:00:00"),
        .init(name: "Paris, the repeated hour in October", kind: .monthly, starts: "2026-01-01", timeZone: "Europe/Paris",
              instant: "2026-10-25 00:30:00", key: "2026-10-01", start: "2026-09-30 22:00:00", end: "2026-10-31 23:00:00"),
        // America/New_York falls back on 2026-11-01 at 02:00, after midnight: November starts at -04:00.
        .init(name: "New York, last second of October", kind: .monthly, starts: "2026-01-01", timeZone: "America/New_York",
              instant: "2026-11-01 03:59:59", key: "2026-10-01", start: "2026-10-01 04:00:00", end: "2026-11-01 04:00:00"),
        .init(name: "New York, November on the boundary", kind: .monthly, starts: "2026-01-01", timeZone: "America/New_York",
              instant: "2026-11-01 04:00:00", key: "2026-11-01", start: "2026-11-01 04:00:00", end: "2026-12-01 05:00:00"),
        .init(name: "New York, March spans spring forward", kind: .monthly, starts: "2026-01-01", timeZone: "America/New_York",
              instant: "2026-03-08 07:30:00", key: "2026-03-01", start: "2026-03-01 05:00:00", end: "2026-04-01 04:00:00"),
        .init(name: "New York quarterly across both changes", kind: .quarterly, starts: "2026-01-01", timeZone: "America/New_York",
              instant: "2026-12-31 23:00:00", key: "2026-10-01", start: "2026-10-01 04:00:00", end: "2027-01-01 05:00:00"),
        // Leap days.
        .init(name: "monthly from Jan 31 lands on Feb 29 in a leap year", kind: .monthly, starts: "2024-01-31", timeZone: "UTC",
              instant: "2024-03-01 00:00:00", key: "2024-02-29", start: "2024-02-29 00:00:00", end: "2024-03-31 00:00:00"),
        .init(name: "yearly from Feb 29 renews on Feb 28", kind: .yearly, starts: "2024-02-29", timeZone: "UTC",
              instant: "2025-02-28 00:00:00", key: "2025-02-28", start: "2025-02-28 00:00:00", end: "2026-02-28 00:00:00"),
        .init(name: "yearly from Feb 29 is back on Feb 29 in 2028", kind: .yearly, starts: "2024-02-29", timeZone: "UTC",
              instant: "2028-02-29 00:00:00", key: "2028-02-29", start: "2028-02-29 00:00:00", end: "2029-02-28 00:00:00"),
        // A start on the 31st: the last day of shorter months, then the 31st again.
        .init(name: "31st: February period", kind: .monthly, starts: "2026-01-31", timeZone: "UTC",
              instant: "2026-03-30 23:59:59", key: "2026-02-28", start: "2026-02-28 00:00:00", end: "2026-03-31 00:00:00"),
        .init(name: "31st: April ends on the 30th", kind: .monthly, starts: "2026-01-31", timeZone: "Europe/Paris",
              instant: "2026-05-15 12:00:00", key: "2026-04-30", start: "2026-04-29 22:00:00", end: "2026-05-30 22:00:00"),
        // Quarterly from mid-quarter: anchored at the start date, not the calendar quarter.
        .init(name: "quarterly from Feb 15, last second", kind: .quarterly, starts: "2026-02-15", timeZone: "UTC",
              instant: "2026-05-14 23:59:59", key: "2026-02-15", start: "2026-02-15 00:00:00", end: "2026-05-15 00:00:00"),
        .init(name: "quarterly from Feb 15, exactly on the boundary", kind: .quarterly, starts: "2026-02-15", timeZone: "UTC",
              instant: "2026-05-15 00:00:00", key: "2026-05-15", start: "2026-05-15 00:00:00", end: "2026-08-15 00:00:00"),
        .init(name: "quarterly from Nov 30 across the year end", kind: .quarterly, starts: "2025-11-30", timeZone: "UTC",
              instant: "2026-02-27 23:59:59", key: "2025-11-30", start: "2025-11-30 00:00:00", end: "2026-02-28 00:00:00"),
    ]

    @Test(arguments: cases) func periodHoldingAnInstant(_ c: Case) throws {
        let contract = Contract(id: "c", name: "c", entity: 0, quotaSeconds: 3600, period: c.kind, starts: CivilDate(c.starts)!, timeZone: c.timeZone)
        let period = try #require(contract.period(containing: .utc(c.instant)))
        #expect(period.key == c.key)
        #expect(period.start == .utc(c.start))
        #expect(period.end == .utc(c.end))
    }

    @Test func periodsNamedByPeople() {
        let midMonth = Contract(id: "c", name: "c", entity: 0, quotaSeconds: 3600, period: .monthly, starts: CivilDate("2026-01-15")!,
                                timeZone: "Europe/Paris")
        let now = Date.utc("2026-11-21 12:00:00")
        #expect(midMonth.period(named: "current", now: now)?.key == "2026-11-15")
        #expect(midMonth.period(named: "previous", now: now)?.key == "2026-10-15")
        #expect(midMonth.period(named: "2026-11", now: now)?.key == "2026-11-15")
        #expect(midMonth.period(named: "2026-11-03", now: now)?.key == "2026-10-15")
        #expect(midMonth.period(named: "2026-01", now: now)?.key == "2026-01-15")
        #expect(midMonth.period(named: "2025-12", now: now) == nil)
        #expect(midMonth.period(named: "November", now: now) == nil)
        let quarterly = Contract(id: "q", name: "q", entity: 0, quotaSeconds: 3600, period: .quarterly, starts: CivilDate("2026-01-01")!)
        #expect(quarterly.period(named: "2026-11", now: now)?.key == "2026-10-01")
    }
}

@Suite struct BlockLedgerTests {
    static let hour = 3600

    func block(carry: CarryOverPolicy?) -> Contract {
        Contract(id: "b", name: "Block", entity: 0, quotaSeconds: 10 * Self.hour, period: .monthly, starts: CivilDate("2026-01-01")!,
                 billing: Billing(mode: .block, overageRate: 12000), carryOver: carry)
    }

    @Test func carryOverIsCappedConsumedOldestFirstAndExpires() throws {
        let h = Self.hour
        let contract = block(carry: CarryOverPolicy(maxSeconds: 5 * h, expiresAfterPeriods: 1))
        let used = ["2026-01-01": 2 * h, "2026-02-01": 12 * h, "2026-03-01": 0, "2026-04-01": 16 * h]
        let statements = BlockLedger.statements(for: contract, used: used, now: .utc("2026-04-20 00:00:00"))
        #expect(statements.map(\.period.key) == ["2026-01-01", "2026-02-01", "2026-03-01", "2026-04-01"])
        let rows = statements.map { [$0.carriedInSeconds / 60, $0.usedSeconds / 60, $0.expiredSeconds / 60, $0.overageSeconds / 60,
                                     $0.remainingSeconds / 60, $0.carriedOutSeconds / 60] }
        // in, used, expired, overage, remaining, carried out (minutes)
        #expect(rows == [
            [0, 120, 180, 0, 300, 300],     // 8 h unused, 5 h carried, 3 h over the cap expire
            [300, 720, 0, 0, 180, 180],     // January's 5 h are used first, so 3 h of February's remain
            [180, 0, 480, 0, 300, 300],     // February's 3 h expire after one period; 5 h of March's 10 h are over the cap
            [300, 960, 0, 60, -60, 0],      // 16 h against 15 h: one hour of overage
        ])
        #expect(statements[1].movements == [
            BlockMovement(kind: .carriedIn, periodKey: "2026-02-01", originKey: "2026-01-01", seconds: 5 * h, reason: "unused hours carried over"),
        ])
        #expect(statements[2].movements.filter { $0.kind == .expired }.map { "\($0.originKey) \($0.seconds / 60) \($0.reason)" } == [
            "2026-02-01 180 unused 1 period(s) after its own", "2026-03-01 300 over the carry-over cap",
        ])
        for s in statements { #expect(s.remainingSeconds == s.quotaSeconds + s.carriedInSeconds - s.usedSeconds - s.expiredSeconds) }
        #expect(!statements[3].closed)
    }

    @Test func withoutCarryOverUnusedHoursLapseAndNothingIsBooked() {
        let contract = block(carry: nil)
        let statements = BlockLedger.statements(for: contract, used: ["2026-01-01": 3600], now: .utc("2026-02-10 00:00:00"))
        #expect(statements.map(\.carriedInSeconds) == [0, 0])
        #expect(statements.flatMap(\.movements).isEmpty)
        #expect(statements[0].remainingSeconds == 9 * Self.hour)
    }

    @Test func forecastProjectsTheBurnRate() {
        // 10 h used in the first 10 days of November (30 days): 1 h a day; 30 h left runs out on Dec 21, after the period.
        let start = Date.utc("2026-11-01 00:00:00")
        let now = Date.utc("2026-11-11 00:00:00")
        let slow = DepletionForecast(usedSeconds: 36000, remainingSeconds: 108_000, periodStart: start, periodEnd: .utc("2026-12-01 00:00:00"), now: now)
        #expect(slow.burnSecondsPerDay == 3600)
        #expect(slow.depletesAt == .utc("2026-12-11 00:00:00"))
        #expect(!slow.withinPeriod)
        let fast = DepletionForecast(usedSeconds: 36000, remainingSeconds: 36000, periodStart: start, periodEnd: .utc("2026-12-01 00:00:00"), now: now)
        #expect(fast.depletesAt == .utc("2026-11-21 00:00:00"))
        #expect(fast.withinPeriod)
        let none = DepletionForecast(usedSeconds: 0, remainingSeconds: 36000, periodStart: start, periodEnd: nil, now: now)
        #expect(none.depletesAt == nil && !none.alreadyDepleted)
    }
}

@Suite struct InvoiceTests {
    let period = Period(start: .utc("2026-04-01 00:00:00"), end: .utc("2026-05-01 00:00:00"), key: "2026-04-01")

    func entry(_ ref: String, ticket: Int, technician: Int, kind: EntryKind = .billable, seconds: Int, day: Int) -> InvoiceEntry {
        InvoiceEntry(ref: ref, ticketID: ticket, ticketName: "T\(ticket)", technician: technician, kind: kind, billedSeconds: seconds,
                     workedAt: .utc("2026-04-\(String(format: "%02d", day)) 10:00:00"))
    }

    @Test func blockUsageThenOverageAtTheTechniciansRate() {
        let contract = Contract(id: "b", name: "Block", entity: 0, quotaSeconds: 36000, starts: CivilDate("2026-01-01")!,
                                billing: Billing(mode: .block, overageRate: 12000, blockFee: 100_000, technicianRates: [7: 15000]))
        let entries = [entry("b", ticket: 2, technician: 7, seconds: 6 * 3600, day: 10), entry("a", ticket: 1, technician: 5, seconds: 10 * 3600, day: 2),
                       entry("c", ticket: 1, technician: 5, kind: .internal, seconds: 7200, day: 3),
                       entry("d", ticket: 3, technician: 5, kind: .prepaid, seconds: 1800, day: 12)]
        // 15 h available (10 h quota + 5 h carried in): a (10 h) and 5 h of b are covered; b's last hour and d are overage.
        let preview = InvoiceCalculator.preview(contract: contract, period: period, availableSeconds: 54000, closed: true, entries: entries,
                                                now: .utc("2026-05-02 00:00:00"))
        #expect(preview.lines == [
            InvoiceLine(kind: .block, description: "Block of 15:00 h, 15:00 h used", seconds: 54000, ratePerHour: nil, amount: 100_000,
                        ticketID: nil, technician: nil, entries: ["a", "b"]),
            InvoiceLine(kind: .overage, description: "Overage, technician 7", seconds: 3600, ratePerHour: 15000, amount: 15000,
                        ticketID: nil, technician: 7, entries: ["b"]),
            InvoiceLine(kind: .overage, description: "Overage", seconds: 1800, ratePerHour: 12000, amount: 6000,
                        ticketID: nil, technician: nil, entries: ["d"]),
        ])
        #expect(preview.totalAmount == 121_000)
        #expect(preview.unbilledSeconds == 7200 && preview.unbilledEntries == ["c"])
        #expect(!preview.partial && preview.warnings.isEmpty)
    }

    @Test func paygPerTicketAndPerEntryWithHalfUpRounding() {
        var contract = Contract(id: "p", name: "PAYG", entity: 0, quotaSeconds: 0, starts: CivilDate("2026-01-01")!,
                                billing: Billing(mode: .payg, currency: "USD", rate: 9000, technicianRates: [7: 9500], lines: .ticket))
        let entries = [entry("e1", ticket: 1, technician: 5, seconds: 3600, day: 1), entry("e2", ticket: 1, technician: 7, seconds: 1800, day: 2),
                       entry("e3", ticket: 2, technician: 5, seconds: 901, day: 3), entry("e4", ticket: 2, technician: 5, kind: .prepaid, seconds: 3600, day: 4),
                       entry("e5", ticket: 2, technician: 5, kind: .internal, seconds: 600, day: 5)]
        let now = Date.utc("2026-04-15 00:00:00")
        let byTicket = InvoiceCalculator.preview(contract: contract, period: period, availableSeconds: 0, closed: false, entries: entries, now: now)
        #expect(byTicket.lines.map { "\($0.ticketID!) \($0.seconds) \($0.ratePerHour!) \($0.amount) \($0.entries)" } == [
            "1 3600 9000 9000 [\"e1\"]", "1 1800 9500 4750 [\"e2\"]",
            "2 901 9000 2253 [\"e3\"]",  // 901 s × 90.00/h = 22.525 → 22.53
        ])
        #expect(byTicket.totalAmount == 16003)
        #expect(byTicket.unbilledEntries == ["e4", "e5"])
        #expect(byTicket.partial)
        contract.billing.lines = .entry
        let byEntry = InvoiceCalculator.preview(contract: contract, period: period, availableSeconds: 0, closed: false, entries: entries, now: now)
        #expect(byEntry.lines.map(\.entries) == [["e1"], ["e2"], ["e3"]])
        #expect(byEntry.totalAmount == byTicket.totalAmount)
        contract.billing.rate = nil
        let missing = InvoiceCalculator.preview(contract: contract, period: period, availableSeconds: 0, closed: false, entries: entries, now: now)
        #expect(missing.totalAmount == 4750)
        #expect(missing.warnings == ["no rate set for the contract, nor a rate for technician 5: these lines are at 0"])
    }

    @Test func unlimitedRecordsTimeButInvoicesNothing() {
        let contract = Contract(id: "u", name: "Unlimited", entity: 0, quotaSeconds: 0, starts: CivilDate("2026-01-01")!,
                                billing: Billing(mode: .unlimited))
        let preview = InvoiceCalculator.preview(contract: contract, period: period, availableSeconds: 0, closed: true,
                                                entries: [entry("x", ticket: 1, technician: 5, seconds: 3600, day: 1)], now: .utc("2026-05-02 00:00:00"))
        #expect(preview.lines.isEmpty && preview.totalAmount == 0)
        #expect(preview.unbilledSeconds == 3600)
    }
}
