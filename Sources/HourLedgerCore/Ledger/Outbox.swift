import Foundation

/// What to write in the helpdesk for an entry, in plain words: the helpdesk's adapter turns it into a task or a note
/// in its own markup.
public struct WriteBack: Sendable, Equatable, Codable {
    /// Billed seconds, for a task's duration.
    public var seconds: Int
    /// The line people read, after the entry's marker: what, how long, when, by whom, on which contract, and the note.
    public var text: String
    public var technician: Int
    public var date: Date
    /// The helpdesk's task id when the record was queued, if known then.
    public var remoteTaskID: Int?
    /// The helpdesk task category (service) chosen for this entry, if any.
    public var category: Int?
    /// For a correction or a withdrawal: what the entry said before, and why it changed. An append-only log (iTop)
    /// shows both; an edited task (GLPI) shows the entry as it is now.
    public var previous: String?
    public var reason: String?

    public init(seconds: Int, text: String, technician: Int, date: Date, remoteTaskID: Int? = nil, category: Int? = nil,
                previous: String? = nil, reason: String? = nil) {
        self.seconds = seconds
        self.text = text
        self.technician = technician
        self.date = date
        self.remoteTaskID = remoteTaskID
        self.category = category
        self.previous = previous
        self.reason = reason
    }

    /// " (was: …; reason: …)" for a correction or withdrawal note, or "" when neither is known.
    public var changeNote: String {
        let parts = [previous.map { "was: \($0)" }, reason.flatMap { $0.isEmpty ? nil : "reason: \($0)" }].compactMap { $0 }
        return parts.isEmpty ? "" : " (" + parts.joined(separator: "; ") + ")"
    }

    enum CodingKeys: String, CodingKey {
        case seconds, text, technician, date, category, previous, reason
        case remoteTaskID = "remote_task_id"
    }
}

/// One write to the helpdesk (a task or note created, updated or deleted), kept until it is known to have landed.
public struct OutboxItem: Sendable, Equatable, Codable {
    public enum Action: String, Sendable, Codable { case create, update, delete }

    /// How a record ended.
    public enum Resolution: String, Sendable, Codable {
        /// The helpdesk answered the write.
        case delivered
        /// An earlier attempt whose answer was lost had landed: found by its marker, not written again.
        case found
        /// Its entry was deleted before anything reached the helpdesk: nothing to write or withdraw.
        case cancelled
        /// A manager gave it up.
        case discarded
    }

    public var id: Int64
    public var entryKey: String
    public var action: Action
    public var ticketID: Int
    public var payload: WriteBack
    public var attempts: Int
    /// Failures in a row since the last success: the backoff grows with these, not with attempts a crash cut short.
    public var failures: Int = 0
    public var nextAttemptAt: Date
    public var lastError: String?
    /// Set while an attempt's outcome is unknown (a crash, a timeout, a lost answer): when that attempt started.
    public var inDoubtSince: Date?
    /// Set when the helpdesk refused it for good (ticket gone, write refused); a manager retries or discards it.
    public var parkedAt: Date?
    public var createdAt: Date
    public var doneAt: Date?
    public var resolution: Resolution?

    public init(id: Int64 = 0, entryKey: String, action: Action, ticketID: Int, payload: WriteBack, attempts: Int = 0, failures: Int = 0,
                nextAttemptAt: Date, lastError: String? = nil, inDoubtSince: Date? = nil, parkedAt: Date? = nil, createdAt: Date,
                doneAt: Date? = nil, resolution: Resolution? = nil) {
        self.id = id
        self.entryKey = entryKey
        self.action = action
        self.ticketID = ticketID
        self.payload = payload
        self.attempts = attempts
        self.failures = failures
        self.nextAttemptAt = nextAttemptAt
        self.lastError = lastError
        self.inDoubtSince = inDoubtSince
        self.parkedAt = parkedAt
        self.createdAt = createdAt
        self.doneAt = doneAt
        self.resolution = resolution
    }

    /// Waiting to be delivered (parked ones included).
    public var isPending: Bool { doneAt == nil }

    enum CodingKeys: String, CodingKey {
        case id, action, attempts, failures, resolution
        case entryKey = "entry_key", ticketID = "ticket_id", nextAttemptAt = "next_attempt_at", lastError = "last_error"
        case inDoubtSince = "in_doubt_since", parkedAt = "parked_at", createdAt = "created_at", doneAt = "done_at"
        case payload
    }
}

public struct OutboxStats: Sendable, Codable, Equatable {
    /// Records not yet delivered, parked ones included.
    public var depth: Int
    /// Records the helpdesk refused for good, waiting for a manager.
    public var parked: Int = 0
    /// Records whose last attempt's outcome is unknown; each waits out the write fence before it is looked up.
    public var inDoubt: Int = 0
    public var oldestAgeSeconds: Int?
    public var lastError: String?

    public init(depth: Int, parked: Int = 0, inDoubt: Int = 0, oldestAgeSeconds: Int? = nil, lastError: String? = nil) {
        self.depth = depth
        self.parked = parked
        self.inDoubt = inDoubt
        self.oldestAgeSeconds = oldestAgeSeconds
        self.lastError = lastError
    }

    enum CodingKeys: String, CodingKey {
        case depth, parked
        case inDoubt = "in_doubt", oldestAgeSeconds = "oldest_age_seconds", lastError = "last_error"
    }
}
