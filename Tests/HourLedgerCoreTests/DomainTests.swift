import Foundation
import TestKit
import HourLedgerCore
import Testing

/// The words a match reason uses; the core knows no helpdesk, so the tests give it GLPI's.
private let words = HelpdeskTerms(entity: "entity", group: "group", category: "category", query: "query", entities: "entities")

@Suite struct RoundingTests {
    @Test(arguments: [
        // (raw seconds, mode, increment minutes, billed seconds)
        (1, RoundingPolicy.Mode.up, 15, 900),
        (14 * 60 + 59, .up, 15, 900),
        (15 * 60, .up, 15, 900),
        (15 * 60 + 1, .up, 15, 1800),
        (7 * 60 + 30, .nearest, 15, 900),
        (7 * 60 + 29, .nearest, 15, 0),
        (22 * 60 + 29, .nearest, 15, 900),
        (0, .up, 15, 0),
        (1234, .none, 0, 1234),
    ])
    func billedSeconds(raw: Int, mode: RoundingPolicy.Mode, minutes: Int, billed: Int) {
        #expect(RoundingPolicy(incrementSeconds: minutes * 60, mode: mode).billedSeconds(forRaw: raw) == billed)
    }

    @Test func minimumAppliesToNonZeroEntriesOnly() {
        let policy = RoundingPolicy(incrementSeconds: 300, mode: .up, minimumSeconds: 1800)
        #expect(policy.billedSeconds(forRaw: 60) == 1800)
        #expect(policy.billedSeconds(forRaw: 1860) == 2100)
        #expect(policy.billedSeconds(forRaw: 0) == 0)
        #expect(policy.description == "up/300s,min=1800s")
    }
}

/// The hand-written ISO 8601 stamps of the contract list read exactly as Foundation's formatter writes them.
@Suite struct ISOStampTests {
    @Test func stampsEqualFoundationsFormatterAcrossZonesAndCenturies() {
        var random = SplitMix64(seed: 42)
        let zones = ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "Pacific/Chatham", "America/St_Johns",
                     "Pacific/Kiritimati", "Africa/Monrovia"].map { TimeZone(identifier: $0)! }
        for zone in zones {
            let formatter = ISO8601DateFormatter()
            formatter.timeZone = zone
            var instants = [Date(timeIntervalSince1970: 0), .utc("2026-03-29 01:00:00"), .utc("2026-10-25 00:59:59"), .utc("2000-02-29 23:30:00")]
            instants += (0..<500).map { _ in Date(timeIntervalSince1970: Double(Int.random(in: -2_208_988_800...4_102_444_800, using: &random))) }
            for instant in instants {
                #expect(ISOStamp.string(instant, in: zone) == formatter.string(from: instant), "\(zone.identifier) \(instant.timeIntervalSince1970)")
            }
        }
    }
}

@Suite struct PeriodTests {
    func contract(_ kind: PeriodKind, starts: String, tz: String, expires: String? = nil) -> Contract {
        Contract(id: "c", name: "c", entity: 1, quotaSeconds: 3600, period: kind, starts: CivilDate(starts)!,
                 expires: expires.flatMap(CivilDate.init), timeZone: tz)
    }

    @Test func monthlyPeriodIsComputedInTheContractsTimeZone() {
        let paris = contract(.monthly, starts: "2026-01-01", tz: "Europe/Paris")
        // 2026-10-31 23:30 UTC is already November 1st, 00:30 in Paris (CET, +01:00).
        let period = paris.period(containing: .utc("2026-10-31 23:30:00"))!
        #expect(period.key == "2026-11-01")
        #expect(period.start == .utc("2026-10-31 23:00:00"))
        #expect(period.end == .utc("2026-11-30 23:00:00"))
        // The October period spans the DST change: it starts at +02:00 and ends at +01:00.
        let october = paris.period(containing: .utc("2026-10-15 12:00:00"))!
        #expect(october.start == .utc("2026-09-30 22:00:00"))
        #expect(october.end == .utc("2026-10-31 23:00:00"))
    }

    @Test func monthlyContractStartingOnThe31st() {
        let c = contract(.monthly, starts: "2026-01-31", tz: "UTC")
        #expect(c.period(containing: .utc("2026-02-28 12:00:00"))!.key == "2026-02-28")
        #expect(c.period(containing: .utc("2026-03-30 12:00:00"))!.key == "2026-02-28")
        #expect(c.period(containing: .utc("2026-03-31 00:00:00"))!.key == "2026-03-31")
        #expect(c.period(containing: .utc("2026-01-30 23:59:59")) == nil)
    }

