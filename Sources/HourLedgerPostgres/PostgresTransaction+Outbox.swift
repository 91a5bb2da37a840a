import Foundation
import HourLedgerCore
import HourLedgerUseCases
import PostgresNIO

// MARK: Outbox

extension PostgresTransaction {
    static func outboxItem(_ row: Row) throws -> OutboxItem {
        OutboxItem(id: try row["id"], entryKey: try row["entry_key"], action: OutboxItem.Action(rawValue: try row["action"]) ?? .create,
                   ticketID: try row["ticket_id"], payload: try decode(WriteBack.self, try row["payload"]), attempts: try row["attempts"],
                   failures: try row["failures"], nextAttemptAt: date(try row["next_attempt_at"] as Int), lastError: try row["last_error"],
                   inDoubtSince: date(try row["in_doubt_since"] as Int?), parkedAt: date(try row["parked_at"] as Int?),
                   createdAt: date(try row["created_at"] as Int), doneAt: date(try row["done_at"] as Int?),
                   resolution: (try row["resolution"] as String?).flatMap(OutboxItem.Resolution.init))
    }

    func outboxItem(id: Int64) throws -> OutboxItem? {
        try rows("SELECT * FROM outbox WHERE id = \(id)").first.map(Self.outboxItem)
    }

    func outboxItems(entryKey: String) throws -> [OutboxItem] {
        try rows("SELECT * FROM outbox WHERE entry_key = \(entryKey) ORDER BY id").map(Self.outboxItem)
    }

    func pendingOutboxItems(parkedOnly: Bool, limit: Int) throws -> [OutboxItem] {
        try rows("SELECT * FROM outbox WHERE done_at IS NULL AND (NOT \(parkedOnly) OR parked_at IS NOT NULL) ORDER BY id LIMIT \(limit)")
            .map(Self.outboxItem)
    }

    func nextOutboxItem(now: Date, fenceSeconds: Int) throws -> OutboxItem? {
        try rows("""
            SELECT o.* FROM outbox o
            WHERE o.done_at IS NULL AND o.parked_at IS NULL AND o.next_attempt_at <= \(seconds(now))
              AND (o.in_doubt_since IS NULL OR o.in_doubt_since <= \(seconds(now) - fenceSeconds))
              AND o.id = (SELECT MIN(p.id) FROM outbox p WHERE p.ticket_id = o.ticket_id AND p.done_at IS NULL)
            ORDER BY o.id LIMIT 1
            """).first.map(Self.outboxItem)
    }

    func nextOutboxWakeUp(fenceSeconds: Int) throws -> Date? {
        let wakeUp: Int? = try one("""
            SELECT MIN(GREATEST(o.next_attempt_at, COALESCE(o.in_doubt_since + \(fenceSeconds), 0))) FROM outbox o
            WHERE o.done_at IS NULL AND o.parked_at IS NULL
              AND o.id = (SELECT MIN(p.id) FROM outbox p WHERE p.ticket_id = o.ticket_id AND p.done_at IS NULL)
            """)
        return wakeUp.map(date)
    }

    func outboxStats(now: Date) throws -> OutboxStats {
        let row = try rows("""
            SELECT COUNT(*) AS n, MIN(created_at) AS oldest, COUNT(parked_at) AS parked, COUNT(in_doubt_since) AS doubt,
                   (SELECT last_error FROM outbox WHERE done_at IS NULL AND last_error IS NOT NULL ORDER BY id LIMIT 1) AS error
            FROM outbox WHERE done_at IS NULL
            """).first
        let oldest: Int? = try row?["oldest"]
        return OutboxStats(depth: try row?["n"] ?? 0, parked: try row?["parked"] ?? 0, inDoubt: try row?["doubt"] ?? 0,
                           oldestAgeSeconds: oldest.map { seconds(now) - $0 }, lastError: try row?["error"])
    }

