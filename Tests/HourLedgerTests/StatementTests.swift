import FakeGLPI
import Foundation
import HourLedgerApp
import HourLedgerCore
import HourLedgerUseCases
import GRDB
import Testing

/// `hourledger statement`: a period's lines and totals signed with Ed25519 (swift-crypto); `statement verify` checks
/// them with the public key alone, and a statement with one byte changed fails.
@Suite struct StatementTests {
    static let contracts = """
      - { id: acme, name: "ACME, Inc.", entity: 1, quota_hours: 20, starts: 2026-01-01, timezone: Europe/Paris,
          rounding: { increment_minutes: 15, mode: up } }
    """

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: CrashSafetyTests.binary)))
    func aSignedStatementVerifiesWithThePublicKeyAndOneChangedByteFails() async throws {
        let h = try await GLPIHarness.start(contracts: Self.contracts) { glpi in
            glpi.addTicket(1, name: "Laptop & <dock>", entity: 1, category: 1, groups: [1])
            glpi.addTask(ticket: 1, seconds: 1861, technician: 7, date: "2026-11-20 09:00:00")
            glpi.addTask(ticket: 1, seconds: 600, technician: 8, date: "2026-11-03 23:30:00")   // 4 Nov, 00:30 in Paris
            glpi.addTask(ticket: 1, seconds: 900, technician: 8, date: "2026-10-31 23:30:00")   // 1 Nov in Paris
        }
        defer { Task { await h.stop() } }
        let d = h.directory
        let file = d.write("hourledger.yaml", configYAML(url: h.server.url, database: d.path + "/l.sqlite", contracts: Self.contracts))
        let keygen = try await CLI.run(["statement", "keygen", "--private-key", d.path + "/statement.key", "--public-key", d.path + "/statement.pub"])
        #expect(keygen.status == 0, "\(keygen.output)")
        let mode = try FileManager.default.attributesOfItem(atPath: d.path + "/statement.key")[.posixPermissions] as? Int
        #expect(mode == 0o600)

        let json = try await CLI.run(["statement", "--config", file, "--contract", "acme", "--period", "2026-11", "--key", d.path + "/statement.key",
                                      "--out", d.path + "/acme-2026-11.json"])
        #expect(json.status == 0 && json.output.contains("wrote \(d.path)/acme-2026-11.json: contract acme, period 2026-11-01, 3 lines, 4500 s used"),
                "\(json.output)")
        let bytes = try #require(FileManager.default.contents(atPath: d.path + "/acme-2026-11.json"))
        let text = String(decoding: bytes, as: UTF8.self)
        // Lines in the contract's time zone, oldest first, to the second; totals as the balance has them.
        #expect(text.contains(#""lines":[{"billed_seconds":900,"kind":"billable","ref":"glpi_task:3","technician":8,"ticket":"Laptop & <dock>","ticket_id":1,"worked_at":"2026-11-01T00:30:00+01:00"}"#), "\(text)")
        #expect(text.contains(#""totals":{"carried_in_seconds":0,"entry_count":3,"overage_seconds":0,"quota_seconds":72000,"raw_seconds":3361,"remaining_seconds":67500,"top_up_seconds":0,"used_seconds":4500}"#))
        // The books' head of the contract, as `hourledger verify` recomputes it.
        let books = try await CLI.run(["verify", "--config", file])
        #expect(books.status == 0 && books.output.contains("the books verify: 1 chain,"), "\(books.output)")
        let head = try #require(try h.runtime.ledger.read { try $0.bookHead(contractID: "acme") })
        #expect(text.contains(#""books_head":{"hash":"\#(head.hash)","seq":\#(head.seq)}"#), "\(text)")
        let verify = try await CLI.run(["statement", "verify", d.path + "/acme-2026-11.json", "--public-key", d.path + "/statement.pub"])
        #expect(verify.status == 0 && verify.output.contains("OK, signed by the given key: contract acme, period 2026-11-01, 3 lines, 4500 s used"),
                "\(verify.output)")

        let csv = try await CLI.run(["statement", "--config", file, "--contract", "acme", "--period", "2026-11", "--key", d.path + "/statement.key",
                                     "--format", "csv", "--out", d.path + "/acme-2026-11.csv"])
        #expect(csv.status == 0, "\(csv.output)")
        let csvText = try #require(FileManager.default.contents(atPath: d.path + "/acme-2026-11.csv")).map { String(decoding: $0, as: UTF8.self) }
        #expect(csvText?.contains("glpi_task:1,1,Laptop & <dock>,2026-11-20T10:00:00+01:00,7,billable,2700\n") == true, "\(csvText ?? "")")
        #expect(try await CLI.run(["statement", "verify", d.path + "/acme-2026-11.csv", "--public-key", d.path + "/statement.pub"]).status == 0)
        #expect(try await CLI.run(["statement", "--config", file, "--contract", "acme", "--period", "2026-11", "--key", d.path + "/statement.key",
                                   "--out", d.path + "/acme-2026-11.csv"]).output.contains("cannot create"), "never overwrites")

        // One byte changed, anywhere: in a number, in a name, in the signature, in the framing. Each fails.
        let csvBytes = try #require(FileManager.default.contents(atPath: d.path + "/acme-2026-11.csv"))
        for (original, name) in [(bytes, "json"), (csvBytes, "csv")] {
            var failed = 0
            let positions = Set([0, original.count / 3, original.count / 2, original.count * 2 / 3, original.count - 30, original.count - 2])
            for position in positions.sorted() {
                var changed = [UInt8](original)
                changed[position] = changed[position] == UInt8(ascii: "1") ? UInt8(ascii: "2") : UInt8(ascii: "1")
                let path = d.write("changed-\(position).\(name)", String(decoding: changed, as: UTF8.self))
                let run = try await CLI.run(["statement", "verify", path, "--public-key", d.path + "/statement.pub"])
                if run.exitedNormally && run.status != 0 { failed += 1 } else { Issue.record("\(name) byte \(position) changed still verifies: \(run.output)") }
            }
            #expect(failed == positions.count)
        }
        // Another key: refused.
        _ = try await CLI.run(["statement", "keygen", "--private-key", d.path + "/other.key", "--public-key", d.path + "/other.pub"])
        let other = try await CLI.run(["statement", "verify", d.path + "/acme-2026-11.json", "--public-key", d.path + "/other.pub"])
        #expect(other.status != 0 && other.output.contains("names another signing key"), "\(other.output)")
        // The statement's head is in the chain; rewritten (record 1 re-hashed), it no longer is.
        #expect(try await CLI.run(["verify", "--config", file, "--statement", d.path + "/acme-2026-11.json"]).status == 0)
        // A hand edit in the ledger file: `hourledger verify` names the entry and fails.
        try await h.runtime.ledger.sqlite.writer.writeWithoutTransaction { db in
            try db.execute(sql: "UPDATE entry SET billed_seconds = 3600 WHERE source = 'helpdesk_task' AND source_id = 1")
        }
        let tampered = try await CLI.run(["verify", "--config", file])
        #expect(tampered.exitedNormally && tampered.status != 0)
        #expect(tampered.output.contains("BROKEN entry helpdesk_task:1 (ticket 1) was changed outside HourLedger: billed_seconds 3600 in the ledger, 2700 in the books"),
                "\(tampered.output)")
        try await h.runtime.ledger.sqlite.writer.writeWithoutTransaction { db in
            // Two other first characters whatever the hash began with (1 hash in 256 begins with "ab").
            try db.execute(sql: """
                UPDATE book_record SET hash = (CASE WHEN substr(hash, 1, 2) = 'ab' THEN 'cd' ELSE 'ab' END) || substr(hash, 3)
                WHERE contract_id = 'acme' AND seq = \(head.seq)
                """)
        }
        let rewritten = try await CLI.run(["verify", "--config", file, "--statement", d.path + "/acme-2026-11.json"])
        #expect(rewritten.status != 0 && rewritten.output.contains("acme-2026-11.json: its books head (contract acme, record #\(head.seq)"),
                "\(rewritten.output)")
        let bad = try await CLI.run(["statement", "--config", file, "--contract", "acme", "--period", "2025-01", "--key", d.path + "/statement.key"])
        #expect(bad.status != 0 && bad.output.contains("contract acme has no period '2025-01'"), "\(bad.output)")
    }
}
