import Foundation
import HourLedgerUseCases
import Logging
import NIOConcurrencyHelpers
import NIOCore
import PostgresNIO

extension PostgresSchema {
    /// The one lease of the processes sharing this schema. It is no part of the ledger (`migrate` does not copy it,
    /// `verify` does not read it), so it is created here rather than as one of the ledger's migrations.
    static func createLease(_ session: Session) throws {
        try session.script("""
            CREATE TABLE IF NOT EXISTS hourledger_leader (
                id INT PRIMARY KEY CHECK (id = 1),
                term BIGINT NOT NULL,
                holder TEXT NOT NULL,
                holder_pid INT,
                expires_at TIMESTAMPTZ NOT NULL
            );
            INSERT INTO hourledger_leader(id, term, holder, holder_pid, expires_at) VALUES (1, 0, '', NULL, 'epoch') ON CONFLICT DO NOTHING;
            """)
    }
}

/// The lease lives in one row; its clock is PostgreSQL's (`clock_timestamp()`), so two hosts whose clocks disagree
/// still agree on when it runs out. The row names the server process of the holder's lease connection: a holder
/// that died (kill -9, its host gone and the connection closed) is taken over at once, without waiting its lease out.
/// A holder paused (SIGSTOP) keeps its connection, so its lease has to run out first.
extension PostgresLedger: LeaderLeases {
    /// The claimable condition: run out, let go, or its holder's connection gone.
    private static let claimable = """
        (expires_at < clock_timestamp() OR holder_pid IS NULL
         OR NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = hourledger_leader.holder_pid))
        """

    public func claimLease(holder: String, seconds: Int, now: Date) throws -> LeaseClaim {
        try Self.mapped {
            try withLease { session in
                // Looked at first without the ledger's write lock, so a standby's try every second costs a leader nothing.
                let free = try session.rows(PostgresQuery(unsafeSQL: "SELECT \(Self.claimable) AS free FROM hourledger_leader WHERE id = 1"))
                guard try free.first?["free"] as Bool? == true else { return .held(try Self.heldLease(session)) }
                return try session.transaction("BEGIN") {
                    // Under the write lock: a write of the old term either committed before this (and its attempt is
                    // in doubt, restarted below) or sees the new term and is refused.
                    try session.execute("SELECT pg_advisory_xact_lock(\(unescaped: String(Self.writeLockClass)), hashtext(current_schema()))")
                    let rows = try session.rows(PostgresQuery(unsafeSQL: """
                        UPDATE hourledger_leader SET term = term + 1, holder = $1, holder_pid = pg_backend_pid(),
                            expires_at = clock_timestamp() + make_interval(secs => $2)
                        WHERE id = 1 AND \(Self.claimable)
                        RETURNING term, holder, EXTRACT(EPOCH FROM expires_at)::float8 AS expires
                        """, binds: Self.binds(holder, Double(seconds))))
                    guard let row = rows.first else { return .held(try Self.heldLease(session)) }
                    let start = Int(now.timeIntervalSince1970)
                    try session.execute("""
                        UPDATE outbox SET in_doubt_since = GREATEST(in_doubt_since, \(start)) WHERE done_at IS NULL AND in_doubt_since IS NOT NULL
                        """)
                    try session.execute("""
                        UPDATE alert_delivery SET in_doubt_since = GREATEST(in_doubt_since, \(start))
                        WHERE done_at IS NULL AND failed_at IS NULL AND in_doubt_since IS NOT NULL
                        """)
                    return .taken(LeaderLease(term: try row["term"], holder: try row["holder"],
                                              expiresAt: Date(timeIntervalSince1970: try row["expires"] as Double)))
                }
            }
        }
    }

    public func renewLease(term: Int64, seconds: Int) throws -> Bool {
        try Self.mapped {
            try withLease { session in
                try session.execute("""
                    UPDATE hourledger_leader SET holder_pid = pg_backend_pid(),
                        expires_at = GREATEST(expires_at, clock_timestamp() + make_interval(secs => \(Double(seconds))))
                    WHERE id = 1 AND term = \(term)
                    """) == 1
            }
        }
    }

    public func releaseLease(term: Int64) throws {
        try Self.mapped {
            try withLease { session in
                try session.execute("UPDATE hourledger_leader SET expires_at = 'epoch', holder_pid = NULL WHERE id = 1 AND term = \(term)")
            }
        }
    }

