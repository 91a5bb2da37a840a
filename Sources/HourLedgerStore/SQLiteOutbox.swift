import Foundation
import GRDB
import HourLedgerCore
import HourLedgerUseCases

// MARK: Outbox

extension SQLiteTransaction {
    static func outboxItem(_ row: Row) throws -> OutboxItem {
        OutboxItem(id: row["id"], entryKey: row["entry_key"], action: OutboxItem.Action(rawValue: row["action"]) ?? .create,
                   ticketID: row["ticket_id"], payload: try decode(WriteBack.self, row["payload"]), attempts: row["attempts"],
                   failures: row["failures"], nextAttemptAt: date(row["next_attempt_at"] as Int), lastError: row["last_error"],
                   inDoubtSince: date(row["in_doubt_since"] as Int?), parkedAt: date(row["parked_at"] as Int?),
                   createdAt: date(row["created_at"] as Int), doneAt: date(row["done_at"] as Int?),
                   resolution: (row["resolution"] as String?).flatMap(OutboxItem.Resolution.init))
    }

    func outboxItem(id: Int64) throws -> OutboxItem? {
        try db.rows(sql: "SELECT * FROM outbox WHERE id = ?", arguments: [id]).first.map(Self.outboxItem)
    }

    func outboxItems(entryKey: String) throws -> [OutboxItem] {
        try db.rows(sql: "SELECT * FROM outbox WHERE entry_key = ? ORDER BY id", arguments: [entryKey]).map(Self.outboxItem)
    }

    func pendingOutboxItems(parkedOnly: Bool, limit: Int) throws -> [OutboxItem] {
        try Row.fetchAll(db, sql: "SELECT * FROM outbox WHERE done_at IS NULL AND (? = 0 OR parked_at IS NOT NULL) ORDER BY id LIMIT ?",
                         arguments: [parkedOnly, limit]).map(Self.outboxItem)
    }

    func nextOutboxItem(now: Date, fenceSeconds: Int) throws -> OutboxItem? {
        try Row.fetchOne(db, sql: """
            SELECT o.* FROM outbox o
            WHERE o.done_at IS NULL AND o.parked_at IS NULL AND o.next_attempt_at <= ?
              AND (o.in_doubt_since IS NULL OR o.in_doubt_since <= ?)
              AND o.id = (SELECT MIN(p.id) FROM outbox p WHERE p.ticket_id = o.ticket_id AND p.done_at IS NULL)
            ORDER BY o.id LIMIT 1
            """, arguments: [seconds(now), seconds(now) - fenceSeconds]).map(Self.outboxItem)
    }

    func nextOutboxWakeUp(fenceSeconds: Int) throws -> Date? {
        try Int.fetchOne(db, sql: """
            SELECT MIN(MAX(o.next_attempt_at, COALESCE(o.in_doubt_since + ?, 0))) FROM outbox o
            WHERE o.done_at IS NULL AND o.parked_at IS NULL
              AND o.id = (SELECT MIN(p.id) FROM outbox p WHERE p.ticket_id = o.ticket_id AND p.done_at IS NULL)
            """, arguments: [fenceSeconds]).map(date)
    }

    func outboxStats(now: Date) throws -> OutboxStats {
        let row = try Row.fetchOne(db, sql: """
            SELECT COUNT(*) AS n, MIN(created_at) AS oldest, SUM(parked_at IS NOT NULL) AS parked, SUM(in_doubt_since IS NOT NULL) AS doubt,
                   (SELECT last_error FROM outbox WHERE done_at IS NULL AND last_error IS NOT NULL ORDER BY id LIMIT 1) AS error
            FROM outbox WHERE done_at IS NULL
            """)
        let oldest: Int? = row?["oldest"]
        return OutboxStats(depth: row?["n"] ?? 0, parked: row?["parked"] ?? 0, inDoubt: row?["doubt"] ?? 0,
                           oldestAgeSeconds: oldest.map { seconds(now) - $0 }, lastError: row?["error"])
    }