    func insertOutboxItem(_ item: OutboxItem) throws -> Int64 {
        note(.outbox)
        let payload = try Self.json(item.payload)
        guard let id: Int64 = try one("""
            INSERT INTO outbox(entry_key, action, ticket_id, payload, attempts, failures, next_attempt_at, last_error, in_doubt_since, parked_at,
                               created_at, done_at, resolution)
            VALUES (\(item.entryKey), \(item.action.rawValue), \(item.ticketID), \(payload), \(item.attempts), \(item.failures),
                    \(seconds(item.nextAttemptAt)), \(item.lastError), \(item.inDoubtSince.map(seconds)), \(item.parkedAt.map(seconds)),
                    \(seconds(item.createdAt)), \(item.doneAt.map(seconds)), \(item.resolution?.rawValue))
            RETURNING id
            """) else { throw LedgerStoreError("the outbox insert returned no id") }
        return id
    }

    func updateOutboxItem(_ item: OutboxItem) throws {
        note(.outbox)
        try run("""
            UPDATE outbox SET attempts = \(item.attempts), failures = \(item.failures), next_attempt_at = \(seconds(item.nextAttemptAt)),
                last_error = \(item.lastError), in_doubt_since = \(item.inDoubtSince.map(seconds)), parked_at = \(item.parkedAt.map(seconds)),
                done_at = \(item.doneAt.map(seconds)), resolution = \(item.resolution?.rawValue)
            WHERE id = \(item.id)
            """)
    }
}

// MARK: Alerts

extension PostgresTransaction {
    static func alert(_ row: Row) throws -> AlertRecord {
        AlertRecord(id: try row["id"], contractID: try row["contract_id"], periodKey: try row["period_key"], threshold: try row["threshold"],
                    firedAt: date(try row["fired_at"] as Int), usedSeconds: try row["used_seconds"], availableSeconds: try row["available_seconds"],
                    usedBasisPoints: try row["used_basis_points"], depletesAt: date(try row["depletes_at"] as Int?), ticketID: try row["ticket_id"])
    }

    static func delivery(_ row: Row) throws -> AlertDelivery {
        AlertDelivery(id: try row["id"], alertID: try row["alert_id"], channel: try row["channel"], ticketID: try row["ticket_id"],
                      payload: try row["payload"], attempts: try row["attempts"], nextAttemptAt: date(try row["next_attempt_at"] as Int),
                      lastError: try row["last_error"], createdAt: date(try row["created_at"] as Int), doneAt: date(try row["done_at"] as Int?),
                      failedAt: date(try row["failed_at"] as Int?), inDoubtSince: date(try row["in_doubt_since"] as Int?))
    }

    func alerts(contractID: String?, limit: Int) throws -> [AlertRecord] {
        try rows("SELECT * FROM alert WHERE (\(contractID)::text IS NULL OR contract_id = \(contractID)) ORDER BY id DESC LIMIT \(limit)")
            .map(Self.alert)
    }

    func alertDeliveries(alertID: Int64?) throws -> [AlertDelivery] {
        try rows("SELECT * FROM alert_delivery WHERE (\(alertID)::bigint IS NULL OR alert_id = \(alertID)) ORDER BY id").map(Self.delivery)
    }

    func alertDelivery(id: Int64) throws -> AlertDelivery? {
        try rows("SELECT * FROM alert_delivery WHERE id = \(id)").first.map(Self.delivery)
    }

    func dueAlertDeliveries(now: Date, fenceSeconds: Int, limit: Int) throws -> [AlertDelivery] {
        try rows("""
            SELECT * FROM alert_delivery WHERE done_at IS NULL AND failed_at IS NULL AND next_attempt_at <= \(seconds(now))
                AND (in_doubt_since IS NULL OR channel <> 'followup' OR in_doubt_since <= \(seconds(now) - fenceSeconds)) ORDER BY id LIMIT \(limit)
            """).map(Self.delivery)
    }

