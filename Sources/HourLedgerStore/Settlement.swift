import Foundation
import GRDB
import HourLedgerCore

/// An alert that fired: a contract's period reached one of its thresholds.
public struct AlertRecord: Sendable, Equatable, Codable {
    public var id: Int64
    public var contractID: String
    public var periodKey: String
    public var threshold: Int
    public var firedAt: Date
    public var usedSeconds: Int
    public var availableSeconds: Int
    /// Used share of the available hours when it fired, in hundredths of a percent.
    public var usedBasisPoints: Int
    public var depletesAt: Date?
    /// The ticket whose time crossed the threshold, where a followup goes.
    public var ticketID: Int?

    enum CodingKeys: String, CodingKey {
        case id, threshold
        case contractID = "contract_id", periodKey = "period_key", firedAt = "fired_at", usedSeconds = "used_seconds"
        case availableSeconds = "available_seconds", usedBasisPoints = "used_basis_points", depletesAt = "depletes_at", ticketID = "ticket_id"
    }
}

/// One delivery of an alert: to a webhook, or as a private followup in the helpdesk.
public struct AlertDelivery: Sendable, Equatable, Codable {
    public var id: Int64
    public var alertID: Int64
    /// `webhook:<name>` or `followup`.
    public var channel: String
    public var ticketID: Int?
    /// The exact body to send: JSON for a webhook, HTML for a followup.
    public var payload: String
    public var attempts: Int
    public var nextAttemptAt: Date
    public var lastError: String?
    public var doneAt: Date?
    /// Set when delivery was given up after too many attempts.
    public var failedAt: Date?
    /// Set while an attempt's outcome is unknown: when that attempt started (see the outbox's write fence).
    public var inDoubtSince: Date?

    enum CodingKeys: String, CodingKey {
        case id, channel, payload, attempts
        case alertID = "alert_id", ticketID = "ticket_id", nextAttemptAt = "next_attempt_at", lastError = "last_error"
        case doneAt = "done_at", failedAt = "failed_at", inDoubtSince = "in_doubt_since"
    }
}

/// Where alerts go, from the configuration.
public struct AlertChannels: Sendable, Equatable {
    public var webhooks: [String]
    public var followup: Bool

    public init(webhooks: [String] = [], followup: Bool = false) {
        self.webhooks = webhooks
        self.followup = followup
    }
}

/// The JSON body every alert webhook receives.
struct AlertMessage: Encodable {
    var event = "hourledger.alert"
    var alertID: Int64
    var contract: [String: String]
    var periodKey: String
    var periodStart: Date
    var periodEnd: Date?
    var threshold: Int
    var percentUsed: Double
    var usedSeconds: Int
    var availableSeconds: Int
    var remainingSeconds: Int
    var forecast: DepletionForecast
    var firedAt: Date
    var ticketID: Int?

    enum CodingKeys: String, CodingKey {
        case event, contract, threshold, forecast
        case alertID = "alert_id", periodKey = "period_key", periodStart = "period_start", periodEnd = "period_end"
        case percentUsed = "percent_used", usedSeconds = "used_seconds", availableSeconds = "available_seconds"
        case remainingSeconds = "remaining_seconds", firedAt = "fired_at", ticketID = "ticket_id"
    }
}

extension LedgerStore {
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

    /// Brings carry-over records and alerts up to date for contracts whose balance changed (or all, at a rollover tick).
    /// Runs in one write transaction: a threshold fires once, whoever settles first, even across restarts.
    @discardableResult
    public func settle(contracts: [Contract], channels: AlertChannels, all: Bool = false, now: Date = Date()) async throws -> [AlertRecord] {
        try await settleReport(contracts: contracts, channels: channels, all: all, now: now).fired
    }

    /// What one settlement did: the alerts it fired, and the contracts it could not settle (damaged stored figures),
    /// which stay dirty so they are tried again while the others go on.
    public struct Settlement: Sendable {
        public var fired: [AlertRecord] = []
        public var failures: [ContractFailure] = []
    }