    @Test func quarterlyYearlyAndOneOffBlocks() {
        let q = contract(.quarterly, starts: "2026-02-15", tz: "UTC")
        #expect(q.period(containing: .utc("2026-05-14 23:59:59"))!.key == "2026-02-15")
        #expect(q.period(containing: .utc("2026-05-15 00:00:00"))!.key == "2026-05-15")
        let y = contract(.yearly, starts: "2024-02-29", tz: "UTC")
        #expect(y.period(containing: .utc("2025-03-01 00:00:00"))!.key == "2025-02-28")
        let block = contract(.none, starts: "2026-01-01", tz: "UTC", expires: "2026-06-30")
        #expect(block.period(containing: .utc("2026-06-30 23:59:59"))!.key == "2026-01-01")
        #expect(block.period(containing: .utc("2026-07-01 00:00:00")) == nil)
    }

    @Test func civilDatesRefuseImpossibleDays() {
        #expect(CivilDate("2026-02-29") == nil)
        #expect(CivilDate("2028-02-29") != nil)
        #expect(CivilDate("2026-13-01") == nil)
        #expect(CivilDate("26-01-01") == nil)
    }
}

@Suite struct MatchingTests {
    let tree = EntityTree(parents: [1: 0, 2: 0, 3: 1])
    let acme = Contract(id: "acme", name: "ACME", entity: 1, includeSubentities: true, match: MatchRule(groups: [1], categories: [1, 2]),
                        priority: 10, quotaSeconds: 72000, starts: CivilDate("2026-01-01")!)
    let acmeHardware = Contract(id: "acme-hw", name: "ACME hardware", entity: 1, match: MatchRule(categories: [1]),
                                priority: 20, quotaSeconds: 36000, starts: CivilDate("2026-01-01")!)
    let beta = Contract(id: "beta", name: "Beta", entity: 2, quotaSeconds: 36000, starts: CivilDate("2026-01-01")!)

    @Test func entityWithSubentitiesAndGroupsAndCategory() {
        let ticket = TicketFacts(id: 7, entity: 3, groups: [2, 1], category: 2)
        let result = ContractMatcher.match(ticket, contracts: [acme, beta], entities: tree, terms: words)
        #expect(result.contractID == "acme")
        #expect(result.reason == "contract acme: entity 3 under 1 AND group 1 AND category 2")
        #expect(result.rejections.map(\.contractID) == ["beta"])
    }

    @Test func groupAndCategoryAreBothRequired() {
        let wrongGroup = TicketFacts(id: 8, entity: 1, groups: [2], category: 1)
        let result = ContractMatcher.match(wrongGroup, contracts: [acme], entities: tree, terms: words)
        #expect(result.contractID == nil)
        #expect(result.reason == "no contract matches: acme: assigned groups 2, rule wants one of 1")
        let noSubentities = Contract(id: "a", name: "a", entity: 1, quotaSeconds: 1, starts: CivilDate("2026-01-01")!)
        #expect(ContractMatcher.match(TicketFacts(id: 9, entity: 3, groups: [], category: 0), contracts: [noSubentities], entities: tree, terms: words)
            .reason == "no contract matches: a: entity 3 is not entity 1")
    }

    @Test func priorityThenFileOrderDecide() {
        let ticket = TicketFacts(id: 1, entity: 1, groups: [1], category: 1)
        #expect(ContractMatcher.match(ticket, contracts: [acme, acmeHardware], entities: tree, terms: words).contractID == "acme-hw")
        var same = acmeHardware
        same.priority = acme.priority
        let tie = ContractMatcher.match(ticket, contracts: [acme, same], entities: tree, terms: words)
        #expect(tie.contractID == "acme")
        #expect(tie.reason.hasSuffix("also matched acme-hw, won on file order at priority 10"))
    }
}

/// Scripts written against earlier versions read `glpi_task_id`; the neutral name is added beside it, not instead.
@Suite struct EntryJSONTests {
    @Test func anEntryNamesItsHelpdeskTaskUnderBothNames() throws {
        var entry = WorkEntry(id: 5, key: "k", ticketID: 1, contractID: "acme", periodKey: "2026-11-01", workedAt: .utc("2026-11-20 08:00:00"),
                              rawSeconds: 600, billedSeconds: 900, rounding: "up/900s", technician: 7, kind: .billable, note: "call",
                              remoteTaskID: 42)
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        var object = try JSONSerialization.jsonObject(with: encoder.encode(entry)) as! [String: Any]
        #expect(object["helpdesk_task_id"] as? Int == 42 && object["glpi_task_id"] as? Int == 42)
        #expect(object["billed_seconds"] as? Int == 900 && object["worked_at"] as? String == "2026-11-20T08:00:00Z")
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        #expect(try decoder.decode(WorkEntry.self, from: encoder.encode(entry)) == entry)
        entry.remoteTaskID = nil
        object = try JSONSerialization.jsonObject(with: encoder.encode(entry)) as! [String: Any]
        #expect(object["helpdesk_task_id"] == nil && object["glpi_task_id"] == nil)
    }
}