    func insertOutboxItem(_ item: OutboxItem) throws -> Int64 {
        try db.execute(sql: """
            INSERT INTO outbox(entry_key, action, ticket_id, payload, attempts, failures, next_attempt_at, last_error, in_doubt_since, parked_at,
                               created_at, done_at, resolution)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [item.entryKey, item.action.rawValue, item.ticketID, try Self.json(item.payload), item.attempts, item.failures,
                             seconds(item.nextAttemptAt), item.lastError, item.inDoubtSince.map(seconds), item.parkedAt.map(seconds),
                             seconds(item.createdAt), item.doneAt.map(seconds), item.resolution?.rawValue])
        return db.lastInsertedRowID
    }

    func updateOutboxItem(_ item: OutboxItem) throws {
        try db.execute(sql: """
            UPDATE outbox SET attempts = ?, failures = ?, next_attempt_at = ?, last_error = ?, in_doubt_since = ?, parked_at = ?, done_at = ?,
                resolution = ? WHERE id = ?
            """, arguments: [item.attempts, item.failures, seconds(item.nextAttemptAt), item.lastError, item.inDoubtSince.map(seconds),
                             item.parkedAt.map(seconds), item.doneAt.map(seconds), item.resolution?.rawValue, item.id])
    }
}

// MARK: Alerts

extension SQLiteTransaction {
    static func alert(_ row: Row) -> AlertRecord {
        AlertRecord(id: row["id"], contractID: row["contract_id"], periodKey: row["period_key"], threshold: row["threshold"],
                    firedAt: date(row["fired_at"] as Int), usedSeconds: row["used_seconds"], availableSeconds: row["available_seconds"],
                    usedBasisPoints: row["used_basis_points"], depletesAt: date(row["depletes_at"] as Int?), ticketID: row["ticket_id"])
    }

    static func delivery(_ row: Row) -> AlertDelivery {
        AlertDelivery(id: row["id"], alertID: row["alert_id"], channel: row["channel"], ticketID: row["ticket_id"], payload: row["payload"],
                      attempts: row["attempts"], nextAttemptAt: date(row["next_attempt_at"] as Int), lastError: row["last_error"],
                      createdAt: date(row["created_at"] as Int), doneAt: date(row["done_at"] as Int?), failedAt: date(row["failed_at"] as Int?),
                      inDoubtSince: date(row["in_doubt_since"] as Int?))
    }

    func alerts(contractID: String?, limit: Int) throws -> [AlertRecord] {
        try Row.fetchAll(db, sql: "SELECT * FROM alert WHERE (?1 IS NULL OR contract_id = ?1) ORDER BY id DESC LIMIT ?2",
                         arguments: [contractID, limit]).map(Self.alert)
    }

    func alertDeliveries(alertID: Int64?) throws -> [AlertDelivery] {
        try Row.fetchAll(db, sql: "SELECT * FROM alert_delivery WHERE (?1 IS NULL OR alert_id = ?1) ORDER BY id", arguments: [alertID]).map(Self.delivery)
    }

    func alertDelivery(id: Int64) throws -> AlertDelivery? {
        try Row.fetchOne(db, sql: "SELECT * FROM alert_delivery WHERE id = ?", arguments: [id]).map(Self.delivery)
    }

    func dueAlertDeliveries(now: Date, fenceSeconds: Int, limit: Int) throws -> [AlertDelivery] {
        try Row.fetchAll(db, sql: """
            SELECT * FROM alert_delivery WHERE done_at IS NULL AND failed_at IS NULL AND next_attempt_at <= ?
                AND (in_doubt_since IS NULL OR channel != 'followup' OR in_doubt_since <= ?) ORDER BY id LIMIT ?
            """, arguments: [seconds(now), seconds(now) - fenceSeconds, limit]).map(Self.delivery)
    }

    func alertDeliveryStats() throws -> AlertDeliveryStats {
        let row = try Row.fetchOne(db, sql: """
            SELECT SUM(done_at IS NULL AND failed_at IS NULL) AS pending, SUM(failed_at IS NOT NULL) AS failed,
                   (SELECT last_error FROM alert_delivery WHERE done_at IS NULL AND last_error IS NOT NULL ORDER BY id DESC LIMIT 1) AS error
            FROM alert_delivery
            """)
        return AlertDeliveryStats(pending: row?["pending"] ?? 0, failed: row?["failed"] ?? 0, lastError: row?["error"])
    }

    func insertAlert(_ alert: AlertRecord) throws -> Int64? {
        try db.execute(sql: """
            INSERT INTO alert(contract_id, period_key, threshold, fired_at, used_seconds, available_seconds, used_basis_points, depletes_at, ticket_id)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(contract_id, period_key, threshold) DO NOTHING
            """, arguments: [alert.contractID, alert.periodKey, alert.threshold, seconds(alert.firedAt), alert.usedSeconds, alert.availableSeconds,
                             alert.usedBasisPoints, alert.depletesAt.map(seconds), alert.ticketID])
        return db.changesCount > 0 ? db.lastInsertedRowID : nil
    }

    func insertAlertDelivery(_ delivery: AlertDelivery) throws -> Int64 {
        try db.execute(sql: """
            INSERT INTO alert_delivery(alert_id, channel, ticket_id, payload, attempts, next_attempt_at, last_error, created_at, done_at, failed_at,
                                       in_doubt_since)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [delivery.alertID, delivery.channel, delivery.ticketID, delivery.payload, delivery.attempts,
                             seconds(delivery.nextAttemptAt), delivery.lastError, seconds(delivery.createdAt), delivery.doneAt.map(seconds),
                             delivery.failedAt.map(seconds), delivery.inDoubtSince.map(seconds)])
        return db.lastInsertedRowID
    }

