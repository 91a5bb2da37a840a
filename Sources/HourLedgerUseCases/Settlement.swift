import Foundation
import HourLedgerCore

/// What one settlement did: the alerts it fired, and the contracts it could not settle (damaged stored figures),
/// which stay marked so they are tried again while the others go on.
public struct Settlement: Sendable {
    public var fired: [AlertRecord] = []
    public var failures: [ContractFailure] = []
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

/// The webhook body of an alert about a ticket solved or closed with no time.
struct UntimedMessage: Encodable {
    var event = "hourledger.untimed_ticket"
    var alertID: Int64
    var contract: [String: String]
    var ticketID: Int
    var ref: String
    var name: String
    var status: String
    var closedAt: Date
    var firedAt: Date

    enum CodingKeys: String, CodingKey {
        case event, contract, ref, name, status
        case alertID = "alert_id", ticketID = "ticket_id", closedAt = "closed_at", firedAt = "fired_at"
    }
}

extension Ledger {
    /// Brings carry-over lines and alerts up to date for contracts whose balance changed; with `all`, for every
    /// contract, which is how a period rolls over even when nothing was logged (or the daemon was down at midnight).
    /// Runs in one write transaction: a threshold fires once, whoever settles first, even across restarts.
    @discardableResult
    public func settle(all: Bool = false, now: Date? = nil) async throws -> Settlement {
        let now = now ?? clock.now()
        let (contracts, channels) = (book.contracts, book.alertChannels)
        let settlement = try await write { tx -> Settlement in
            let dirty = try tx.dirtyContracts()
            var settlement = Settlement()
            for contract in contracts where all || dirty.contains(contract.id) {
                let rows: [BalanceRow]
                do {
                    rows = try BalanceRow.statements(of: contract, usage: try tx.periodUsage(contractID: contract.id),
                                                     topUps: try tx.topUps(contractID: contract.id), now: now)
                } catch let error as DamagedLedger {
                    settlement.failures.append(ContractFailure(contractID: contract.id, error: error.description))
                    continue
                }
                try Self.recordMovements(tx, contract: contract, rows: rows, now: now)
                settlement.fired += try Self.fireAlerts(tx, contract: contract, rows: rows, channels: channels, now: now)
                settlement.fired += try Self.fireUntimedAlerts(tx, contract: contract, rows: rows, channels: channels, now: now)
            }
            try tx.resetDirtyContracts(keeping: settlement.failures.map(\.contractID))
            return settlement
        }
        for failure in setUnsettled(settlement.failures) {
            logger.error("contract cannot be settled; the others go on", metadata: ["contract": "\(failure.contractID)", "error": "\(failure.error)"])
        }
        if !settlement.fired.isEmpty { alertsFired.signal() }
        for alert in settlement.fired {
            logger.notice("alert fired", metadata: ["contract": "\(alert.contractID)", "period": "\(alert.periodKey)",
                                                    "threshold": "\(alert.threshold)%", "used_percent": "\(Double(alert.usedBasisPoints) / 100)"])
        }
        return settlement
    }

    /// Makes the stored carry-over and expiry lines equal to the computed ones; a line revised by a late edit keeps
    /// when it was first recorded and says when it was revised.
    static func recordMovements(_ tx: any LedgerWriter, contract: Contract, rows: [BalanceRow], now: Date) throws {
        struct Line: Hashable {
            var period: String
            var kind: BlockMovement.Kind
            var origin: String
        }
        var wanted: [Line: BlockMovement] = [:]
        for movement in rows.flatMap(\.movements) {
            wanted[Line(period: movement.periodKey, kind: movement.kind, origin: movement.originKey)] = movement
        }
        var stored: [Line: BlockMovement] = [:]
        for movement in try tx.blockMovements(contractID: contract.id) {
            stored[Line(period: movement.periodKey, kind: movement.kind, origin: movement.originKey)] = movement
        }
        for (line, movement) in wanted.sorted(by: { ($0.key.period, $0.key.origin) < ($1.key.period, $1.key.origin) })
        where stored[line]?.seconds != movement.seconds {
            try tx.saveBlockMovement(contractID: contract.id, movement, at: now)
        }
        for (line, movement) in stored where wanted[line] == nil {
            try tx.deleteBlockMovement(contractID: contract.id, movement)
        }
    }

