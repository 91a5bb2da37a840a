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

    func topUp(_ id: Int64, hours: Int, added: String, expires: String? = nil, voided: Bool = false) -> TopUp {
        TopUp(id: id, contractID: "b", seconds: hours * Self.hour, note: "PO \(id)", expires: expires.flatMap(CivilDate.init), addedAt: .utc(added),
              addedBy: "manager", voidedAt: voided ? .utc(added) : nil)
    }

    /// Quota first, then carried-in hours (oldest first), then purchased hours; a top-up outlives its period until
    /// used or until the period holding its expiry day ends, whatever the carry-over rules say.
    @Test func topUpsAreUsedAfterQuotaAndCarryOverAndLapseAtTheirExpiry() {
        let h = Self.hour
        let contract = block(carry: CarryOverPolicy(maxSeconds: 5 * h, expiresAfterPeriods: 1))
        // January: 10 h quota, 3 h used, 5 h carried (cap). February: 10 + 5 carried + 8 bought (top-up 1, no expiry) and
        // 4 bought (top-up 2, through 2026-03-15); 20 h used: quota and carried first, then 5 h of top-up 2 (the
        // sooner to lapse, 4 h) and 1 h of top-up 1. March: 10 h quota, nothing carried (all used), 7 h of top-up 1
        // left; 12 h used: 2 h of top-up 1, 5 h of it left. top-up 3 is voided and counts for nothing.
        let used = ["2026-01-01": 3 * h, "2026-02-01": 20 * h, "2026-03-01": 12 * h]
        let topUps = [topUp(1, hours: 8, added: "2026-02-10 09:00:00"), topUp(2, hours: 4, added: "2026-02-11 09:00:00", expires: "2026-03-15"),
                      topUp(3, hours: 50, added: "2026-02-12 09:00:00", voided: true)]
        let statements = BlockLedger.statements(for: contract, used: used, topUps: topUps, now: .utc("2026-04-02 00:00:00"))
        #expect(statements.map(\.topUpSeconds) == [0, 12 * h, 7 * h, 5 * h])
        #expect(statements.map(\.availableSeconds) == [10 * h, 27 * h, 17 * h, 15 * h])
        #expect(statements.map(\.overageSeconds) == [0, 0, 0, 0])
        #expect(statements.map(\.remainingSeconds) == [5 * h, 7 * h, 5 * h, 15 * h])
        #expect(statements[1].movements.filter { $0.kind == .topUp }.map { "\($0.originKey) \($0.seconds / h) \($0.reason)" } == [
            "top-up-2 4 purchased hours, top-up #2 (PO 2)", "top-up-1 8 purchased hours, top-up #1 (PO 1)",
        ])
        #expect(statements[2].movements.filter { $0.kind == .topUp }.map { "\($0.originKey) \($0.seconds / h)" } == ["top-up-1 7"])
        // January keeps 7 h: 5 h carried out (the cap), 2 h expire over the cap.
        #expect(statements[0].carriedOutSeconds == 5 * h && statements[0].expiredSeconds == 2 * h)
        #expect(statements[3].movements.filter { $0.kind == .topUp }.map(\.seconds) == [5 * h])
        for s in statements {
            #expect(s.remainingSeconds == s.quotaSeconds + s.carriedInSeconds + s.topUpSeconds - s.usedSeconds - s.expiredSeconds)
        }
    }

    @Test func anUnusedTopUpLapsesWhenThePeriodOfItsExpiryDayEnds() {
        let h = Self.hour
        let contract = block(carry: nil)
        let topUps = [topUp(1, hours: 6, added: "2026-01-20 09:00:00", expires: "2026-02-14")]
        let statements = BlockLedger.statements(for: contract, used: ["2026-01-01": 12 * h, "2026-02-01": 11 * h], topUps: topUps,
                                                now: .utc("2026-03-05 00:00:00"))
        // January: 2 h of it used (12 h against a 10 h quota). February: 4 h left, 1 h used, 3 h lapse at the end.
        #expect(statements.map(\.topUpSeconds) == [6 * h, 4 * h, 0])
        #expect(statements.map(\.overageSeconds) == [0, 0, 0])
        #expect(statements[1].expiredSeconds == 3 * h)
        #expect(statements[1].movements.filter { $0.kind == .expired }.map(\.reason) == ["top-up #1 (PO 1) lapsed (usable through 2026-02-14)"])
        #expect(statements[1].remainingSeconds == 0)
        // While February runs, the 3 h show as expiring at its end.
        let running = BlockLedger.statements(for: contract, used: ["2026-01-01": 12 * h, "2026-02-01": 11 * h], topUps: topUps,
                                             now: .utc("2026-02-20 00:00:00"))
        #expect(running.last?.expiringAtEndSeconds == 3 * h)
    }

    @Test func aTopUpBoughtInOverageCoversItAndNonBlockContractsIgnoreTopUps() {
        let h = Self.hour
        let used = ["2026-01-01": 13 * h]
        let topUps = [topUp(1, hours: 10, added: "2026-01-28 09:00:00")]
        let covered = BlockLedger.statements(for: block(carry: nil), used: used, topUps: topUps, now: .utc("2026-01-30 00:00:00"))
        #expect(covered[0].overageSeconds == 0 && covered[0].remainingSeconds == 7 * h)
        #expect(BlockLedger.statements(for: block(carry: nil), used: used, now: .utc("2026-01-30 00:00:00"))[0].overageSeconds == 3 * h)
        var payg = block(carry: nil)
        payg.billing.mode = .payg
        #expect(BlockLedger.statements(for: payg, used: used, topUps: topUps, now: .utc("2026-01-30 00:00:00"))[0].topUpSeconds == 0)
        // One added before the contract begins counts from its first period; one added after it ended counts nowhere.
        var ended = block(carry: nil)
        ended.expires = CivilDate("2026-01-31")!
        let outside = [topUp(1, hours: 1, added: "2025-12-20 09:00:00"), topUp(2, hours: 2, added: "2026-02-03 09:00:00")]
        #expect(BlockLedger.statements(for: ended, used: [:], topUps: outside, now: .utc("2026-02-05 00:00:00")).map(\.topUpSeconds) == [h])
    }

    @Test func hoursAreReadExactlyAsPeopleTypeThem() {
        #expect(HoursText.seconds(parsing: "10") == 36000)
        #expect(HoursText.seconds(parsing: "2.5") == 9000)
        #expect(HoursText.seconds(parsing: "0.0025") == 9)
        #expect(HoursText.seconds(parsing: "1:30") == 5400)
        #expect(HoursText.seconds(parsing: "1:30:15") == 5415)
        for bad in ["", "-1", "1.00001", "1:3", "1:60", "abc", "1e3", "1.5.2", "１０", "10000000"] {
            #expect(HoursText.seconds(parsing: bad) == nil, "\(bad)")
        }
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

    @Test func aTopUpIsAPurchaseLineAtItsPriceOrAtTheOverageRate() {
        let contract = Contract(id: "b", name: "Block", entity: 0, quotaSeconds: 36000, starts: CivilDate("2026-01-01")!,
                                billing: Billing(mode: .block, overageRate: 12000, blockFee: 100_000))
        let bought = [TopUp(id: 4, contractID: "b", seconds: 5 * 3600, note: "PO 4711", price: 50_000, addedAt: .utc("2026-04-03 10:00:00"), addedBy: "m"),
                      TopUp(id: 5, contractID: "b", seconds: 1800, note: "urgent", addedAt: .utc("2026-04-20 10:00:00"), addedBy: "m"),
                      TopUp(id: 6, contractID: "b", seconds: 3600, note: "March", addedAt: .utc("2026-03-20 10:00:00"), addedBy: "m"),
                      TopUp(id: 7, contractID: "b", seconds: 3600, note: "typo", addedAt: .utc("2026-04-21 10:00:00"), addedBy: "m",
                            voidedAt: .utc("2026-04-21 11:00:00"))]
        let preview = InvoiceCalculator.preview(contract: contract, period: period, availableSeconds: 36000 + 5 * 3600 + 1800, closed: true,
                                                entries: [entry("a", ticket: 1, technician: 5, seconds: 16 * 3600, day: 2)], purchases: bought,
                                                now: .utc("2026-05-02 00:00:00"))
        #expect(preview.lines.map { "\($0.kind) \($0.seconds) \($0.ratePerHour.map(String.init) ?? "-") \($0.amount) \($0.entries)" } == [
            "block 55800 - 100000 [\"a\"]", "overage 1800 12000 6000 [\"a\"]",
            "purchase 18000 - 50000 [\"top-up-4\"]", "purchase 1800 12000 6000 [\"top-up-5\"]",
        ])
        #expect(preview.lines[2].description == "Purchased hours: 5:00 h, top-up #4 (PO 4711)")
        #expect(preview.totalAmount == 162_000)
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