    func updateAlertDelivery(_ delivery: AlertDelivery) throws {
        try db.execute(sql: """
            UPDATE alert_delivery SET attempts = ?, next_attempt_at = ?, last_error = ?, done_at = ?, failed_at = ?, in_doubt_since = ? WHERE id = ?
            """, arguments: [delivery.attempts, seconds(delivery.nextAttemptAt), delivery.lastError, delivery.doneAt.map(seconds),
                             delivery.failedAt.map(seconds), delivery.inDoubtSince.map(seconds), delivery.id])
    }
}

// MARK: Hints, failing tickets, tokens

extension SQLiteTransaction {
    func pendingHints(limit: Int) throws -> [TicketHint] {
        try Row.fetchAll(db, sql: "SELECT * FROM ticket_hint ORDER BY received_at, ticket_id LIMIT ?", arguments: [limit]).map {
            TicketHint(ticketID: $0["ticket_id"], receivedAt: date($0["received_at"] as Int), count: $0["count"])
        }
    }

    func rememberSignature(_ signature: String, at now: Date) throws -> Bool {
        try db.run(sql: "INSERT INTO webhook_delivery(signature, received_at) VALUES (?, ?) ON CONFLICT DO NOTHING", arguments: [signature, seconds(now)])
        return db.changesCount == 1
    }

    func forgetSignatures(before: Date) throws {
        try db.run(sql: "DELETE FROM webhook_delivery WHERE received_at < ?", arguments: [seconds(before)])
    }

    func addHint(ticketID: Int, at now: Date) throws {
        try db.run(sql: "INSERT INTO ticket_hint(ticket_id, received_at, count) VALUES (?, ?, 1) ON CONFLICT(ticket_id) DO UPDATE SET count = count + 1",
                   arguments: [ticketID, seconds(now)])
    }

    func clearHint(_ hint: TicketHint) throws {
        try db.run(sql: "DELETE FROM ticket_hint WHERE ticket_id = ? AND count = ?", arguments: [hint.ticketID, hint.count])
    }

    func ticketFailures(limit: Int) throws -> [TicketFailureRecord] {
        try Row.fetchAll(db, sql: "SELECT * FROM ticket_failure ORDER BY first_failed_at, ticket_id LIMIT ?", arguments: [limit]).map {
            TicketFailureRecord(ticketID: $0["ticket_id"], error: $0["error"], firstFailedAt: date($0["first_failed_at"] as Int),
                                lastFailedAt: date($0["last_failed_at"] as Int), attempts: $0["attempts"])
        }
    }

    func recordTicketFailure(ticketID: Int, error: String, at now: Date) throws -> Bool {
        let known = try Bool.fetchOne(db, sql: "SELECT 1 FROM ticket_failure WHERE ticket_id = ?", arguments: [ticketID]) ?? false
        try db.run(sql: """
            INSERT INTO ticket_failure(ticket_id, error, first_failed_at, last_failed_at, attempts) VALUES (?, ?, ?, ?, 1)
            ON CONFLICT(ticket_id) DO UPDATE SET error = excluded.error, last_failed_at = excluded.last_failed_at, attempts = attempts + 1
            """, arguments: [ticketID, error, seconds(now), seconds(now)])
        return !known
    }

    func clearTicketFailures(_ ticketIDs: [Int]) throws {
        for chunk in chunked(ticketIDs) {
            try db.execute(sql: "DELETE FROM ticket_failure WHERE ticket_id IN (\(databaseQuestionMarks(count: chunk.count)))",
                           arguments: StatementArguments(chunk))
        }
    }

    func principal(tokenHash: String) throws -> Principal? {
        guard let row = try Row.fetchOne(db, sql: "SELECT user, helpdesk_user_id, role FROM api_token WHERE hash = ? AND revoked_at IS NULL",
                                         arguments: [tokenHash]),
              let role = Principal.Role(rawValue: row["role"])
        else { return nil }
        return Principal(user: row["user"], helpdeskUserID: row["helpdesk_user_id"], role: role)
    }

    func insertToken(hash: String, user: String, helpdeskUserID: Int, role: Principal.Role, at now: Date) throws {
        try db.execute(sql: "INSERT INTO api_token(hash, user, helpdesk_user_id, role, created_at) VALUES (?, ?, ?, ?, ?)",
                       arguments: [hash, user, helpdeskUserID, role.rawValue, seconds(now)])
    }

