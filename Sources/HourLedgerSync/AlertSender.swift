import Crypto
import Foundation
import HourLedgerHTTPClient
import HourLedgerUseCases
import HourLedgerStore
import Logging
import ServiceLifecycle

/// An outgoing alert webhook, with its secret resolved.
public struct AlertTarget: Sendable {
    public var name: String
    public var url: String
    public var secret: String?
    public var timeout: Duration

    public init(name: String, url: String, secret: String?, timeout: Duration = .seconds(10)) {
        self.name = name
        self.url = url
        self.secret = secret
        self.timeout = timeout
    }
}

/// Delivers fired alerts: signed JSON to each webhook, and a private followup in the helpdesk ticket. Each delivery is
/// retried with backoff and given up after `maxAttempts`, visible in /status; a followup is looked up before a retry,
/// so a crash never writes it twice.
public actor AlertSender: Service {
    private let store: LedgerStore
    private let connector: any HelpdeskPort
    private let http: any HTTPSending
    private var targets: [String: AlertTarget]
    private let maxAttempts: Int
    private let idle: Duration
    /// A followup whose answer was lost is looked up only after this, as the outbox's write-backs are.
    private let fenceSeconds: Int
    private let logger: Logger

    public init(store: LedgerStore, connector: any HelpdeskPort, http: any HTTPSending, targets: [AlertTarget], maxAttempts: Int = 12,
                fenceSeconds: Int = 0, idle: Duration = .seconds(1), logger: Logger = Logger(label: "hourledger.alerts")) {
        self.fenceSeconds = fenceSeconds
        self.store = store
        self.connector = connector
        self.http = http
        self.targets = Dictionary(targets.map { ($0.name, $0) }, uniquingKeysWith: { _, last in last })
        self.maxAttempts = maxAttempts
        self.idle = idle
        self.logger = logger
    }

    public func replaceTargets(_ targets: [AlertTarget]) {
        self.targets = Dictionary(targets.map { ($0.name, $0) }, uniquingKeysWith: { _, last in last })
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully {
            await deliverDue()
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: self.idle) }
            } catch {
                break
            }
        }
    }

    /// Sends every due delivery once; returns how many succeeded.
    @discardableResult
    public func deliverDue(now: @Sendable () -> Date = { Date() }) async -> Int {
        let due: [AlertDelivery]
        do { due = try store.dueAlertDeliveries(now: now(), fenceSeconds: fenceSeconds) } catch {
            logger.error("alert deliveries unreadable", metadata: ["error": "\(error)"])
            return 0
        }
        var delivered = 0
        for delivery in due {
            do {
                if delivery.channel == "followup", delivery.inDoubtSince != nil, let ticket = delivery.ticketID,
                   try await connector.findFollowup(ticketID: ticket, containing: EntrySource.marker("alert-\(delivery.alertID)")) != nil {
                    try await store.completeAlertDelivery(delivery.id, now: now())
                    delivered += 1
                    continue
                }
                try await store.markAlertDeliveryAttempt(delivery.id, now: now())
                try await deliver(delivery, now: now())
                try await store.completeAlertDelivery(delivery.id, now: now())
                delivered += 1
                logger.info("alert delivered", metadata: ["alert": "\(delivery.alertID)", "channel": "\(delivery.channel)"])
            } catch {
                let attempts = delivery.attempts + 1
                let retryAt = attempts >= maxAttempts ? nil : now().addingTimeInterval(OutboxWorker.backoff(attempts: attempts))
                logger.warning(retryAt == nil ? "alert delivery given up" : "alert delivery failed, will retry",
                               metadata: ["alert": "\(delivery.alertID)", "channel": "\(delivery.channel)", "attempt": "\(attempts)",
                                          "error": "\(error)"])
                try? await store.failAlertDelivery(delivery.id, error: "\(error)", retryAt: retryAt,
                                                   sentNothing: (error as? HelpdeskError)?.certainlyNotApplied ?? false, now: now())
            }
        }
        return delivered
    }

    private func deliver(_ delivery: AlertDelivery, now: Date) async throws {
        if delivery.channel == "followup" {
            guard let ticket = delivery.ticketID else { return }
            _ = try await connector.createFollowup(ticketID: ticket, content: delivery.payload)
            return
        }
        let name = String(delivery.channel.dropFirst("webhook:".count))
        guard let target = targets[name] else { throw AlertDeliveryError("webhook '\(name)' is no longer configured") }
        let body = Array(delivery.payload.utf8)
        var headers: [(String, String)] = [
            ("Content-Type", "application/json"), ("User-Agent", "HourLedger"), ("X-HourLedger-Event", "alert"),
            ("X-HourLedger-Delivery", "\(delivery.alertID)-\(name)"),
        ]
        if let secret = target.secret {
            let timestamp = String(Int(now.timeIntervalSince1970))
            headers.append(("X-HourLedger-Timestamp", timestamp))
            headers.append(("X-HourLedger-Signature", "sha256=" + Self.signature(secret: secret, timestamp: timestamp, body: body)))
        }
        let response = try await http.send(HTTPRequest(method: "POST", url: target.url, headers: headers, body: body, timeout: target.timeout))
        guard (200..<300).contains(response.status) else {
            throw AlertDeliveryError("webhook '\(name)' answered HTTP \(response.status)")
        }
    }

    /// Lowercase hex HMAC-SHA256 over `<timestamp>.<body>`: the receiver recomputes it to know the alert is genuine and fresh.
    public static func signature(secret: String, timestamp: String, body: [UInt8]) -> String {
        var message = Array(timestamp.utf8)
        message.append(UInt8(ascii: "."))
        message += body
        let mac = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: Array(secret.utf8)))
        return mac.map { String(format: "%02x", $0) }.joined()
    }
}

struct AlertDeliveryError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Rolls periods over by themselves: every tick settles all contracts, so carry-over and expiry lines appear after a
/// boundary even if nothing was logged, and a daemon that was down at midnight catches up when it starts.
public struct PeriodRollover: Service {
    let engine: SyncEngine
    let interval: Duration
    let logger: Logger

    public init(engine: SyncEngine, interval: Duration = .seconds(60), logger: Logger = Logger(label: "hourledger.rollover")) {
        self.engine = engine
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully {
            do { try await engine.settle(all: true) } catch { logger.error("period rollover failed", metadata: ["error": "\(error)"]) }
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                break
            }
        }
    }
}
