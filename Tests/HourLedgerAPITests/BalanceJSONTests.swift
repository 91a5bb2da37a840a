import Foundation
import AppTestKit
import HourLedgerCore
@testable import HourLedgerServer
import Testing

/// The contract list's hand-written JSON is the encoder's, byte for byte, whatever the figures and names hold.
@Suite struct BalanceJSONTests {
    static func randomBalance(_ random: inout SplitMix64, index: Int) -> ContractBalance {
        let names = ["ACME", "R&D <lab> \"west\"", "Café Zoë / Paris", "tab\there\nnew line", "back\\slash", "\u{01}ctl", "日本支社"]
        let zones = ["UTC", "Europe/Paris", "Asia/Kolkata", "America/St_Johns"]
        let mode = Billing.Mode.allCases[Int.random(in: 0..<Billing.Mode.allCases.count, using: &random)]
        let contract = Contract(id: "c\(index)", name: names[Int.random(in: 0..<names.count, using: &random)], entity: 1,
                                quotaSeconds: mode == .block ? Int.random(in: 3600...72_000, using: &random) : 0, starts: CivilDate("2026-01-01")!,
                                timeZone: zones[Int.random(in: 0..<zones.count, using: &random)], billing: Billing(mode: mode),
                                carryOver: mode == .block ? CarryOverPolicy(maxSeconds: 36_000, expiresAfterPeriods: 1) : nil)
        var usage: [String: PeriodUsage] = [:]
        for month in 1...11 where Bool.random(using: &random) {
            let used = Int.random(in: 0...80_000, using: &random)
            usage[String(format: "2026-%02d-01", month)] = PeriodUsage(usedSeconds: used, rawSeconds: used - used % 7, entryCount: Int.random(in: 1...99, using: &random))
        }
        let now = Date.utc("2026-02-01 00:00:00").addingTimeInterval(Double(Int.random(in: 0...300 * 86_400, using: &random)) + 0.25)
        let row = try! BalanceRow.statements(of: contract, usage: usage, now: now).last!
        return ContractBalance(contract: contract, row: row, now: now)
    }