    public func settleReport(contracts: [Contract], channels: AlertChannels, all: Bool = false, now: Date = Date()) async throws -> Settlement {
        try await writer.write { db in
            let dirty = Set(try String.fetchAll(db, sql: "SELECT contract_id FROM ledger_dirty"))
            var settlement = Settlement()
            var failed: [String] = []
            for contract in contracts where all || dirty.contains(contract.id) {
                let rows: [BalanceRow]
                do {
                    rows = try Self.balances(db, of: contract, now: now)
                } catch let error as StoreError {
                    settlement.failures.append(ContractFailure(contractID: contract.id, error: error.description))
                    failed.append(contract.id)
                    continue
                }
                try Self.recordMovements(db, contract: contract, rows: rows, now: now)
                settlement.fired += try Self.fireAlerts(db, contract: contract, rows: rows, channels: channels, now: now)
            }
            try db.execute(sql: "DELETE FROM ledger_dirty")
            for id in failed { try db.execute(sql: "INSERT OR IGNORE INTO ledger_dirty(contract_id) VALUES (?)", arguments: [id]) }
            return settlement
        }
    }

    /// Makes the stored carry-over and expiry lines equal to the computed ones; a line revised by a late edit keeps
    /// when it was first recorded and says when it was revised.
    static func recordMovements(_ db: Database, contract: Contract, rows: [BalanceRow], now: Date) throws {
        struct Line: Hashable {
            var period: String
            var kind: String
            var origin: String
        }
        let stamp = Int(now.timeIntervalSince1970)
        var wanted: [Line: BlockMovement] = [:]
        for movement in rows.flatMap(\.movements) {
            wanted[Line(period: movement.periodKey, kind: movement.kind.rawValue, origin: movement.originKey)] = movement
        }
        var stored: [Line: Int] = [:]
        for row in try db.rows(sql: "SELECT period_key, kind, origin_key, seconds FROM block_movement WHERE contract_id = ?",
                               arguments: [contract.id]) {
            stored[Line(period: row["period_key"], kind: row["kind"], origin: row["origin_key"])] = row["seconds"]
        }
        for (key, movement) in wanted where stored[key] != movement.seconds {
            try db.run(sql: """
                INSERT INTO block_movement(contract_id, period_key, kind, origin_key, seconds, reason, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(contract_id, period_key, kind, origin_key) DO UPDATE SET seconds = excluded.seconds, reason = excluded.reason,
                    revised_at = excluded.recorded_at
                """, arguments: [contract.id, movement.periodKey, movement.kind.rawValue, movement.originKey, movement.seconds,
                                 movement.reason, stamp])
        }
        for line in stored.keys where wanted[line] == nil {
            try db.run(sql: "DELETE FROM block_movement WHERE contract_id = ? AND period_key = ? AND kind = ? AND origin_key = ?",
                       arguments: [contract.id, line.period, line.kind, line.origin])
        }
    }

    static func fireAlerts(_ db: Database, contract: Contract, rows: [BalanceRow], channels: AlertChannels, now: Date) throws -> [AlertRecord] {
        guard !contract.alertThresholds.isEmpty,
              let row = rows.first(where: { $0.periodStart <= now && ($0.periodEnd.map { now < $0 } ?? true) }),
              row.availableSeconds > 0
        else { return [] }
        var fired: [AlertRecord] = []
        for threshold in contract.alertThresholds.sorted() where row.usedSeconds * 100 >= threshold * row.availableSeconds {
            let forecast = DepletionForecast(usedSeconds: row.usedSeconds, remainingSeconds: row.remainingSeconds, periodStart: row.periodStart,
                                             periodEnd: row.periodEnd, now: now)
            let ticket = try Int.fetchOne(db, sql: """
                SELECT ticket_id FROM entry WHERE contract_id = ? AND period_key = ? AND kind != 'internal' AND approval = 'approved'
                ORDER BY updated_at DESC, id DESC LIMIT 1
                """, arguments: [contract.id, row.periodKey])
            let basisPoints = row.usedSeconds * 10000 / row.availableSeconds
            try db.execute(sql: """
                INSERT INTO alert(contract_id, period_key, threshold, fired_at, used_seconds, available_seconds, used_basis_points, depletes_at, ticket_id)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(contract_id, period_key, threshold) DO NOTHING
                """, arguments: [contract.id, row.periodKey, threshold, Int(now.timeIntervalSince1970), row.usedSeconds, row.availableSeconds,
                                 basisPoints, forecast.depletesAt.map { Int($0.timeIntervalSince1970) }, ticket])
            guard db.changesCount > 0 else { continue }
            let alert = AlertRecord(id: db.lastInsertedRowID, contractID: contract.id, periodKey: row.periodKey, threshold: threshold,
                                    firedAt: Date(timeIntervalSince1970: TimeInterval(Int(now.timeIntervalSince1970))),
                                    usedSeconds: row.usedSeconds, availableSeconds: row.availableSeconds, usedBasisPoints: basisPoints,
                                    depletesAt: forecast.depletesAt, ticketID: ticket)
            let message = AlertMessage(alertID: alert.id, contract: ["id": contract.id, "name": contract.name], periodKey: row.periodKey,
                                       periodStart: row.periodStart, periodEnd: row.periodEnd, threshold: threshold,
                                       percentUsed: Double(basisPoints) / 100, usedSeconds: row.usedSeconds,
                                       availableSeconds: row.availableSeconds, remainingSeconds: row.remainingSeconds, forecast: forecast,
                                       firedAt: alert.firedAt, ticketID: ticket)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            encoder.dateEncodingStrategy = .iso8601
            let body = String(decoding: try encoder.encode(message), as: UTF8.self)
            for webhook in channels.webhooks {
                try Self.enqueueDelivery(db, alert: alert.id, channel: "webhook:\(webhook)", ticket: nil, payload: body, now: now)
            }
            if channels.followup, let ticket {
                try Self.enqueueDelivery(db, alert: alert.id, channel: "followup", ticket: ticket,
                                         payload: followupText(alert: alert, contract: contract, remaining: row.remainingSeconds, forecast: forecast),
                                         now: now)
            }
            fired.append(alert)
        }
        return fired
    }

