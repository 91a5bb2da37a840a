import Foundation

/// Where an entry's time came from.
public enum EntrySource: String, Sendable, Codable {
    /// A task's time read from the helpdesk (a GLPI task).
    case helpdeskTask = "helpdesk_task"
    /// Time logged in HourLedger (a timer or a manual entry), written back to the helpdesk.
    case hourledger

    /// The tag a write-back carries in the helpdesk, so a retry or the poller can find it.
    public static func marker(_ key: String) -> String { "[hourledger:\(key)]" }
}

/// One entry of the ledger as stored: the time, where it counts, and what its write-back needs.
public struct LedgerEntry: Sendable, Equatable {
    public var id: Int64
    public var source: EntrySource
    /// The helpdesk's task id for a helpdesk task; the entry's own id for HourLedger's entries.
    public var sourceID: Int
    public var ticketID: Int
    public var contractID: String?
    public var periodKey: String?
    public var workedAt: Date
    public var rawSeconds: Int
    public var billedSeconds: Int
    /// The contract's rounding when the entry was placed, so a balance can be explained after the config changes.
    public var rounding: String
    public var technician: Int
    public var isPrivate: Bool
    /// The helpdesk task's text (for a helpdesk task) or the note (for HourLedger's entries).
    public var content: String
    public var updatedAt: Date
    public var kind: EntryKind
    /// HourLedger's key for its own entries; nil for helpdesk tasks.
    public var key: String?
    public var note: String
    /// The helpdesk's id of the task HourLedger wrote back for this entry, once known.
    public var remoteTaskID: Int?
    public var createdBy: String?
    public var approval: Approval
    /// The helpdesk task category chosen for the write-back, if any.
    public var taskCategory: Int?

    public init(id: Int64 = 0, source: EntrySource, sourceID: Int = 0, ticketID: Int, contractID: String?, periodKey: String?, workedAt: Date,
                rawSeconds: Int, billedSeconds: Int, rounding: String, technician: Int, isPrivate: Bool, content: String, updatedAt: Date,
                kind: EntryKind = .billable, key: String? = nil, note: String = "", remoteTaskID: Int? = nil, createdBy: String? = nil,
                approval: Approval = .approved, taskCategory: Int? = nil) {
        self.id = id
        self.source = source
        self.sourceID = sourceID
        self.ticketID = ticketID
        self.contractID = contractID
        self.periodKey = periodKey
        self.workedAt = workedAt
        self.rawSeconds = rawSeconds
        self.billedSeconds = billedSeconds
        self.rounding = rounding
        self.technician = technician
        self.isPrivate = isPrivate
        self.content = content
        self.updatedAt = updatedAt
        self.kind = kind
        self.key = key
        self.note = note
        self.remoteTaskID = remoteTaskID
        self.createdBy = createdBy
        self.approval = approval
        self.taskCategory = taskCategory
    }

    /// Whether the entry draws from its contract period's balance: placed, billable or prepaid, and approved.
    public var counts: Bool {
        contractID != nil && periodKey != nil && kind.drawsFromBalance && approval == .approved
    }

    /// Takes the contract, period, billed seconds, rounding and approval a placement gives.
    public mutating func place(_ placement: EntryPlacement) {
        contractID = placement.contractID
        periodKey = placement.period?.key
        billedSeconds = placement.billedSeconds
        rounding = placement.rounding
        approval = placement.approval
    }
}

/// An entry logged in HourLedger (timer or manual), as people and scripts see it.
public struct WorkEntry: Sendable, Equatable, Codable {
    public var id: Int64
    public var key: String
    public var ticketID: Int
    public var contractID: String?
    public var periodKey: String?
    public var workedAt: Date
    public var rawSeconds: Int
    public var billedSeconds: Int
    public var rounding: String
    public var technician: Int
    public var kind: EntryKind
    public var note: String
    /// The helpdesk's id of the task written back for it (GLPI), once known.
    public var remoteTaskID: Int?
    public var approval: Approval = .approved

    public init(id: Int64, key: String, ticketID: Int, contractID: String?, periodKey: String?, workedAt: Date, rawSeconds: Int,
                billedSeconds: Int, rounding: String, technician: Int, kind: EntryKind, note: String, remoteTaskID: Int?,
                approval: Approval = .approved) {
        self.id = id
        self.key = key
        self.ticketID = ticketID
        self.contractID = contractID
        self.periodKey = periodKey
        self.workedAt = workedAt
        self.rawSeconds = rawSeconds
        self.billedSeconds = billedSeconds
        self.rounding = rounding
        self.technician = technician
        self.kind = kind
        self.note = note
        self.remoteTaskID = remoteTaskID
        self.approval = approval
    }

