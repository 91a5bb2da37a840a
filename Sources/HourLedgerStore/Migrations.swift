import Foundation
import GRDB

/// The ledger's schema, one migration per version. A migration never changes once released: every ledger ever
/// written opens, and reads the same seconds, under any later version.
enum Migrations {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-ledger") { db in
            try db.execute(sql: """
                CREATE TABLE ticket (
                    id INTEGER PRIMARY KEY,
                    name TEXT NOT NULL,
                    entity INTEGER NOT NULL,
                    groups TEXT NOT NULL,
                    category INTEGER NOT NULL,
                    status INTEGER NOT NULL,
                    date_mod TEXT NOT NULL,
                    contract_id TEXT,
                    match_reason TEXT NOT NULL,
                    task_fingerprint TEXT,
                    synced_at INTEGER NOT NULL
                );
                CREATE INDEX ticket_contract ON ticket(contract_id);
                CREATE TABLE entry (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    source TEXT NOT NULL,
                    source_id INTEGER NOT NULL,
                    ticket_id INTEGER NOT NULL,
                    contract_id TEXT,
                    period_key TEXT,
                    worked_at INTEGER NOT NULL,
                    raw_seconds INTEGER NOT NULL CHECK (raw_seconds >= 0),
                    billed_seconds INTEGER NOT NULL CHECK (billed_seconds >= 0),
                    rounding TEXT NOT NULL,
                    technician INTEGER NOT NULL,
                    is_private INTEGER NOT NULL,
                    content TEXT NOT NULL,
                    updated_at INTEGER NOT NULL,
                    UNIQUE (source, source_id)
                );
                CREATE INDEX entry_ticket ON entry(ticket_id);
                CREATE INDEX entry_balance ON entry(contract_id, period_key);
                CREATE TABLE balance (
                    contract_id TEXT NOT NULL,
                    period_key TEXT NOT NULL,
                    period_start INTEGER NOT NULL,
                    period_end INTEGER,
                    quota_seconds INTEGER NOT NULL,
                    used_seconds INTEGER NOT NULL,
                    raw_seconds INTEGER NOT NULL,
                    entry_count INTEGER NOT NULL,
                    PRIMARY KEY (contract_id, period_key)
                );
                CREATE TABLE contract_move (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    ticket_id INTEGER NOT NULL,
                    from_contract TEXT,
                    to_contract TEXT,
                    raw_seconds INTEGER NOT NULL,
                    at INTEGER NOT NULL,
                    reason TEXT NOT NULL
                );
                CREATE INDEX contract_move_ticket ON contract_move(ticket_id);
                CREATE TABLE sync_state (
                    key TEXT PRIMARY KEY,
                    value TEXT NOT NULL
                );
                """)
        }
        migrator.registerMigration("v2-timers-entries-outbox") { db in
            try db.execute(sql: """
                ALTER TABLE entry ADD COLUMN kind TEXT NOT NULL DEFAULT 'billable';
                ALTER TABLE entry ADD COLUMN entry_key TEXT;
                ALTER TABLE entry ADD COLUMN note TEXT NOT NULL DEFAULT '';
                ALTER TABLE entry ADD COLUMN glpi_task_id INTEGER;
                ALTER TABLE entry ADD COLUMN created_by TEXT;
                CREATE UNIQUE INDEX entry_key ON entry(entry_key) WHERE entry_key IS NOT NULL;
                CREATE TABLE timer (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    technician INTEGER NOT NULL,
                    ticket_id INTEGER NOT NULL,
                    status TEXT NOT NULL,
                    state TEXT NOT NULL,
                    started_at INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL,
                    entry_id INTEGER
                );
                -- One open timer per technician and ticket, enforced by SQLite itself.
                CREATE UNIQUE INDEX timer_open ON timer(technician, ticket_id) WHERE status != 'stopped';
                CREATE TABLE outbox (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    entry_key TEXT NOT NULL,
                    action TEXT NOT NULL,
                    ticket_id INTEGER NOT NULL,
                    payload TEXT NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    next_attempt_at INTEGER NOT NULL,
                    last_error TEXT,
                    created_at INTEGER NOT NULL,
                    done_at INTEGER
                );
                CREATE INDEX outbox_pending ON outbox(done_at, id);
                CREATE TABLE audit (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    at INTEGER NOT NULL,
                    actor TEXT NOT NULL,
                    entry_key TEXT NOT NULL,
                    ticket_id INTEGER NOT NULL,
                    contract_id TEXT,
                    field TEXT NOT NULL,
                    old_value TEXT,
                    new_value TEXT,
                    reason TEXT NOT NULL
                );
                CREATE INDEX audit_ticket ON audit(ticket_id);
                CREATE INDEX audit_contract ON audit(contract_id);
                CREATE TABLE api_token (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    hash TEXT NOT NULL UNIQUE,
                    user TEXT NOT NULL,
                    helpdesk_user_id INTEGER NOT NULL,
                    role TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    revoked_at INTEGER
                );
                """)
        }
        migrator.registerMigration("v3-approval") { db in
            try db.execute(sql: "ALTER TABLE entry ADD COLUMN approval TEXT NOT NULL DEFAULT 'approved'")
            try db.execute(sql: "ALTER TABLE entry ADD COLUMN task_category INTEGER")
        }
        registerSettlement(&migrator)
        registerHints(&migrator)
        registerWebhookDeliveries(&migrator)
        registerOutboxFence(&migrator)
        registerTicketFailures(&migrator)
        registerTicketRemoval(&migrator)
        registerNeutralNames(&migrator)
        registerTaskLookups(&migrator)
        registerKeptFigures(&migrator)
        registerClosedTickets(&migrator)
        registerTopUps(&migrator)
        registerTicketTypes(&migrator)
        registerTicketLinks(&migrator)
        registerBooks(&migrator)
        registerLeanerEntries(&migrator)
        return migrator
    }

    static func registerSettlement(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v4-carry-over-alerts") { db in
            try db.execute(sql: """
                CREATE TABLE block_movement (
                    contract_id TEXT NOT NULL,
                    period_key TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    origin_key TEXT NOT NULL,
                    seconds INTEGER NOT NULL,
                    reason TEXT NOT NULL,
                    recorded_at INTEGER NOT NULL,
                    revised_at INTEGER,
                    PRIMARY KEY (contract_id, period_key, kind, origin_key)
                );
                -- Contracts whose balance changed since they were last settled (carry-over and alerts brought up to date).
                CREATE TABLE ledger_dirty (contract_id TEXT PRIMARY KEY);
                CREATE TABLE alert (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    contract_id TEXT NOT NULL,
                    period_key TEXT NOT NULL,
                    threshold INTEGER NOT NULL,
                    fired_at INTEGER NOT NULL,
                    used_seconds INTEGER NOT NULL,
                    available_seconds INTEGER NOT NULL,
                    used_basis_points INTEGER NOT NULL,
                    depletes_at INTEGER,
                    ticket_id INTEGER,
                    -- At most once per threshold and period, whatever happens to the time afterwards.
                    UNIQUE (contract_id, period_key, threshold)
                );
                CREATE TABLE alert_delivery (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    alert_id INTEGER NOT NULL REFERENCES alert(id),
                    channel TEXT NOT NULL,
                    ticket_id INTEGER,
                    payload TEXT NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    next_attempt_at INTEGER NOT NULL,
                    last_error TEXT,
                    created_at INTEGER NOT NULL,
                    done_at INTEGER,
                    failed_at INTEGER
                );
                CREATE INDEX alert_delivery_pending ON alert_delivery(done_at, failed_at, next_attempt_at);
                -- Reports read only these columns over a span of worked_at: the index answers them without the table.
                CREATE INDEX entry_report ON entry(worked_at, approval, kind, technician, contract_id, period_key, ticket_id, billed_seconds);
                -- The per-contract report groups by contract and period: this order streams the groups without a sort.
                CREATE INDEX entry_contract_report ON entry(contract_id, period_key, approval, kind, ticket_id, billed_seconds, worked_at);
                """)
            // Contracts with history are settled once after the upgrade.
            try db.execute(sql: "INSERT OR IGNORE INTO ledger_dirty(contract_id) SELECT DISTINCT contract_id FROM balance")
        }
    }

    static func registerHints(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v5-itop-hints") { db in
            try db.execute(sql: """
                ALTER TABLE ticket ADD COLUMN service INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE ticket ADD COLUMN agent INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE ticket ADD COLUMN class TEXT NOT NULL DEFAULT '';
                ALTER TABLE ticket ADD COLUMN ref TEXT NOT NULL DEFAULT '';
                ALTER TABLE ticket ADD COLUMN query_matches TEXT NOT NULL DEFAULT '';
                CREATE TABLE ticket_hint (
                    ticket_id INTEGER PRIMARY KEY,
                    received_at INTEGER NOT NULL,
                    count INTEGER NOT NULL
                );
                """)
        }
    }

    static func registerWebhookDeliveries(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v6-webhook-deliveries") { db in
            try db.execute(sql: """
                CREATE TABLE webhook_delivery (
                    signature TEXT PRIMARY KEY,
                    received_at INTEGER NOT NULL
                );
                CREATE INDEX webhook_delivery_received_at ON webhook_delivery(received_at);
                """)
        }
    }

    static func registerOutboxFence(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v7-outbox-fence-parking") { db in
            try db.execute(sql: """
                ALTER TABLE outbox ADD COLUMN in_doubt_since INTEGER;
                ALTER TABLE outbox ADD COLUMN parked_at INTEGER;
                ALTER TABLE outbox ADD COLUMN resolution TEXT;
                ALTER TABLE outbox ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
                CREATE INDEX outbox_ticket_pending ON outbox(ticket_id, id) WHERE done_at IS NULL;
                -- A record attempted before this version may have landed: it waits out the fence from now, then is looked up.
                UPDATE outbox SET in_doubt_since = CAST(strftime('%s', 'now') AS INTEGER) WHERE done_at IS NULL AND attempts > 0;
                UPDATE outbox SET resolution = 'delivered' WHERE done_at IS NOT NULL;
                ALTER TABLE alert_delivery ADD COLUMN in_doubt_since INTEGER;
                UPDATE alert_delivery SET in_doubt_since = CAST(strftime('%s', 'now') AS INTEGER)
                    WHERE done_at IS NULL AND failed_at IS NULL AND attempts > 0;
                """)
        }
    }

    static func registerTicketFailures(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v8-ticket-failures") { db in
            try db.execute(sql: """
                CREATE TABLE ticket_failure (
                    ticket_id INTEGER PRIMARY KEY,
                    error TEXT NOT NULL,
                    first_failed_at INTEGER NOT NULL,
                    last_failed_at INTEGER NOT NULL,
                    attempts INTEGER NOT NULL
                );
                """)
        }
    }

    static func registerTicketRemoval(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v9-ticket-removal") { db in
            try db.execute(sql: """
                ALTER TABLE ticket ADD COLUMN removed TEXT;
                ALTER TABLE ticket ADD COLUMN removed_at INTEGER;
                """)
        }
    }

    /// v10: names that say what they hold whatever the helpdesk. Time read from a helpdesk task is `helpdesk_task`
    /// (it was named after GLPI, the first helpdesk), the task an entry's write-back created is `remote_task_id`, and
    /// a queued write-back or alert followup holds its words in plain text, which each helpdesk's adapter marks up.
    static func registerNeutralNames(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v10-neutral-names") { db in
            try db.execute(sql: """
                ALTER TABLE entry RENAME COLUMN glpi_task_id TO remote_task_id;
                UPDATE entry SET source = 'helpdesk_task' WHERE source = 'glpi_task';
                """)
            for row in try Row.fetchAll(db, sql: "SELECT id, entry_key, payload FROM outbox") {
                let payload = try LegacyPayload.writeBack(row["payload"], entryKey: row["entry_key"])
                try db.execute(sql: "UPDATE outbox SET payload = ? WHERE id = ?", arguments: [payload, row["id"] as Int64])
            }
            for row in try Row.fetchAll(db, sql: "SELECT id, alert_id, payload FROM alert_delivery WHERE channel = 'followup'") {
                let text = LegacyPayload.plainText(row["payload"], marker: "[hourledger:alert-\(row["alert_id"] as Int64)]")
                try db.execute(sql: "UPDATE alert_delivery SET payload = ? WHERE id = ?", arguments: [text, row["id"] as Int64])
            }
        }
    }
}