    /// The private followup's text, carrying the alert's key so a retry finds an already-written followup.
    static func followupText(alert: AlertRecord, contract: Contract, remaining: Int, forecast: DepletionForecast) -> String {
        var text = "\(EntrySource.marker("alert-\(alert.id)")) Contract \(contract.name) (\(contract.id)) has used "
            + "\(alert.usedBasisPoints / 100)% of its hours for the period starting \(alert.periodKey) (threshold \(alert.threshold)%): "
            + "\(HoursText.format(alert.usedSeconds)) h of \(HoursText.format(alert.availableSeconds)) h, \(HoursText.format(remaining)) h left."
        if let date = forecast.depletesAt {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withFullDate]
            formatter.timeZone = contract.calendar.timeZone
            text += " At the current rate it runs out on \(formatter.string(from: date))."
        }
        return htmlParagraph(text)
    }

    static func enqueueDelivery(_ db: Database, alert: Int64, channel: String, ticket: Int?, payload: String, now: Date) throws {
        try db.execute(sql: """
            INSERT INTO alert_delivery(alert_id, channel, ticket_id, payload, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?)
            """, arguments: [alert, channel, ticket, payload, Int(now.timeIntervalSince1970), Int(now.timeIntervalSince1970)])
    }

    // MARK: Reading alerts and deliveries

    public func alerts(contractID: String? = nil, limit: Int = 100) throws -> [AlertRecord] {
        try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT * FROM alert WHERE (?1 IS NULL OR contract_id = ?1) ORDER BY id DESC LIMIT ?2
                """, arguments: [contractID, limit]).map { row in
                AlertRecord(id: row["id"], contractID: row["contract_id"], periodKey: row["period_key"], threshold: row["threshold"],
                            firedAt: Date(timeIntervalSince1970: TimeInterval(row["fired_at"] as Int)), usedSeconds: row["used_seconds"],
                            availableSeconds: row["available_seconds"], usedBasisPoints: row["used_basis_points"],
                            depletesAt: (row["depletes_at"] as Int?).map { Date(timeIntervalSince1970: TimeInterval($0)) },
                            ticketID: row["ticket_id"])
            }
        }
    }

    public func alertDeliveries(alertID: Int64? = nil) throws -> [AlertDelivery] {
        try writer.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM alert_delivery WHERE (?1 IS NULL OR alert_id = ?1) ORDER BY id",
                             arguments: [alertID]).map(Self.delivery)
        }
    }

    /// Deliveries that are due, oldest first. Unlike write-backs they are independent, so one failing webhook
    /// does not hold up the others. A followup whose last attempt may still land waits out `fenceSeconds` (a webhook
    /// receiver de-duplicates by `X-HourLedger-Delivery` instead).
    public func dueAlertDeliveries(now: Date, fenceSeconds: Int = 0, limit: Int = 50) throws -> [AlertDelivery] {
        try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT * FROM alert_delivery WHERE done_at IS NULL AND failed_at IS NULL AND next_attempt_at <= ?
                    AND (in_doubt_since IS NULL OR channel != 'followup' OR in_doubt_since <= ?) ORDER BY id LIMIT ?
                """, arguments: [Int(now.timeIntervalSince1970), Int(now.timeIntervalSince1970) - fenceSeconds, limit]).map(Self.delivery)
        }
    }

    static func delivery(_ row: Row) -> AlertDelivery {
        AlertDelivery(id: row["id"], alertID: row["alert_id"], channel: row["channel"], ticketID: row["ticket_id"], payload: row["payload"],
                      attempts: row["attempts"], nextAttemptAt: Date(timeIntervalSince1970: TimeInterval(row["next_attempt_at"] as Int)),
                      lastError: row["last_error"], doneAt: (row["done_at"] as Int?).map { Date(timeIntervalSince1970: TimeInterval($0)) },
                      failedAt: (row["failed_at"] as Int?).map { Date(timeIntervalSince1970: TimeInterval($0)) },
                      inDoubtSince: (row["in_doubt_since"] as Int?).map { Date(timeIntervalSince1970: TimeInterval($0)) })
    }

    /// Recorded before sending, so that after a crash the retry knows the followup may already exist.
    public func markAlertDeliveryAttempt(_ id: Int64, now: Date = Date()) async throws {
        try await writer.write { db in
            try db.execute(sql: "UPDATE alert_delivery SET attempts = attempts + 1, in_doubt_since = ? WHERE id = ?",
                           arguments: [Int(now.timeIntervalSince1970), id])
        }
    }

    public func completeAlertDelivery(_ id: Int64, now: Date) async throws {
        try await writer.write { db in
            try db.execute(sql: "UPDATE alert_delivery SET done_at = ?, last_error = NULL, in_doubt_since = NULL WHERE id = ?",
                           arguments: [Int(now.timeIntervalSince1970), id])
        }
    }

    /// A failed attempt: retried at `retryAt`, or given up (`retryAt == nil`) and left visible with its error.
    /// `sentNothing` clears the doubt when the request certainly did not land.
    public func failAlertDelivery(_ id: Int64, error: String, retryAt: Date?, sentNothing: Bool = false, now: Date) async throws {
        try await writer.write { db in
            try db.execute(sql: """
                UPDATE alert_delivery SET last_error = ?, next_attempt_at = COALESCE(?, next_attempt_at), failed_at = ?,
                    in_doubt_since = CASE WHEN ? THEN NULL ELSE in_doubt_since END WHERE id = ?
                """, arguments: [error, retryAt.map { Int($0.timeIntervalSince1970) }, retryAt == nil ? Int(now.timeIntervalSince1970) : nil,
                                 sentNothing, id])
        }
    }

    public struct AlertDeliveryStats: Sendable, Codable, Equatable {
        public var pending: Int
        public var failed: Int
        public var lastError: String?
        enum CodingKeys: String, CodingKey {
            case pending, failed
            case lastError = "last_error"
        }
    }

    public func alertDeliveryStats() throws -> AlertDeliveryStats {
        try writer.read { db in
            let row = try Row.fetchOne(db, sql: """
                SELECT SUM(done_at IS NULL AND failed_at IS NULL) AS pending, SUM(failed_at IS NOT NULL) AS failed,
                       (SELECT last_error FROM alert_delivery WHERE done_at IS NULL AND last_error IS NOT NULL ORDER BY id DESC LIMIT 1) AS error
                FROM alert_delivery
                """)
            return AlertDeliveryStats(pending: row?["pending"] ?? 0, failed: row?["failed"] ?? 0, lastError: row?["error"])
        }
    }

    /// The stored carry-over and expiry lines of a contract, in booking order.
    public func blockMovements(contractID: String) throws -> [BlockMovement] {
        try writer.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM block_movement WHERE contract_id = ? ORDER BY period_key, kind, origin_key",
                             arguments: [contractID]).map {
                BlockMovement(kind: BlockMovement.Kind(rawValue: $0["kind"]) ?? .expired, periodKey: $0["period_key"], originKey: $0["origin_key"],
                              seconds: $0["seconds"], reason: $0["reason"])
            }
        }
    }
}
