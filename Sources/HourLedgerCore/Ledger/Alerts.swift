import Foundation

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

    public init(id: Int64 = 0, contractID: String, periodKey: String, threshold: Int, firedAt: Date, usedSeconds: Int, availableSeconds: Int,
                usedBasisPoints: Int, depletesAt: Date?, ticketID: Int?) {
        self.id = id
        self.contractID = contractID
        self.periodKey = periodKey
        self.threshold = threshold
        self.firedAt = firedAt
        self.usedSeconds = usedSeconds
        self.availableSeconds = availableSeconds
        self.usedBasisPoints = usedBasisPoints
        self.depletesAt = depletesAt
        self.ticketID = ticketID
    }

    enum CodingKeys: String, CodingKey {
        case id, threshold
        case contractID = "contract_id", periodKey = "period_key", firedAt = "fired_at", usedSeconds = "used_seconds"
        case availableSeconds = "available_seconds", usedBasisPoints = "used_basis_points", depletesAt = "depletes_at", ticketID = "ticket_id"
    }

    /// An alert about a ticket solved or closed with no time (`alerts: { untimed: true }`) takes the alert table's
    /// once-only key with this in place of a period, so it fires once per ticket, whoever settles first.
    public static func untimedKey(ticketID: Int) -> String { "untimed:\(ticketID)" }

    public var isUntimed: Bool { periodKey.hasPrefix("untimed:") }

    private enum KindKey: String, CodingKey { case kind }

    /// As stored, plus `kind` (`threshold` or `untimed`), so a reader need not know the key's convention.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(contractID, forKey: .contractID)
        try c.encode(periodKey, forKey: .periodKey)
        try c.encode(threshold, forKey: .threshold)
        try c.encode(firedAt, forKey: .firedAt)
        try c.encode(usedSeconds, forKey: .usedSeconds)
        try c.encode(availableSeconds, forKey: .availableSeconds)
        try c.encode(usedBasisPoints, forKey: .usedBasisPoints)
        try c.encodeIfPresent(depletesAt, forKey: .depletesAt)
        try c.encodeIfPresent(ticketID, forKey: .ticketID)
        var kind = encoder.container(keyedBy: KindKey.self)
        try kind.encode(isUntimed ? "untimed" : "threshold", forKey: .kind)
    }
}

/// One delivery of an alert: to a webhook, or as a private followup in the helpdesk.
public struct AlertDelivery: Sendable, Equatable, Codable {
    public var id: Int64
    public var alertID: Int64
    /// `webhook:<name>` or `followup`.
    public var channel: String
    public var ticketID: Int?
    /// The exact JSON body for a webhook; the plain text of a followup (its adapter adds the markup).
    public var payload: String
    public var attempts: Int
    public var nextAttemptAt: Date
    public var lastError: String?
    public var createdAt: Date
    public var doneAt: Date?
    /// Set when delivery was given up after too many attempts.
    public var failedAt: Date?
    /// Set while an attempt's outcome is unknown: when that attempt started (see the outbox's write fence).
    public var inDoubtSince: Date?

    public init(id: Int64 = 0, alertID: Int64, channel: String, ticketID: Int?, payload: String, attempts: Int = 0, nextAttemptAt: Date,
                lastError: String? = nil, createdAt: Date, doneAt: Date? = nil, failedAt: Date? = nil, inDoubtSince: Date? = nil) {
        self.id = id
        self.alertID = alertID
        self.channel = channel
        self.ticketID = ticketID
        self.payload = payload
        self.attempts = attempts
        self.nextAttemptAt = nextAttemptAt
        self.lastError = lastError
        self.createdAt = createdAt
        self.doneAt = doneAt
        self.failedAt = failedAt
        self.inDoubtSince = inDoubtSince
    }

    public static let followupChannel = "followup"
    public static func webhookChannel(_ name: String) -> String { "webhook:\(name)" }

    public var isFollowup: Bool { channel == Self.followupChannel }
    /// Not yet delivered and not given up.
    public var isPending: Bool { doneAt == nil && failedAt == nil }

    enum CodingKeys: String, CodingKey {
        case id, channel, payload, attempts
        case alertID = "alert_id", ticketID = "ticket_id", nextAttemptAt = "next_attempt_at", lastError = "last_error"
        case createdAt = "created_at", doneAt = "done_at", failedAt = "failed_at", inDoubtSince = "in_doubt_since"
    }
}

public struct AlertDeliveryStats: Sendable, Codable, Equatable {
    public var pending: Int
    public var failed: Int
    public var lastError: String?

    public init(pending: Int, failed: Int, lastError: String?) {
        self.pending = pending
        self.failed = failed
        self.lastError = lastError
    }

    enum CodingKeys: String, CodingKey {
        case pending, failed
        case lastError = "last_error"
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