    static func encoded(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    @Test func theContractListIsTheEncodersTextByteForByte() throws {
        var random = SplitMix64(seed: 1202)
        for size in [0, 1, 2, 7, 300] {
            let balances = (0..<size).map { Self.randomBalance(&random, index: $0) }
            let text = try Self.encoded(balances)
            #expect(BalanceJSON.array(balances) == text, "\(size) balances")
            if size == 300 {
                // The sample holds what is hard to write: forecasts, carry-over lines, escapes, open-ended periods.
                for fragment in ["\"depletes_at\" : \"", "\"reason\" : \"unused hours carried over\"", "\\u0001ctl", "R&D <lab> \\\"west\\\"",
                                 "Café Zoë / Paris", "\\t", "\"period_end\"", "\"forecast\""] {
                    #expect(text.contains(fragment), "\(fragment)")
                }
            }
        }
        #expect(BalanceJSON.number(75.5) == "75.5" && BalanceJSON.number(100) == "100" && BalanceJSON.number(0.01) == "0.01")
    }

    /// The kept bytes the list and `/status` serve equal freshly written ones through 200 reads in which balances
    /// change, leave, come back and move in the list, at both indents.
    @Test func keptBytesFollowEveryChange() throws {
        var random = SplitMix64(seed: 1203)
        let kept = BalanceJSON.Kept()
        var balances = (0..<40).map { Self.randomBalance(&random, index: $0) }
        var reused = 0
        for read in 0..<200 {
            switch Int.random(in: 0..<4, using: &random) {
            case 0:  // one balance's figures change
                let index = Int.random(in: 0..<balances.count, using: &random)
                balances[index].usedSeconds += Int.random(in: 1...900, using: &random)
            case 1:  // a contract leaves the book, another comes
                balances.remove(at: Int.random(in: 0..<balances.count, using: &random))
                balances.append(Self.randomBalance(&random, index: Int.random(in: 0..<60, using: &random)))
            case 2:
                balances.shuffle(using: &random)
            default:
                reused += 1
            }
            let indent = read % 3 == 0 ? 1 : 0
            #expect(kept.bytes(balances, indent: indent) == BalanceJSON.bytes(balances, indent: indent), "read \(read)")
        }
        #expect(reused > 20)
    }

    /// A block's forecast is worked out as of the minute: reads within one minute give equal balances, so their JSON
    /// is kept, and the next minute moves it.
    @Test func theForecastIsAsOfTheMinute() throws {
        let contract = Contract(id: "acme", name: "ACME", entity: 1, quotaSeconds: 20 * 3600, starts: CivilDate("2026-01-01")!,
                                timeZone: "Europe/Paris", billing: Billing(mode: .block))
        let usage = ["2026-11-01": PeriodUsage(usedSeconds: 36_000, rawSeconds: 35_000, entryCount: 12)]
        func balance(_ stamp: String) throws -> ContractBalance {
            let now = Date.utc(stamp)
            return ContractBalance(contract: contract, row: try BalanceRow.statements(of: contract, usage: usage, now: now).last!, now: now)
        }
        let early = try balance("2026-11-20 10:00:05"), late = try balance("2026-11-20 10:00:59"), next = try balance("2026-11-20 10:01:00")
        #expect(early.forecast != nil && early == late)
        // 10 h since midnight in Paris on Nov 1 (Oct 31, 23:00 UTC): 19 days and 11 h, 1,850 s a day.
        #expect(early.forecast?.burnSecondsPerDay == 1850)
        #expect(next.forecast?.depletesAt != early.forecast?.depletesAt)
        let kept = BalanceJSON.Kept()
        #expect(kept.bytes([early]) == kept.bytes([late]))
    }

    /// The burn chart's coordinates: the nearest tenth, written as `%.1f` writes it for every value that is not a tie.
    @Test func chartCoordinatesAreTenthsAsPrintfWritesThem() {
        var random = SplitMix64(seed: 1204)
        var compared = 0
        for _ in 0..<20_000 {
            let value = Double(Int.random(in: -50_000_000...700_000_000, using: &random)) / 1_000_000
            let tenths = value * 10
            if abs(tenths - tenths.rounded(.down) - 0.5) < 1e-6 { continue }
            #expect(BurnChart.f(value) == String(format: "%.1f", value), "\(value)")
            compared += 1
        }
        #expect(compared > 19_000)
        #expect([0, 44, 196, 590, -0.04].map(BurnChart.f) == ["0.0", "44.0", "196.0", "590.0", "-0.0"])
    }

    /// Durations as h:mm, and days as a fresh DateFormatter writes them, in both languages and several zones, from
    /// the formatters kept between calls.
    @Test func durationsAndDaysReadAsBefore() {
        #expect([0, 59, 60, 540, 5400, 36_000 + 61, -5400, -60].map(Formats.hours) == ["0:00", "0:00", "0:01", "0:09", "1:30", "10:01", "-1:30", "-0:01"])
        for language in Language.allCases {
            let formats = Formats(language: language)
            for zone in ["Europe/Paris", "Asia/Tokyo", "America/St_Johns", "UTC"].map({ TimeZone(identifier: $0)! }) {
                for stamp in ["2026-11-30 22:59:59", "2026-12-31 23:30:00", "2027-03-28 01:00:00"] {
                    let date = Date.utc(stamp)
                    for style in [DateFormatter.Style.none, .short] {
                        let fresh = DateFormatter()
                        fresh.locale = language.locale
                        fresh.timeZone = zone
                        fresh.dateStyle = .medium
                        fresh.timeStyle = style
                        let kept = style == .none ? formats.day(date, timeZone: zone) : formats.dayAndTime(date, timeZone: zone)
                        #expect(kept == fresh.string(from: date), "\(language) \(zone.identifier) \(stamp)")
                    }
                }
            }
        }
    }
}
