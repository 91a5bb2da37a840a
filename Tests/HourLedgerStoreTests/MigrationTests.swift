import Foundation
import GRDB
import HourLedgerCore
import HourLedgerPostgres
@testable import HourLedgerStore
import HourLedgerUseCases
import TestKit
import Testing

/// A ledger written by version 9 (GLPI-named columns, HTML in queued write-backs) opens under today's schema with
/// every second, task link and queued word intact.
@Suite struct MigrationTests {
    @Test func aVersion9LedgerKeepsItsTaskLinksAndQueuedWordsUnderNeutralNames() async throws {
        let directory = TemporaryDirectory()
        let path = directory.path + "/v9.sqlite"
        try await oldLedgerFile(at: path, upTo: "v9-ticket-removal") { db in
            try db.execute(sql: """
                INSERT INTO ticket(id, name, entity, groups, category, status, date_mod, contract_id, match_reason, synced_at)
                    VALUES (1, 'Laptop', 1, '[]', 0, 2, '2026-11-20 09:00:00', 'acme', 'contract acme: entity 1', 0);
                INSERT INTO entry(source, source_id, ticket_id, contract_id, period_key, worked_at, raw_seconds, billed_seconds, rounding,
                                  technician, is_private, content, updated_at)
                    VALUES ('glpi_task', 55, 1, 'acme', '2026-11-01', 1795165200, 1200, 1800, 'up to 15 min', 7, 1, 'swap', 0);
                INSERT INTO entry(source, source_id, ticket_id, contract_id, period_key, worked_at, raw_seconds, billed_seconds, rounding,
                                  technician, is_private, content, updated_at, kind, entry_key, note, glpi_task_id, created_by)
                    VALUES ('hourledger', 1, 1, 'acme', '2026-11-01', 1795168800, 600, 900, 'up to 15 min', 7, 1, 'R&D <call>', 0,
                            'billable', 'k-1', 'R&D <call>', 56, 'alice');
                INSERT INTO balance(contract_id, period_key, period_start, period_end, quota_seconds, used_seconds, raw_seconds, entry_count)
                    VALUES ('acme', '2026-11-01', 1793491200, 1796083200, 3600, 2700, 1800, 2);
                INSERT INTO alert(id, contract_id, period_key, threshold, fired_at, used_seconds, available_seconds, used_basis_points, ticket_id)
                    VALUES (3, 'acme', '2026-11-01', 80, 0, 2700, 3600, 7500, 1);
                INSERT INTO alert_delivery(alert_id, channel, ticket_id, payload, next_attempt_at, created_at)
                    VALUES (3, 'followup', 1, '<p>[hourledger:alert-3] ACME used 75 % &amp; more</p>', 0, 0);
                """)
            let payload = #"{"content":"<p>[hourledger:k-1] 0:15 h billable: R&amp;D &lt;call&gt;</p>","date":0,"glpiTaskID":56,"seconds":900,"technician":7}"#
            try db.execute(sql: "INSERT INTO outbox(entry_key, action, ticket_id, payload, next_attempt_at, created_at) VALUES ('k-1', 'update', 1, ?, 0, 0)",
                           arguments: [payload])
        }

        let acme = Contract(id: "acme", name: "ACME", entity: 1, quotaSeconds: 3600, starts: CivilDate("2026-01-01")!,
                            rounding: RoundingPolicy(incrementSeconds: 900, mode: .up))
        let ledger = try sqliteLedger(path: path, contracts: [acme])
        let entries = try ledger.read { try $0.entries(ticketID: 1) }
        #expect(entries.map(\.source) == [.helpdeskTask, .hourledger])
        #expect(entries.map(\.remoteTaskID) == [nil, 56])
        #expect(try ledger.workEntries(ticketID: 1).map(\.remoteTaskID) == [56])
        let balance = try #require(try ledger.balance(of: acme, at: .utc("2026-11-21 00:00:00"), now: .utc("2026-11-21 00:00:00")))
        #expect((balance.usedSeconds, balance.rawSeconds, balance.entryCount) == (2700, 1800, 2))
        #expect(try ledger.balanceDiscrepancies().isEmpty)
        // The queued write-back holds plain words now; each helpdesk's adapter marks them up and adds the marker.
        let item = try #require(try ledger.outboxItems().first)
        #expect(item.payload.text == "0:15 h billable: R&D <call>")
        #expect(item.payload.remoteTaskID == 56)
        #expect(try ledger.alertDeliveries().map(\.payload) == ["ACME used 75 % & more"])
        // Opening again migrates nothing twice.
        try ledger.close()
        let again = try sqliteLedger(path: path, contracts: [acme])
        #expect(try again.outboxItems().first?.payload.text == "0:15 h billable: R&D <call>")
    }