extension Migrations {
    /// An incremental poll asks which of the tasks that changed HourLedger wrote itself: without this index each
    /// look-up of 500 ids scanned every entry (a poll against a ledger of a million entries took seconds where its
    /// requests took a quarter of one). Entries by task id already have the (source, source_id) unique index.
    static func registerTaskLookups(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v11-task-lookups") { db in
            try db.execute(sql: """
                CREATE INDEX entry_remote_task ON entry(remote_task_id) WHERE remote_task_id IS NOT NULL;
                """)
        }
    }
}

/// Queued write-backs as versions before 10 stored them: the task's HTML, with the marker in front.
enum LegacyPayload {
    /// The JSON of a `WriteBack` from the JSON an older version wrote.
    static func writeBack(_ json: String, entryKey: String) throws -> String {
        guard var object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else {
            throw StoreError(description: "v10 migration: an outbox payload is not a JSON object")
        }
        if let content = object.removeValue(forKey: "content") as? String {
            object["text"] = plainText(content, marker: "[hourledger:\(entryKey)]")
        }
        if let task = object.removeValue(forKey: "glpiTaskID") { object["remote_task_id"] = task }
        return String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }

    /// `<p>[marker] words</p>` as plain `words`: the paragraph and the three escapes GLPI and iTop store undone.
    static func plainText(_ html: String, marker: String) -> String {
        var text = html
        if text.hasPrefix("<p>") { text.removeFirst(3) }
        if text.hasSuffix("</p>") { text.removeLast(4) }
        text = text.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&amp;", with: "&")
        if text.hasPrefix(marker + " ") { text.removeFirst(marker.count + 1) } else if text.hasPrefix(marker) { text.removeFirst(marker.count) }
        return text
    }
}

