import Foundation
import HourLedgerCore
import Logging
import ServiceLifecycle

/// Delivers fired alerts: signed JSON to each webhook, and a private followup in the helpdesk ticket. Each delivery is
/// retried with backoff and given up after `maxAttempts`, visible in /status; a followup is looked up before a retry,
/// so a crash never writes it twice.
public actor AlertSender: Service {
    private let ledger: Ledger
    private let helpdesk: any HelpdeskPort
    private let webhooks: any AlertWebhookPort
    private var targets: [String: AlertTarget]
    private let maxAttempts: Int
    private let idle: Duration
    /// A followup whose answer was lost is looked up only after this, as the outbox's write-backs are.
    private let fenceSeconds: Int
    private let logger: Logger

    public init(ledger: Ledger, helpdesk: any HelpdeskPort, webhooks: any AlertWebhookPort, targets: [AlertTarget], maxAttempts: Int = 12,
                fenceSeconds: Int = 0, idle: Duration = .seconds(30), logger: Logger = Logger(label: "hourledger.alerts")) {
        self.ledger = ledger
        self.helpdesk = helpdesk
        self.webhooks = webhooks
        self.targets = Dictionary(targets.map { ($0.name, $0) }, uniquingKeysWith: { _, last in last })
        self.maxAttempts = maxAttempts
        self.fenceSeconds = fenceSeconds
        self.idle = idle
        self.logger = logger
    }

    public func replaceTargets(_ targets: [AlertTarget]) {
        self.targets = Dictionary(targets.map { ($0.name, $0) }, uniquingKeysWith: { _, last in last })
    }

    public func run() async throws {
        await WorkerLoop.run(wakingOn: ledger.alertsFired) {
            await deliverDue()
            return idle
        }
    }

    /// Sends every due delivery once; returns how many succeeded.
    @discardableResult
    public func deliverDue(now: (@Sendable () -> Date)? = nil) async -> Int {
        let now = now ?? { [clock = ledger.clock] in clock.now() }
        let due: [AlertDelivery]
        do { due = try ledger.read { try $0.dueAlertDeliveries(now: now(), fenceSeconds: fenceSeconds, limit: 50) } } catch {
            logger.error("alert deliveries unreadable", metadata: ["error": "\(error)"])
            return 0
        }
        var delivered = 0
        for delivery in due {
            do {
                if delivery.isFollowup, delivery.inDoubtSince != nil, let ticket = delivery.ticketID,
                   try await helpdesk.findNote(ticketID: ticket, containing: Ledger.alertMarker(delivery.alertID)) != nil {
                    try await ledger.updateAlertDelivery(delivery.id) { $0.complete(at: now()) }
                    delivered += 1
                    continue
                }
                try await ledger.updateAlertDelivery(delivery.id) { $0.attempt(at: now()) }
                try Ledger.fence?.checkSending()
                try await deliver(delivery, now: now())
                try await ledger.updateAlertDelivery(delivery.id) { $0.complete(at: now()) }
                delivered += 1
                logger.info("alert delivered", metadata: ["alert": "\(delivery.alertID)", "channel": "\(delivery.channel)"])
            } catch let lost as LeadershipLost {
                // The new leader delivers it: after the fence it looks the followup up before writing it again.
                logger.notice("alert delivery left to the new leader", metadata: ["alert": "\(delivery.alertID)", "reason": "\(lost)"])
                return delivered
            } catch {
                let attempts = delivery.attempts + 1
                let retryAt = attempts >= maxAttempts ? nil : now().addingTimeInterval(Backoff.delivery.delay(failures: attempts).timeInterval)
                logger.warning(retryAt == nil ? "alert delivery given up" : "alert delivery failed, will retry",
                               metadata: ["alert": "\(delivery.alertID)", "channel": "\(delivery.channel)", "attempt": "\(attempts)",
                                          "error": "\(error)"])
                let sentNothing = (error as? HelpdeskError)?.certainlyNotApplied ?? false
                try? await ledger.updateAlertDelivery(delivery.id) { $0.fail(error: "\(error)", retryAt: retryAt, sentNothing: sentNothing, at: now()) }
            }
        }
        return delivered
    }

    private func deliver(_ delivery: AlertDelivery, now: Date) async throws {
        if delivery.isFollowup {
            guard let ticket = delivery.ticketID else { return }
            _ = try await helpdesk.createNote(ticketID: ticket, HelpdeskNote(marker: Ledger.alertMarker(delivery.alertID), text: delivery.payload))
            return
        }
        let name = String(delivery.channel.dropFirst("webhook:".count))
        guard let target = targets[name] else { throw AlertDeliveryError("webhook '\(name)' is no longer configured") }
        try await webhooks.post(Array(delivery.payload.utf8), to: target, deliveryID: "\(delivery.alertID)-\(name)", now: now)
    }
}

/// Why an alert could not be delivered, in one line.
public struct AlertDeliveryError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension AlertDelivery {
    /// Recorded before sending, so that after a crash the retry knows the followup may already exist.
    mutating func attempt(at now: Date) {
        attempts += 1
        inDoubtSince = now
    }

    mutating func complete(at now: Date) {
        doneAt = now
        lastError = nil
        inDoubtSince = nil
    }

    /// A failed attempt: retried at `retryAt`, or given up (`retryAt == nil`) and left visible with its error.
    /// `sentNothing` clears the doubt when the request certainly did not land.
    mutating func fail(error: String, retryAt: Date?, sentNothing: Bool, at now: Date) {
        lastError = error
        if let retryAt { nextAttemptAt = retryAt } else { failedAt = now }
        if sentNothing { inDoubtSince = nil }
    }
}

extension Ledger {
    /// Changes one alert delivery in its own transaction.
    func updateAlertDelivery(_ id: Int64, _ change: @escaping @Sendable (inout AlertDelivery) -> Void) async throws {
        try await write { tx in
            guard var delivery = try tx.alertDelivery(id: id) else { return }
            change(&delivery)
            try tx.updateAlertDelivery(delivery)
        }
    }
}
