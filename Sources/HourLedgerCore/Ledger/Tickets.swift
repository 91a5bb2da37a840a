import Foundation

/// A ticket as the ledger keeps it: the helpdesk's facts at the last read, and the contract they matched.
public struct StoredTicket: Sendable, Equatable {
    public var facts: TicketFacts
    /// The helpdesk's modification stamp at the last read, as it sent it.
    public var dateMod: String
    public var contractID: String?
    public var matchReason: String
    /// The search's summary of the tasks when they were last read; unchanged means they need no new read.
    public var taskFingerprint: String?
    public var syncedAt: Date
    /// Set when the ticket left the helpdesk: its time no longer counts anywhere.
    public var removed: TicketRemoval?
    public var removedAt: Date?
    /// When the ticket was solved or closed, as the helpdesk's last change then said (or when HourLedger first saw it
    /// so); nil while it is open. Reopening clears it.
    public var closedAt: Date?

    public init(facts: TicketFacts, dateMod: String, contractID: String?, matchReason: String, taskFingerprint: String?, syncedAt: Date,
                removed: TicketRemoval? = nil, removedAt: Date? = nil, closedAt: Date? = nil) {
        self.facts = facts
        self.dateMod = dateMod
        self.contractID = contractID
        self.matchReason = matchReason
        self.taskFingerprint = taskFingerprint
        self.syncedAt = syncedAt
        self.removed = removed
        self.removedAt = removedAt
        self.closedAt = closedAt
    }

    public var id: Int { facts.id }
}

/// What one sync of one ticket changed in the ledger.
public struct TicketSyncOutcome: Sendable, Equatable {
    public var entriesAdded = 0
    public var entriesUpdated = 0
    public var entriesDeleted = 0
    public var movedFrom: String?
    public var movedTo: String?
    /// Timers that were running when the ticket was seen solved or closed, now paused for their technician.
    public var timersPaused: [TimerRecord] = []
    public var changed: Bool { entriesAdded + entriesUpdated + entriesDeleted > 0 || movedFrom != movedTo }

    public init() {}
}

/// A ticket's time as the helpdesk should count it, from the ledger: the tasks its entries were read from (raw
/// seconds) and the tasks HourLedger wrote into it (the billed seconds it wrote). Reconciliation compares this with the
/// helpdesk's own figure.
public struct TicketSeconds: Sendable, Equatable {
    public var ticketID: Int
    public var contractID: String?
    /// The helpdesk's modification stamp when the ticket was last synced.
    public var dateMod: String
    public var helpdeskTaskSeconds: Int
    public var writtenSeconds: Int
    public var expectedSeconds: Int { helpdeskTaskSeconds + writtenSeconds }

    public init(ticketID: Int, contractID: String?, dateMod: String, helpdeskTaskSeconds: Int, writtenSeconds: Int) {
        self.ticketID = ticketID
        self.contractID = contractID
        self.dateMod = dateMod
        self.helpdeskTaskSeconds = helpdeskTaskSeconds
        self.writtenSeconds = writtenSeconds
    }
}

public struct TicketUsage: Sendable, Equatable, Codable {
    public var ticketID: Int
    public var name: String
    public var usedSeconds: Int
    public var rawSeconds: Int
    public var entryCount: Int

    public init(ticketID: Int, name: String, usedSeconds: Int, rawSeconds: Int, entryCount: Int) {
        self.ticketID = ticketID
        self.name = name
        self.usedSeconds = usedSeconds
        self.rawSeconds = rawSeconds
        self.entryCount = entryCount
    }

    enum CodingKeys: String, CodingKey {
        case name
        case ticketID = "ticket_id", usedSeconds = "used_seconds", rawSeconds = "raw_seconds", entryCount = "entry_count"
    }
}

public struct UnmatchedTicket: Sendable, Equatable, Codable {
    public var ticketID: Int
    /// The helpdesk's reference (iTop R-000042); empty where it has none (GLPI).
    public var ref: String = ""
    public var name: String
    public var entity: Int
    public var groups: [Int]
    public var category: Int
    public var reason: String
    public var rawSeconds: Int

    public init(ticketID: Int, ref: String, name: String, entity: Int, groups: [Int], category: Int, reason: String, rawSeconds: Int) {
        self.ticketID = ticketID
        self.ref = ref
        self.name = name
        self.entity = entity
        self.groups = groups
        self.category = category
        self.reason = reason
        self.rawSeconds = rawSeconds
    }

    enum CodingKeys: String, CodingKey {
        case name, entity, groups, category, reason, ref
        case ticketID = "ticket_id", rawSeconds = "raw_seconds"
    }
}

/// A ticket's time moving from one contract to another (or to none), and why.
public struct ContractMove: Sendable, Equatable, Codable {
    public var ticketID: Int
    public var fromContract: String?
    public var toContract: String?
    public var rawSeconds: Int
    public var at: Date
    public var reason: String

    public init(ticketID: Int, fromContract: String?, toContract: String?, rawSeconds: Int, at: Date, reason: String) {
        self.ticketID = ticketID
        self.fromContract = fromContract
        self.toContract = toContract
        self.rawSeconds = rawSeconds
        self.at = at
        self.reason = reason
    }
}

/// A helpdesk's "this ticket changed" webhook, kept until a sync has re-read the ticket through the API.
public struct TicketHint: Sendable, Equatable {
    public var ticketID: Int
    public var receivedAt: Date
    public var count: Int

    public init(ticketID: Int, receivedAt: Date, count: Int) {
        self.ticketID = ticketID
        self.receivedAt = receivedAt
        self.count = count
    }
}

/// One webhook delivery: the ticket it points at, and the signature that makes a replay recognisable (nil when the
/// helpdesk does not sign, as iTop).
public struct WebhookDelivery: Sendable, Equatable {
    public var ticketID: Int
    public var signature: String?

    public init(ticketID: Int, signature: String? = nil) {
        self.ticketID = ticketID
        self.signature = signature
    }
}

/// A ticket the helpdesk would not let the daemon read: kept, shown in /status, and read again at every poll until
/// it syncs.
public struct TicketFailureRecord: Sendable, Equatable, Codable {
    public var ticketID: Int
    public var error: String
    public var firstFailedAt: Date
    public var lastFailedAt: Date
    public var attempts: Int

    public init(ticketID: Int, error: String, firstFailedAt: Date, lastFailedAt: Date, attempts: Int) {
        self.ticketID = ticketID
        self.error = error
        self.firstFailedAt = firstFailedAt
        self.lastFailedAt = lastFailedAt
        self.attempts = attempts
    }

    enum CodingKeys: String, CodingKey {
        case error, attempts
        case ticketID = "ticket_id", firstFailedAt = "first_failed_at", lastFailedAt = "last_failed_at"
    }
}

/// How many of each thing the ledger holds, for `/status`.
public struct LedgerCounts: Sendable, Equatable, Codable {
    public var tickets: Int
    public var unmatched: Int
    public var entries: Int
    /// Alerts fired since the ledger was created.
    public var alerts: Int = 0
    /// Webhook hints waiting for a sync.
    public var pendingHints: Int = 0
    /// Tickets the helpdesk would not let the daemon read at the last try.
    public var failingTickets: Int = 0

    public init(tickets: Int, unmatched: Int, entries: Int, alerts: Int = 0, pendingHints: Int = 0, failingTickets: Int = 0) {
        self.tickets = tickets
        self.unmatched = unmatched
        self.entries = entries
        self.alerts = alerts
        self.pendingHints = pendingHints
        self.failingTickets = failingTickets
    }
}