    func alertDeliveryStats() throws -> AlertDeliveryStats {
        let row = try rows("""
            SELECT COUNT(*) FILTER (WHERE done_at IS NULL AND failed_at IS NULL) AS pending, COUNT(failed_at) AS failed,
                   (SELECT last_error FROM alert_delivery WHERE done_at IS NULL AND last_error IS NOT NULL ORDER BY id DESC LIMIT 1) AS error
            FROM alert_delivery
            """).first
        return AlertDeliveryStats(pending: try row?["pending"] ?? 0, failed: try row?["failed"] ?? 0, lastError: try row?["error"])
    }

    func insertAlert(_ alert: AlertRecord) throws -> Int64? {
        try one("""
            INSERT INTO alert(contract_id, period_key, threshold, fired_at, used_seconds, available_seconds, used_basis_points, depletes_at, ticket_id)
            VALUES (\(alert.contractID), \(alert.periodKey), \(alert.threshold), \(seconds(alert.firedAt)), \(alert.usedSeconds),
                    \(alert.availableSeconds), \(alert.usedBasisPoints), \(alert.depletesAt.map(seconds)), \(alert.ticketID))
            ON CONFLICT(contract_id, period_key, threshold) DO NOTHING RETURNING id
            """)
    }

    func insertAlertDelivery(_ delivery: AlertDelivery) throws -> Int64 {
        note(.alerts)
        guard let id: Int64 = try one("""
            INSERT INTO alert_delivery(alert_id, channel, ticket_id, payload, attempts, next_attempt_at, last_error, created_at, done_at, failed_at,
                                       in_doubt_since)
            VALUES (\(delivery.alertID), \(delivery.channel), \(delivery.ticketID), \(delivery.payload), \(delivery.attempts),
                    \(seconds(delivery.nextAttemptAt)), \(delivery.lastError), \(seconds(delivery.createdAt)), \(delivery.doneAt.map(seconds)),
                    \(delivery.failedAt.map(seconds)), \(delivery.inDoubtSince.map(seconds)))
            RETURNING id
            """) else { throw LedgerStoreError("the alert delivery insert returned no id") }
        return id
    }

    func updateAlertDelivery(_ delivery: AlertDelivery) throws {
        try run("""
            UPDATE alert_delivery SET attempts = \(delivery.attempts), next_attempt_at = \(seconds(delivery.nextAttemptAt)),
                last_error = \(delivery.lastError), done_at = \(delivery.doneAt.map(seconds)), failed_at = \(delivery.failedAt.map(seconds)),
                in_doubt_since = \(delivery.inDoubtSince.map(seconds))
            WHERE id = \(delivery.id)
            """)
    }
}

// MARK: Hints, failing tickets, tokens

extension PostgresTransaction {
    func pendingHints(limit: Int) throws -> [TicketHint] {
        try rows("SELECT * FROM ticket_hint ORDER BY received_at, ticket_id LIMIT \(limit)").map {
            TicketHint(ticketID: try $0["ticket_id"], receivedAt: date(try $0["received_at"] as Int), count: try $0["count"])
        }
    }

    func rememberSignature(_ signature: String, at now: Date) throws -> Bool {
        try changes("INSERT INTO webhook_delivery(signature, received_at) VALUES (\(signature), \(seconds(now))) ON CONFLICT DO NOTHING") == 1
    }

    func forgetSignatures(before: Date) throws {
        try run("DELETE FROM webhook_delivery WHERE received_at < \(seconds(before))")
    }

    func addHint(ticketID: Int, at now: Date) throws {
        note(.hints)
        try run("""
            INSERT INTO ticket_hint(ticket_id, received_at, count) VALUES (\(ticketID), \(seconds(now)), 1)
            ON CONFLICT(ticket_id) DO UPDATE SET count = ticket_hint.count + 1
            """)
    }

