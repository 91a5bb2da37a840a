import Foundation
import GRDB
import HourLedgerCore
import HourLedgerPostgres
import HourLedgerStore
import HourLedgerUseCases
import PostgresTestServer
import TestKit
import Testing

/// The books: every ledger change in a per-contract hash chain, on each store; `verify` recomputes the chains and
/// names the first broken link, and an entry edited, added or deleted by hand in the database.
@Suite struct BooksTests {
    let t0 = Date.utc("2026-11-10 09:00:00")

    func month(_ ledger: Ledger) async throws {
        try await RepositoryContractTests().workload(ledger)
        let topUp = try await ledger.addTopUp(contractID: "acme", seconds: 36_000, note: "PO 4711", actor: "max", now: t0)
        _ = try await ledger.voidTopUp(id: topUp.id, reason: "wrong contract", actor: "max", now: t0)
    }

    @Test(arguments: Repository.allCases)
    func aLedgerNobodyTouchedVerifiesAndItsBooksHoldEveryChange(_ repository: Repository) async throws {
        let ledger = try repository.ledger(contracts: [RepositoryContractTests.acme, RepositoryContractTests.beta], clock: WallClock { Date.utc("2026-11-10 09:00:00") })
        try await month(ledger)
        let report = try ledger.verifyBooks()
        #expect(report.problems == [], "\(report.problems)")
        let entries = try ledger.read { try $0.allEntries() }.count
        #expect(report.contracts == 3 && report.entries == entries && report.records > 5)
        // Every kind of change is in the books: entries as they stand, deletions, the move, the top-up and its void.
        let records = try ledger.read { try $0.bookRecords() }
        let changes = records.flatMap { try! JSONDecoder().decode([BookChange].self, from: Data($0.content.utf8)) }
        let ops = Set(changes.map(\.op))
        #expect(ops.isSuperset(of: [.entry, .entryDeleted, .move, .topUp, .topUpVoided]), "\(ops)")
        #expect(changes.contains { $0.op == .move && $0.detail?.hasPrefix("from beta to acme") == true })
        // Chained: each record names the hash of the one before it, per contract.
        for (contract, chain) in Dictionary(grouping: records, by: \.contractID) {
            #expect(chain.map(\.seq) == Array(1...chain.count), "\(contract)")
            #expect(chain.first?.previousHash == BookRecord.genesisHash && zip(chain, chain.dropFirst()).allSatisfy { $0.hash == $1.previousHash })
        }
    }

    /// The hand-written JSON of the books is the text JSONEncoder with sorted keys writes, quotes, backslashes and
    /// control characters included, and it reads back as what was written.
    @Test func theBooksJSONIsWhatJSONEncoderWrites() throws {
        let changes = [
            BookChange(op: .entry, ref: "helpdesk_task:1", ticket: 1, contract: "acme", period: "2026-11-01", workedAt: 1_795_000_000, raw: 61,
                       billed: 900, kind: "billable", approval: "approved", technician: 7),
            BookChange(op: .move, ref: "ticket:2", ticket: 2, contract: nil, raw: -5, detail: "from \"a\" to b\\c:\n\ttab\r\u{8}\u{c} \u{1}\u{1f}é 💡 </x>"),
            BookChange(op: .topUpVoided, ref: "top_up:3", contract: "ä&<b>"),
            BookChange(op: .movement, ref: "carry:2026-10-01:x", raw: 0, billed: Int.max, technician: Int.min, detail: ""),
        ]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let expected = String(decoding: try encoder.encode(changes), as: UTF8.self)
        #expect(BookChange.json(changes) == expected, "\(BookChange.json(changes))\n\(expected)")
        #expect(try JSONDecoder().decode([BookChange].self, from: Data(BookChange.json(changes).utf8)) == changes)
        // A transaction's buffer writes each change as it is noted: its record holds the same text.
        let buffer = BookBuffer()
        for change in changes { buffer.note(change, contract: "acme") }
        var contents: [String] = []
        try buffer.flush(at: Date(timeIntervalSince1970: 0), head: { _ in nil }, append: { contents.append($0.content) })
        #expect(contents == [expected])
    }