extension Migrations {
    /// The SQL that gives `contract` the next balance revision. An update and an insert rather than INSERT OR
    /// REPLACE: a trigger's conflict clause gives way to that of the statement firing it, the balance upsert's ABORT.
    private static func revise(_ contract: String, when condition: String = "1") -> String {
        """
        UPDATE balance_revision SET revision = (SELECT MAX(revision) FROM balance_revision) + 1
            WHERE contract_id = \(contract) AND \(condition);
        INSERT INTO balance_revision(contract_id, revision)
            SELECT \(contract), (SELECT COALESCE(MAX(revision), 0) + 1 FROM balance_revision)
            WHERE \(condition) AND NOT EXISTS (SELECT 1 FROM balance_revision WHERE contract_id = \(contract));
        """
    }

    /// `/status`, `GET /api/v1/contracts` and the dashboard read every contract's balance and the ledger's counts on
    /// each request. Triggers keep both current as the rows change, whoever changes them (this process, another one on
    /// the same file, a repair by hand): each contract's balance revision says whether balances worked out earlier
    /// still hold, and the counts of tickets and entries are read from a row instead of counted over a million rows.
    /// When a ticket was solved or closed: the report of tickets closed with no time reads them by that instant.
    /// Tickets already solved or closed count from their last sync, the nearest instant the ledger knows.
    static func registerClosedTickets(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v13-closed-tickets") { db in
            try db.execute(sql: """
                ALTER TABLE ticket ADD COLUMN closed_at INTEGER;
                UPDATE ticket SET closed_at = synced_at WHERE status IN (5, 6);
                CREATE INDEX ticket_closed ON ticket(closed_at) WHERE closed_at IS NOT NULL;
                """)
        }
    }

    /// Hours sold on top of a block. Lines are only ever added or voided; a trigger moves the contract's balance
    /// revision either way, so every process sees the new balance at once.
    static func registerTopUps(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v14-top-ups") { db in
            try db.execute(sql: """
                CREATE TABLE top_up (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    contract_id TEXT NOT NULL,
                    seconds INTEGER NOT NULL CHECK (seconds > 0),
                    note TEXT NOT NULL,
                    price INTEGER,
                    expires TEXT,
                    added_at INTEGER NOT NULL,
                    added_by TEXT NOT NULL,
                    voided_at INTEGER,
                    voided_by TEXT,
                    void_reason TEXT
                );
                CREATE INDEX top_up_contract ON top_up(contract_id, id);
                CREATE TRIGGER top_up_revised_on_insert AFTER INSERT ON top_up BEGIN
                    \(revise("NEW.contract_id"))
                END;
                CREATE TRIGGER top_up_revised_on_update AFTER UPDATE ON top_up BEGIN
                    \(revise("NEW.contract_id"))
                END;
                """)
        }
    }

    /// A ticket's category (GLPI) or service (iTop) by name, for the reports by type and category (the type goes in the
    /// existing `class` column). The next poll is a full one, so every ticket gets both, not only those that change.
    static func registerTicketTypes(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v15-ticket-types") { db in
            try db.execute(sql: """
                ALTER TABLE ticket ADD COLUMN category_name TEXT NOT NULL DEFAULT '';
                DELETE FROM sync_state WHERE key = 'helpdesk.high_water';
                """)
        }
    }

    /// The HourLedger contracts a ticket is linked to by hand in the helpdesk (comma-separated ids), so a re-match
    /// from stored tickets keeps the links, and a poll finds the tickets whose link went away.
    static func registerTicketLinks(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v16-ticket-links") { db in
            try db.execute(sql: """
                ALTER TABLE ticket ADD COLUMN linked_contracts TEXT NOT NULL DEFAULT '';
                CREATE INDEX ticket_linked ON ticket(id) WHERE linked_contracts != '';
                """)
        }
    }

    static func registerBooks(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v17-books") { db in
            // Tamper-evident books: each contract's changes, one record per transaction, each holding the hash of
            // the one before it. Filled by the stores, in the transaction that makes the change.
            try db.execute(sql: """
                CREATE TABLE book_record (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    contract_id TEXT NOT NULL,
                    seq INTEGER NOT NULL,
                    at INTEGER NOT NULL,
                    content TEXT NOT NULL,
                    previous_hash TEXT NOT NULL,
                    hash TEXT NOT NULL,
                    UNIQUE (contract_id, seq)
                );
                """)
        }
    }

    static func registerLeanerEntries(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v18-leaner-entries") { db in
            // entry_contract_report begins with (contract_id, period_key): every look-up entry_balance served, it
            // serves, and each entry written updated one b-tree fewer.
            try db.execute(sql: "DROP INDEX IF EXISTS entry_balance")
        }
    }

    static func registerKeptFigures(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v12-kept-figures") { db in
            try db.execute(sql: """
                CREATE TABLE balance_revision (contract_id TEXT PRIMARY KEY, revision INTEGER NOT NULL);
                CREATE INDEX balance_revision_order ON balance_revision(revision);
                INSERT INTO balance_revision(contract_id, revision)
                    SELECT contract_id, ROW_NUMBER() OVER (ORDER BY contract_id) FROM (SELECT DISTINCT contract_id FROM balance);
                CREATE TRIGGER balance_revised_on_insert AFTER INSERT ON balance BEGIN
                    \(revise("NEW.contract_id"))
                END;
                CREATE TRIGGER balance_revised_on_update AFTER UPDATE ON balance BEGIN
                    \(revise("OLD.contract_id", when: "OLD.contract_id != NEW.contract_id"))
                    \(revise("NEW.contract_id"))
                END;
                CREATE TRIGGER balance_revised_on_delete AFTER DELETE ON balance BEGIN
                    \(revise("OLD.contract_id"))
                END;

                CREATE TABLE ledger_count (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
                INSERT INTO ledger_count(name, value) VALUES
                    ('entries', (SELECT COUNT(*) FROM entry)),
                    ('tickets', (SELECT COUNT(*) FROM ticket WHERE removed IS NULL)),
                    ('unmatched', (SELECT COUNT(*) FROM ticket WHERE removed IS NULL AND contract_id IS NULL));
                CREATE TRIGGER entry_counted AFTER INSERT ON entry BEGIN
                    UPDATE ledger_count SET value = value + 1 WHERE name = 'entries';
                END;
                CREATE TRIGGER entry_uncounted AFTER DELETE ON entry BEGIN
                    UPDATE ledger_count SET value = value - 1 WHERE name = 'entries';
                END;
                CREATE TRIGGER ticket_counted AFTER INSERT ON ticket BEGIN
                    UPDATE ledger_count SET value = value + (NEW.removed IS NULL) WHERE name = 'tickets';
                    UPDATE ledger_count SET value = value + (NEW.removed IS NULL AND NEW.contract_id IS NULL) WHERE name = 'unmatched';
                END;
                CREATE TRIGGER ticket_recounted AFTER UPDATE OF removed, contract_id ON ticket
                WHEN (OLD.removed IS NULL) != (NEW.removed IS NULL) OR (OLD.contract_id IS NULL) != (NEW.contract_id IS NULL) BEGIN
                    UPDATE ledger_count SET value = value + (NEW.removed IS NULL) - (OLD.removed IS NULL) WHERE name = 'tickets';
                    UPDATE ledger_count SET value = value + (NEW.removed IS NULL AND NEW.contract_id IS NULL)
                        - (OLD.removed IS NULL AND OLD.contract_id IS NULL) WHERE name = 'unmatched';
                END;
                CREATE TRIGGER ticket_uncounted AFTER DELETE ON ticket BEGIN
                    UPDATE ledger_count SET value = value - (OLD.removed IS NULL) WHERE name = 'tickets';
                    UPDATE ledger_count SET value = value - (OLD.removed IS NULL AND OLD.contract_id IS NULL) WHERE name = 'unmatched';
                END;
                """)
        }
    }
}