    /// One statement for the whole batch: a webhook burst costs a round trip per commit, not two per delivery.
    func rememberSignatures(_ signatures: [String], at now: Date) throws -> [Bool] {
        guard !signatures.isEmpty else { return [] }
        let stored = Set(try rows("""
            INSERT INTO webhook_delivery(signature, received_at)
            SELECT DISTINCT s, \(seconds(now))::bigint FROM unnest(\(signatures)::text[]) AS s
            ON CONFLICT DO NOTHING RETURNING signature
            """).map { try $0["signature"] as String })
        var seen = Set<String>()
        return signatures.map { stored.contains($0) && seen.insert($0).inserted }
    }

    func addHints(ticketIDs: [Int], at now: Date) throws {
        guard !ticketIDs.isEmpty else { return }
        note(.hints)
        try run("""
            INSERT INTO ticket_hint(ticket_id, received_at, count)
            SELECT t, \(seconds(now))::bigint, COUNT(*) FROM unnest(\(ticketIDs)::bigint[]) AS t GROUP BY t
            ON CONFLICT(ticket_id) DO UPDATE SET count = ticket_hint.count + EXCLUDED.count
            """)
    }

    func clearHint(_ hint: TicketHint) throws {
        try run("DELETE FROM ticket_hint WHERE ticket_id = \(hint.ticketID) AND count = \(hint.count)")
    }

    func ticketFailures(limit: Int) throws -> [TicketFailureRecord] {
        try rows("SELECT * FROM ticket_failure ORDER BY first_failed_at, ticket_id LIMIT \(limit)").map {
            TicketFailureRecord(ticketID: try $0["ticket_id"], error: try $0["error"], firstFailedAt: date(try $0["first_failed_at"] as Int),
                                lastFailedAt: date(try $0["last_failed_at"] as Int), attempts: try $0["attempts"])
        }
    }

    func recordTicketFailure(ticketID: Int, error: String, at now: Date) throws -> Bool {
        let known = try one("SELECT EXISTS (SELECT 1 FROM ticket_failure WHERE ticket_id = \(ticketID))", as: Bool.self) ?? false
        try run("""
            INSERT INTO ticket_failure(ticket_id, error, first_failed_at, last_failed_at, attempts) VALUES (\(ticketID), \(error), \(seconds(now)),
                \(seconds(now)), 1)
            ON CONFLICT(ticket_id) DO UPDATE SET error = excluded.error, last_failed_at = excluded.last_failed_at,
                attempts = ticket_failure.attempts + 1
            """)
        return !known
    }

    func clearTicketFailures(_ ticketIDs: [Int]) throws {
        try run("DELETE FROM ticket_failure WHERE ticket_id = ANY(\(ticketIDs))")
    }

    func principal(tokenHash: String) throws -> Principal? {
        guard let row = try rows("SELECT \"user\", helpdesk_user_id, role FROM api_token WHERE hash = \(tokenHash) AND revoked_at IS NULL").first,
              let role = Principal.Role(rawValue: try row["role"])
        else { return nil }
        return Principal(user: try row["user"], helpdeskUserID: try row["helpdesk_user_id"], role: role)
    }

    func insertToken(hash: String, user: String, helpdeskUserID: Int, role: Principal.Role, at now: Date) throws {
        try run("""
            INSERT INTO api_token(hash, "user", helpdesk_user_id, role, created_at) VALUES (\(hash), \(user), \(helpdeskUserID), \(role.rawValue),
                \(seconds(now)))
            """)
    }

    func revokeTokens(user: String, at now: Date) throws -> Int {
        try changes("UPDATE api_token SET revoked_at = \(seconds(now)) WHERE \"user\" = \(user) AND revoked_at IS NULL")
    }
}

// MARK: Reports and counts

extension PostgresTransaction {
    /// One pass over the entries, no grouping by kind.
    static let sums = """
        COALESCE(SUM(e.billed_seconds) FILTER (WHERE e.kind = 'billable'), 0)::bigint AS billable,
        COALESCE(SUM(e.billed_seconds) FILTER (WHERE e.kind = 'prepaid'), 0)::bigint AS prepaid,
        COALESCE(SUM(e.billed_seconds) FILTER (WHERE e.kind = 'internal'), 0)::bigint AS internal, COUNT(*) AS n
        """