    static func fireAlerts(_ tx: any LedgerWriter, contract: Contract, rows: [BalanceRow], channels: AlertChannels, now: Date) throws -> [AlertRecord] {
        guard !contract.alertThresholds.isEmpty,
              let row = running(rows, at: now),
              row.availableSeconds > 0
        else { return [] }
        var fired: [AlertRecord] = []
        let firedAt = Date(timeIntervalSince1970: TimeInterval(Int(now.timeIntervalSince1970)))
        for threshold in contract.alertThresholds.sorted() where row.usedSeconds * 100 >= threshold * row.availableSeconds {
            let forecast = DepletionForecast(usedSeconds: row.usedSeconds, remainingSeconds: row.remainingSeconds, periodStart: row.periodStart,
                                             periodEnd: row.periodEnd, now: now)
            let ticket = try tx.latestCountedTicket(contractID: contract.id, periodKey: row.periodKey)
            let basisPoints = row.usedSeconds * 10000 / row.availableSeconds
            var alert = AlertRecord(contractID: contract.id, periodKey: row.periodKey, threshold: threshold, firedAt: firedAt,
                                    usedSeconds: row.usedSeconds, availableSeconds: row.availableSeconds, usedBasisPoints: basisPoints,
                                    depletesAt: forecast.depletesAt, ticketID: ticket)
            guard let id = try tx.insertAlert(alert) else { continue }
            alert.id = id
            let message = AlertMessage(alertID: alert.id, contract: ["id": contract.id, "name": contract.name], periodKey: row.periodKey,
                                       periodStart: row.periodStart, periodEnd: row.periodEnd, threshold: threshold,
                                       percentUsed: Double(basisPoints) / 100, usedSeconds: row.usedSeconds,
                                       availableSeconds: row.availableSeconds, remainingSeconds: row.remainingSeconds, forecast: forecast,
                                       firedAt: alert.firedAt, ticketID: ticket)
            try enqueue(tx, alertID: alert.id, message: message, channels: channels,
                        followup: ticket.map { ($0, followupText(alert: alert, contract: contract, remaining: row.remainingSeconds, forecast: forecast)) },
                        now: now)
            fired.append(alert)
        }
        return fired
    }

    /// One alert per ticket of the contract solved or closed in the running period with no time at all (no entry
    /// holding a second, no timer open): to the webhooks, and as a private followup asking its technicians to log
    /// the time. The poll that sees a ticket closed marks its contract unsettled, so it fires with that poll.
    static func fireUntimedAlerts(_ tx: any LedgerWriter, contract: Contract, rows: [BalanceRow], channels: AlertChannels,
                                  now: Date) throws -> [AlertRecord] {
        guard contract.alertUntimed, let row = running(rows, at: now) else { return [] }
        var fired: [AlertRecord] = []
        let firedAt = Date(timeIntervalSince1970: TimeInterval(Int(now.timeIntervalSince1970)))
        for ticket in try tx.untimedTickets(closedFrom: row.periodStart, to: firedAt.addingTimeInterval(1), contractID: contract.id) {
            var alert = AlertRecord(contractID: contract.id, periodKey: AlertRecord.untimedKey(ticketID: ticket.id), threshold: 0, firedAt: firedAt,
                                    usedSeconds: 0, availableSeconds: 0, usedBasisPoints: 0, depletesAt: nil, ticketID: ticket.id)
            guard let id = try tx.insertAlert(alert) else { continue }
            alert.id = id
            let status = ticket.facts.status == 5 ? "solved" : "closed"
            let message = UntimedMessage(alertID: id, contract: ["id": contract.id, "name": contract.name], ticketID: ticket.id, ref: ticket.facts.ref,
                                         name: ticket.facts.name, status: status, closedAt: ticket.closedAt ?? ticket.syncedAt, firedAt: firedAt)
            let text = "This ticket was \(status) with no time logged on contract \(contract.name) (\(contract.id)). "
                + "If work was done, log it so it is counted; if there was none, nothing needs doing."
            try enqueue(tx, alertID: id, message: message, channels: channels, followup: (ticket.id, text), now: now)
            fired.append(alert)
        }
        return fired
    }

    /// The period running at `now`, where alerts fire.
    static func running(_ rows: [BalanceRow], at now: Date) -> BalanceRow? {
        rows.first { $0.periodStart <= now && ($0.periodEnd.map { now < $0 } ?? true) }
    }

    /// Queues an alert's deliveries in the same transaction that recorded it: the JSON body to each webhook, and the
    /// followup's words to its ticket when followups are on.
    static func enqueue(_ tx: any LedgerWriter, alertID: Int64, message: some Encodable, channels: AlertChannels, followup: (ticketID: Int, text: String)?,
                        now: Date) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        let body = String(decoding: try encoder.encode(message), as: UTF8.self)
        for webhook in channels.webhooks {
            _ = try tx.insertAlertDelivery(AlertDelivery(alertID: alertID, channel: AlertDelivery.webhookChannel(webhook), ticketID: nil,
                                                         payload: body, nextAttemptAt: now, createdAt: now))
        }
        if channels.followup, let followup {
            _ = try tx.insertAlertDelivery(AlertDelivery(alertID: alertID, channel: AlertDelivery.followupChannel, ticketID: followup.ticketID,
                                                         payload: followup.text, nextAttemptAt: now, createdAt: now))
        }
    }

    /// The marker an alert's followup carries, so a retry finds an already-written followup.
    static func alertMarker(_ alertID: Int64) -> String { EntrySource.marker("alert-\(alertID)") }

    /// The private followup's words, after its marker.
    static func followupText(alert: AlertRecord, contract: Contract, remaining: Int, forecast: DepletionForecast) -> String {
        var text = "Contract \(contract.name) (\(contract.id)) has used "
            + "\(alert.usedBasisPoints / 100)% of its hours for the period starting \(alert.periodKey) (threshold \(alert.threshold)%): "
            + "\(HoursText.format(alert.usedSeconds)) h of \(HoursText.format(alert.availableSeconds)) h, \(HoursText.format(remaining)) h left."
        if let date = forecast.depletesAt {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withFullDate]
            formatter.timeZone = contract.calendar.timeZone
            text += " At the current rate it runs out on \(formatter.string(from: date))."
        }
        return text
    }
}