    func revokeTokens(user: String, at now: Date) throws -> Int {
        try db.execute(sql: "UPDATE api_token SET revoked_at = ? WHERE user = ? AND revoked_at IS NULL", arguments: [seconds(now), user])
        return db.changesCount
    }
}

// MARK: Reports and counts

extension SQLiteTransaction {
    /// One pass over the entries, no grouping by kind.
    static let sums = """
        SUM(CASE WHEN e.kind = 'billable' THEN e.billed_seconds ELSE 0 END) AS billable,
        SUM(CASE WHEN e.kind = 'prepaid' THEN e.billed_seconds ELSE 0 END) AS prepaid,
        SUM(CASE WHEN e.kind = 'internal' THEN e.billed_seconds ELSE 0 END) AS internal, COUNT(*) AS n
        """

    static func split(_ row: Row) -> TimeSplit {
        TimeSplit(billableSeconds: row["billable"], prepaidSeconds: row["prepaid"], internalSeconds: row["internal"], entryCount: row["n"])
    }

    func technicianTime(months: [(key: String, start: Date, end: Date)], contractID: String?) throws -> [TechnicianReportRow] {
        let placeholders = months.map { _ in "(?, ?, ?)" }.joined(separator: ", ")
        let values: [(any DatabaseValueConvertible)?] = months.flatMap { [$0.key, seconds($0.start), seconds($0.end)] as [(any DatabaseValueConvertible)?] }
            + [contractID, contractID]
        return try Row.fetchAll(db, sql: """
            WITH month(key, start, stop) AS (VALUES \(placeholders))
            SELECT e.technician, month.key, \(Self.sums)
            FROM month JOIN entry e INDEXED BY entry_report ON e.worked_at >= month.start AND e.worked_at < month.stop
            WHERE e.approval = 'approved' AND (? IS NULL OR e.contract_id = ?)
            GROUP BY month.key, e.technician ORDER BY month.key, e.technician
            """, arguments: StatementArguments(values)).map { TechnicianReportRow(technician: $0["technician"], month: $0["key"], time: Self.split($0)) }
    }

    func contractTime(from: Date, to: Date) throws -> [(contractID: String, periodKey: String, time: TimeSplit, tickets: Int)] {
        try Row.fetchAll(db, sql: """
            SELECT e.contract_id, e.period_key, \(Self.sums), COUNT(DISTINCT e.ticket_id) AS tickets
            FROM entry e INDEXED BY entry_contract_report
            WHERE e.contract_id IS NOT NULL AND e.period_key IS NOT NULL AND e.worked_at >= ? AND e.worked_at < ? AND e.approval = 'approved'
            GROUP BY e.contract_id, e.period_key
            """, arguments: [seconds(from), seconds(to)]).map { ($0["contract_id"], $0["period_key"], Self.split($0), $0["tickets"]) }
    }

    func ticketTime(from: Date, to: Date, contractID: String?) throws -> [TicketReportRow] {
        try Row.fetchAll(db, sql: """
            SELECT s.*, COALESCE(t.name, '') AS name, t.contract_id, COALESCE(t.class, '') AS type, COALESCE(t.category_name, '') AS category FROM (
                SELECT e.ticket_id, \(Self.sums), MIN(e.worked_at) AS first, MAX(e.worked_at) AS last
                FROM entry e INDEXED BY entry_report
                WHERE e.worked_at >= ? AND e.worked_at < ? AND e.approval = 'approved' AND (? IS NULL OR e.contract_id = ?)
                GROUP BY e.ticket_id
            ) s LEFT JOIN ticket t ON t.id = s.ticket_id
            ORDER BY s.billable + s.prepaid + s.internal DESC, s.ticket_id
            """, arguments: [seconds(from), seconds(to), contractID, contractID]).map { row in
            TicketReportRow(ticketID: row["ticket_id"], name: row["name"], contractID: row["contract_id"], type: row["type"],
                            category: row["category"], time: Self.split(row),
                            firstWorkedAt: date(row["first"] as Int), lastWorkedAt: date(row["last"] as Int))
        }
    }

    func counts() throws -> LedgerCounts {
        // Tickets and entries from the counts their triggers keep (migration v12); the small tables are counted.
        var kept: [String: Int] = [:]
        for row in try db.rows(sql: "SELECT name, value FROM ledger_count") { kept[row["name"]] = row["value"] }
        return LedgerCounts(tickets: kept["tickets"] ?? 0, unmatched: kept["unmatched"] ?? 0, entries: kept["entries"] ?? 0,
                     alerts: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM alert") ?? 0,
                     pendingHints: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM ticket_hint") ?? 0,
                     failingTickets: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM ticket_failure") ?? 0)
    }
}