    static func split(_ row: Row) throws -> TimeSplit {
        TimeSplit(billableSeconds: try row["billable"], prepaidSeconds: try row["prepaid"], internalSeconds: try row["internal"],
                  entryCount: try row["n"])
    }

    func technicianTime(months: [(key: String, start: Date, end: Date)], contractID: String?) throws -> [TechnicianReportRow] {
        try rows("""
            WITH month(key, start, stop) AS (SELECT * FROM unnest(\(months.map(\.key))::text[], \(months.map { seconds($0.start) })::bigint[],
                                                                 \(months.map { seconds($0.end) })::bigint[]))
            SELECT e.technician, month.key, \(unescaped: Self.sums)
            FROM month JOIN entry e ON e.worked_at >= month.start AND e.worked_at < month.stop
            WHERE e.approval = 'approved' AND (\(contractID)::text IS NULL OR e.contract_id = \(contractID))
            GROUP BY month.key, e.technician ORDER BY month.key, e.technician
            """).map { TechnicianReportRow(technician: try $0["technician"], month: try $0["key"], time: try Self.split($0)) }
    }

    func contractTime(from: Date, to: Date) throws -> [(contractID: String, periodKey: String, time: TimeSplit, tickets: Int)] {
        try rows("""
            SELECT e.contract_id, e.period_key, \(unescaped: Self.sums), COUNT(DISTINCT e.ticket_id) AS tickets
            FROM entry e
            WHERE e.contract_id IS NOT NULL AND e.period_key IS NOT NULL AND e.worked_at >= \(seconds(from)) AND e.worked_at < \(seconds(to))
                AND e.approval = 'approved'
            GROUP BY e.contract_id, e.period_key ORDER BY e.contract_id, e.period_key
            """).map { (try $0["contract_id"], try $0["period_key"], try Self.split($0), try $0["tickets"]) }
    }

    func ticketTime(from: Date, to: Date, contractID: String?) throws -> [TicketReportRow] {
        try rows("""
            SELECT s.*, COALESCE(t.name, '') AS name, t.contract_id, COALESCE(t.class, '') AS type, COALESCE(t.category_name, '') AS category FROM (
                SELECT e.ticket_id, \(unescaped: Self.sums), MIN(e.worked_at) AS first, MAX(e.worked_at) AS last
                FROM entry e
                WHERE e.worked_at >= \(seconds(from)) AND e.worked_at < \(seconds(to)) AND e.approval = 'approved'
                    AND (\(contractID)::text IS NULL OR e.contract_id = \(contractID))
                GROUP BY e.ticket_id
            ) s LEFT JOIN ticket t ON t.id = s.ticket_id
            ORDER BY s.billable + s.prepaid + s.internal DESC, s.ticket_id
            """).map { row in
            TicketReportRow(ticketID: try row["ticket_id"], name: try row["name"], contractID: try row["contract_id"], type: try row["type"],
                            category: try row["category"], time: try Self.split(row),
                            firstWorkedAt: date(try row["first"] as Int), lastWorkedAt: date(try row["last"] as Int))
        }
    }

    func counts() throws -> LedgerCounts {
        // Tickets and entries from the counts their triggers keep; the small tables are counted.
        var kept: [String: Int] = [:]
        for row in try rows("SELECT name, value FROM ledger_count") { kept[try row["name"]] = try row["value"] }
        let row = try rows("""
            SELECT (SELECT COUNT(*) FROM alert) AS alerts, (SELECT COUNT(*) FROM ticket_hint) AS hints,
                   (SELECT COUNT(*) FROM ticket_failure) AS failing
            """).first
        return LedgerCounts(tickets: kept["tickets"] ?? 0, unmatched: kept["unmatched"] ?? 0, entries: kept["entries"] ?? 0,
                            alerts: try row?["alerts"] ?? 0, pendingHints: try row?["hints"] ?? 0, failingTickets: try row?["failing"] ?? 0)
    }
}