    public func currentLease() throws -> LeaderLease? {
        try Self.mapped { try withLease { try Self.lease($0) } }
    }

    private static func lease(_ session: Session) throws -> LeaderLease? {
        guard let row = try session.rows("SELECT term, holder, EXTRACT(EPOCH FROM expires_at)::float8 AS expires FROM hourledger_leader WHERE id = 1").first,
              try row["term"] as Int64 > 0 else { return nil }
        return LeaderLease(term: try row["term"], holder: try row["holder"], expiresAt: Date(timeIntervalSince1970: try row["expires"] as Double))
    }

    /// The lease a claim found held (a row of term 0 before anyone led).
    private static func heldLease(_ session: Session) throws -> LeaderLease {
        try lease(session) ?? LeaderLease(term: 0, holder: "", expiresAt: .distantPast)
    }

    private static func binds(_ holder: String, _ seconds: Double) -> PostgresBindings {
        var bindings = PostgresBindings()
        bindings.append(holder)
        bindings.append(seconds)
        return bindings
    }

    /// The lease's own connection, which gives up within seconds: a renewal that cannot get through must fail well
    /// before the lease runs out.
    private func withLease<T>(_ body: (Session) throws -> T) throws -> T {
        try leaseLock.withLock {
            guard !closed.withLockedValue({ $0 }) else { throw LedgerStoreError("the ledger was closed") }
            let session = try leaseSession ?? connect(timeout: .seconds(2), lockTimeoutSeconds: 2, statementTimeoutSeconds: 2,
                                                                idleInTransactionSeconds: writeIdleSeconds)
            leaseSession = session
            do {
                return try body(session)
            } catch {
                if session.isBroken { leaseSession = nil; session.close() }
                throw error
            }
        }
    }
}

extension PostgresTransaction: LeaseReader {
    func leaderTerm() throws -> Int64 {
        try one("SELECT term FROM hourledger_leader WHERE id = 1") ?? 0
    }
}

// MARK: Changes other processes made

extension PostgresLedger: LedgerChangeFeed {
    /// One channel per schema: two ledgers on one database do not wake each other.
    var changeChannel: String { "hourledger_\(location.schema)" }

    public func watchChanges(_ changed: @escaping @Sendable (LedgerChange) -> Void) throws -> any ChangeWatch {
        let configuration = try connectionConfiguration(timeout: .seconds(10))
        let (channel, instance, logger, group) = (changeChannel, instance, logger, MultiThreadedEventLoopGroup.singleton)
        let task = Task {
            var connected = false
            while !Task.isCancelled {
                do {
                    let connection = try await PostgresConnection.connect(on: group.next(), configuration: configuration,
                                                                          id: Self.connectionIDs.withLockedValue { $0 += 1; return $0 }, logger: logger)
                    defer { Task { try? await connection.close() } }
                    try await connection.listen(on: channel) { notifications in
                        // What was committed while nobody listened is looked at once.
                        if connected { for kind in [LedgerChange.hints, .outbox, .alerts] { changed(kind) } }
                        connected = true
                        for try await notification in notifications {
                            let words = notification.payload.split(separator: " ")
                            guard words.count == 2, words[1] != instance, let kind = LedgerChange(rawValue: String(words[0])) else { continue }
                            changed(kind)
                        }
                    }
                } catch {
                    if Task.isCancelled { return }
                    logger.warning("lost the ledger's change feed; trying again", metadata: ["error": "\(String(reflecting: Self.described(error)))"])
                }
                try? await Task.sleep(for: .seconds(1))
            }
        }
        return Watch(task: task)
    }

    struct Watch: ChangeWatch {
        let task: Task<Void, Never>
        func stop() { task.cancel() }
    }
}

/// The kinds of work a transaction queued, told to the other processes when it commits.
final class ChangeNotes: @unchecked Sendable {
    var kinds = Set<LedgerChange>()
}

extension PostgresTransaction {
    func note(_ change: LedgerChange) { notes.kinds.insert(change) }

    /// `pg_notify` is delivered at commit, and only if the transaction commits.
    func notifyChanges(channel: String, from instance: String) throws {
        for kind in notes.kinds.sorted(by: { $0.rawValue < $1.rawValue }) {
            try run("SELECT pg_notify(\(channel), \(kind.rawValue + " " + instance))")
        }
    }
}
