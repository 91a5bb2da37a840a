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
}