    /// A ledger from before the reports by type: its tickets have no category name yet, so the high-water mark is
    /// dropped and the next poll is a full one that gives every ticket its type and category; nothing else moves.
    @Test func aVersion14LedgerPollsInFullOnceForTicketTypes() async throws {
        let directory = TemporaryDirectory()
        let path = directory.path + "/v14.sqlite"
        try await oldLedgerFile(at: path, upTo: "v14-top-ups") { db in
            try db.execute(sql: """
                INSERT INTO ticket(id, name, entity, groups, category, status, date_mod, contract_id, match_reason, synced_at)
                    VALUES (1, 'Laptop', 1, '', 3, 2, '2026-11-20 09:00:00', 'acme', 'contract acme: entity 1', 0);
                INSERT INTO sync_state(key, value) VALUES ('helpdesk.high_water', '2026-11-20 09:00:00'), ('other', 'kept');
                """)
        }
        let ledger = try sqliteLedger(path: path, contracts: [])
        #expect(try ledger.state("helpdesk.high_water") == nil)
        #expect(try ledger.state("other") == "kept")
        let ticket = try #require(try ledger.read { try $0.ticket(1) })
        #expect((ticket.facts.categoryName, ticket.facts.category, ticket.contractID) == ("", 3, "acme"))
    }

    /// The look-ups of an incremental poll go through an index, not a scan of every entry.
    @Test func theChangedTasksLookUpsUseAnIndex() throws {
        let queue = try DatabaseQueue()
        try Migrations.migrator.migrate(queue)
        try queue.read { db in
            func plan(_ sql: String) throws -> String {
                try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql).map { $0["detail"] as String }.joined(separator: "; ")
            }
            let tasks = try plan("SELECT * FROM entry WHERE source = 'helpdesk_task' AND source_id IN (1, 2, 3)")
            #expect(tasks.contains("USING INDEX") && tasks.contains("source_id=?"), "\(tasks)")
            let own = try plan("SELECT remote_task_id FROM entry WHERE remote_task_id IN (1, 2, 3)")
            #expect(own.contains("USING INDEX entry_remote_task") || own.contains("USING COVERING INDEX entry_remote_task"), "\(own)")
        }
    }

    /// The connection that writes fsyncs every commit (`synchronous=FULL`), so a webhook answered 2xx or an entry
    /// stored survives a power cut, not only a killed process. GRDB sets NORMAL when it turns WAL on; NORMAL in WAL
    /// mode syncs only at checkpoints, and the last commits before a power cut could be lost.
    @Test func everyCommitIsFsyncedOnTheConnectionThatWrites() throws {
        let directory = TemporaryDirectory()
        let ledger = try SQLiteLedger(path: directory.path + "/ledger.sqlite")
        let synchronous = try ledger.writer.writeWithoutTransaction { try Int.fetchOne($0, sql: "PRAGMA synchronous") }
        #expect(synchronous == 2, "PRAGMA synchronous on the writer is \(synchronous.map(String.init) ?? "nil"), not 2 (FULL)")
        #expect(try ledger.writer.writeWithoutTransaction { try String.fetchOne($0, sql: "PRAGMA journal_mode") } == "wal")
        // Statement journals in memory (2), not in a temporary file written page by page.
        #expect(try ledger.writer.writeWithoutTransaction { try Int.fetchOne($0, sql: "PRAGMA temp_store") } == 2)
        try ledger.close()
    }
}

/// PostgreSQL's schema is kept in step with SQLite's: together its migrations stand for every SQLite migration, in
/// SQLite's order, so a ledger copied between them is at the same version on both.
@Suite struct PostgresSchemaTests {
    @Test func postgresMigrationsStandForEverySQLiteMigration() {
        #expect(HourLedgerPostgres.PostgresSchema.sqliteMigrations == Migrations.migrator.migrations)
    }
}