    /// The view of one of HourLedger's own entries; nil for a helpdesk task.
    public init?(_ entry: LedgerEntry) {
        guard entry.source == .hourledger, let key = entry.key else { return nil }
        self.init(id: entry.id, key: key, ticketID: entry.ticketID, contractID: entry.contractID, periodKey: entry.periodKey,
                  workedAt: entry.workedAt, rawSeconds: entry.rawSeconds, billedSeconds: entry.billedSeconds, rounding: entry.rounding,
                  technician: entry.technician, kind: entry.kind, note: entry.note, remoteTaskID: entry.remoteTaskID, approval: entry.approval)
    }

    enum CodingKeys: String, CodingKey {
        case id, key, rounding, technician, kind, note, approval
        case ticketID = "ticket_id", contractID = "contract_id", periodKey = "period_key", workedAt = "worked_at"
        case rawSeconds = "raw_seconds", billedSeconds = "billed_seconds", remoteTaskID = "helpdesk_task_id"
    }

    /// The name the task id had before the helpdesks were told apart, still written for scripts that read it.
    private enum LegacyKeys: String, CodingKey { case glpiTaskID = "glpi_task_id" }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(key, forKey: .key)
        try container.encode(ticketID, forKey: .ticketID)
        try container.encodeIfPresent(contractID, forKey: .contractID)
        try container.encodeIfPresent(periodKey, forKey: .periodKey)
        try container.encode(workedAt, forKey: .workedAt)
        try container.encode(rawSeconds, forKey: .rawSeconds)
        try container.encode(billedSeconds, forKey: .billedSeconds)
        try container.encode(rounding, forKey: .rounding)
        try container.encode(technician, forKey: .technician)
        try container.encode(kind, forKey: .kind)
        try container.encode(note, forKey: .note)
        try container.encodeIfPresent(remoteTaskID, forKey: .remoteTaskID)
        try container.encode(approval, forKey: .approval)
        var legacy = encoder.container(keyedBy: LegacyKeys.self)
        try legacy.encodeIfPresent(remoteTaskID, forKey: .glpiTaskID)
    }
}

/// What a technician asks to log.
public struct NewEntry: Sendable {
    public var ticketID: Int
    public var technician: Int
    public var startedAt: Date
    public var rawSeconds: Int
    public var kind: EntryKind
    public var note: String
    public var createdBy: String
    /// The helpdesk task category (service) for the write-back; nil uses the configured default.
    public var category: Int?

    public init(ticketID: Int, technician: Int, startedAt: Date, rawSeconds: Int, kind: EntryKind, note: String, createdBy: String,
                category: Int? = nil) {
        self.ticketID = ticketID
        self.technician = technician
        self.startedAt = startedAt
        self.rawSeconds = rawSeconds
        self.kind = kind
        self.note = note
        self.createdBy = createdBy
        self.category = category
    }
}

/// What an edit changes; nil leaves a field as it is.
public struct EntryChange: Sendable {
    public var rawSeconds: Int?
    public var startedAt: Date?
    public var kind: EntryKind?
    public var note: String?

    public init(rawSeconds: Int? = nil, startedAt: Date? = nil, kind: EntryKind? = nil, note: String? = nil) {
        self.rawSeconds = rawSeconds
        self.startedAt = startedAt
        self.kind = kind
        self.note = note
    }
}

/// One line of the append-only audit trail.
public struct AuditRecord: Sendable, Equatable, Codable {
    public var at: Date
    public var actor: String
    public var entryKey: String
    public var ticketID: Int
    public var contractID: String?
    public var field: String
    public var oldValue: String?
    public var newValue: String?
    public var reason: String

    public init(at: Date, actor: String, entryKey: String, ticketID: Int, contractID: String?, field: String, oldValue: String?,
                newValue: String?, reason: String) {
        self.at = at
        self.actor = actor
        self.entryKey = entryKey
        self.ticketID = ticketID
        self.contractID = contractID
        self.field = field
        self.oldValue = oldValue
        self.newValue = newValue
        self.reason = reason
    }

    enum CodingKeys: String, CodingKey {
        case at, actor, field, reason
        case entryKey = "entry_key", ticketID = "ticket_id", contractID = "contract_id", oldValue = "old_value", newValue = "new_value"
    }
}

extension LedgerEntry {
    /// The entry as a store keeps it under the row id `id`: HourLedger's own entries take that id as their source
    /// id, which keeps (source, source id) unique for them as the helpdesk's task id does for read tasks.
    public func stored(as id: Int64) -> LedgerEntry {
        var stored = self
        stored.id = id
        if source == .hourledger { stored.sourceID = Int(id) }
        return stored
    }
}