    /// A row edited by hand in SQLite (through its own connection, as `sqlite3` would) is named by `verify`.
    @Test func aHandEditedRowIsNamed() async throws {
        for tamper in Tamper.allCases {
            let directory = TemporaryDirectory()
            let store = try SQLiteLedger(path: directory.path + "/l.sqlite")
            let ledger = Ledger(repository: store, profile: testProfile,
                                book: ContractBook([RepositoryContractTests.acme, RepositoryContractTests.beta]), clock: WallClock { Date.utc("2026-11-10 09:00:00") })
            try await month(ledger)
            #expect(try ledger.verifyBooks().problems == [])
            let sql = tamper.sql
            try await store.writer.writeWithoutTransaction { db in try db.execute(sql: sql) }
            let problems = try ledger.verifyBooks().problems
            #expect(problems.first?.contains(tamper.named) == true, "\(tamper): \(problems)")
        }
    }

    /// The same edits by hand in PostgreSQL (as `psql` would, outside any ledger transaction) are named the same way.
    @Test func aRowEditedByHandInPostgreSQLIsNamed() async throws {
        for tamper in Tamper.allCases {
            let store = try PostgresLedger(location: PostgresTestServer.start().freshLocation())
            let ledger = Ledger(repository: store, profile: testProfile,
                                book: ContractBook([RepositoryContractTests.acme, RepositoryContractTests.beta]), clock: WallClock { Date.utc("2026-11-10 09:00:00") })
            try await month(ledger)
            #expect(try ledger.verifyBooks().problems == [])
            try store.withWritingSession { try $0.script(tamper.sql) }
            let problems = try ledger.verifyBooks().problems
            #expect(problems.first?.contains(tamper.named) == true, "\(tamper): \(problems)")
            try store.close()
        }
    }

    enum Tamper: CaseIterable {
        case billedSeconds, addedEntry, deletedEntry, recordContent, recordRemoved, recordForged

        var sql: String {
            switch self {
            case .billedSeconds: "UPDATE entry SET billed_seconds = billed_seconds + 60 WHERE source = 'helpdesk_task' AND source_id = 10"
            case .addedEntry:
                """
                INSERT INTO entry(source, source_id, ticket_id, contract_id, period_key, worked_at, raw_seconds, billed_seconds, rounding, technician,
                    is_private, content, updated_at, kind, note, approval)
                SELECT source, 99, ticket_id, contract_id, period_key, worked_at, raw_seconds, billed_seconds, rounding, technician, is_private,
                    content, updated_at, kind, note, approval FROM entry WHERE source = 'helpdesk_task' AND source_id = 10
                """
            case .deletedEntry: "DELETE FROM entry WHERE source = 'helpdesk_task' AND source_id = 20"
            case .recordContent: "UPDATE book_record SET content = replace(content, '\"raw\":1500', '\"raw\":1600') WHERE contract_id = 'acme'"
            case .recordRemoved: "DELETE FROM book_record WHERE contract_id = 'acme' AND seq = 2"
            // Rewritten with a hash that fits its new content: the next record no longer follows it.
            case .recordForged: "UPDATE book_record SET hash = '" + String(repeating: "ab", count: 32) + "' WHERE contract_id = 'acme' AND seq = 1"
            }
        }

        var named: String {
            switch self {
            case .billedSeconds: "entry helpdesk_task:10 (ticket 1) was changed outside HourLedger: billed_seconds"
            case .addedEntry: "entry helpdesk_task:99 (ticket 1) is not in the books"
            case .deletedEntry: "entry helpdesk_task:20 (ticket 2) was deleted outside HourLedger"
            case .recordContent: "contract acme, record #"
            case .recordRemoved: "contract acme, record #3"
            case .recordForged: "contract acme, record #1"
            }
        }
    }
}
