import Foundation

/// Who leads a ledger shared by several daemons: the one holding the lease of the current term.
public struct LeaderLease: Sendable, Equatable, Codable {
    /// Raised by every takeover: the fencing token each of the leader's writes is checked against.
    public var term: Int64
    /// The holder's own words: command, pid and host.
    public var holder: String
    /// By the store's clock: after this a standby may take over.
    public var expiresAt: Date

    public init(term: Int64, holder: String, expiresAt: Date) {
        self.term = term
        self.holder = holder
        self.expiresAt = expiresAt
    }

    enum CodingKeys: String, CodingKey {
        case term, holder
        case expiresAt = "expires_at"
    }
}

/// What a claim found: the lease is ours now, or another holds it.
public enum LeaseClaim: Sendable, Equatable {
    case taken(LeaderLease)
    case held(LeaderLease)
}

/// A store several processes share (PostgreSQL) keeps one lease for them. A process leads while its lease is
/// current; it renews it well before it runs out. A standby claims it once it has run out, or at once when the
/// holder's connection to the store is gone (the process died). A claim raises the term, and in the same
/// transaction restarts the fence of every write-back and alert still in doubt, so the new leader waits a whole fence
/// from its takeover before it looks for them: a write the old leader sent just before it lost the lease has landed
/// by then.
public protocol LeaderLeases: Sendable {
    /// Takes the lease when it is free, run out or its holder gone; otherwise says who holds it. `now` is the time
    /// written as the new start of the fences in doubt.
    func claimLease(holder: String, seconds: Int, now: Date) throws -> LeaseClaim
    /// Extends the lease of `term` by `seconds` from now; false when another term has taken over meanwhile.
    func renewLease(term: Int64, seconds: Int) throws -> Bool
    /// Lets go of the lease of `term` (a clean stop), so a standby takes over at its next try.
    func releaseLease(term: Int64) throws
    /// The lease as it stands; nil before anyone led.
    func currentLease() throws -> LeaderLease?
}

/// A transaction of a store that keeps leases: a leader's write checks in it that its term is still the current one,
/// under the same lock a takeover takes.
public protocol LeaseReader {
    func leaderTerm() throws -> Int64
}

/// A leader's write after another process took over; nothing of it was stored.
public struct LeadershipLost: Error, CustomStringConvertible, Sendable {
    public let term: Int64
    public let reason: String

    public init(term: Int64, reason: String) {
        self.term = term
        self.reason = reason
    }

    public var description: String { "no longer the leader (term \(term)): \(reason)" }
}

/// A store whose other writers are other processes can say when they queued work: the leader wakes for a webhook
/// hint or a write-back a standby stored, as it does for its own.
public protocol LedgerChangeFeed: Sendable {
    /// Calls `changed` with the kind of each change other processes commit, until `stop` is called on the result.
    func watchChanges(_ changed: @escaping @Sendable (LedgerChange) -> Void) throws -> any ChangeWatch
}

public enum LedgerChange: String, Sendable {
    case hints, outbox, alerts
}

public protocol ChangeWatch: Sendable {
    func stop()
}
