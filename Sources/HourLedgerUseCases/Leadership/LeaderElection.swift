import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// What `/status`, `/metrics` and `/healthz` say of this process's part in a shared ledger.
public final class LeadershipStatus: Sendable {
    public enum Role: String, Sendable, Codable {
        /// The only process a ledger can have (a SQLite file): it leads, and nobody can take over.
        case single
        case leader
        case standby
    }

    public struct Snapshot: Sendable, Codable, Equatable {
        public var role: Role
        /// This process's term while it leads.
        public var term: Int64?
        /// The lease as last read: who leads, until when.
        public var lease: LeaderLease?
        /// When this process took its current role.
        public var since: Date
        /// How often this process took the lead since it started.
        public var takeovers: Int
        public var lastError: String?

        enum CodingKeys: String, CodingKey {
            case role, term, lease, since, takeovers
            case lastError = "last_error"
        }
    }

    private let state: Mutex<Snapshot>

    public init(role: Role = .single, now: Date = Date()) {
        state = Mutex(Snapshot(role: role, term: nil, lease: nil, since: now, takeovers: 0, lastError: nil))
    }

    public var snapshot: Snapshot { state.withLock { $0 } }

    /// Runs the leader's work here, whether or not it leads now (`single` always does).
    public var leads: Bool { state.withLock { $0.role != .standby } }

    func lead(_ lease: LeaderLease, now: Date) {
        state.withLock { $0 = Snapshot(role: .leader, term: lease.term, lease: lease, since: now, takeovers: $0.takeovers + 1, lastError: nil) }
    }

    func follow(_ lease: LeaderLease?, now: Date) {
        state.withLock { state in
            if state.role != .standby { state.since = now }
            state.role = .standby
            state.term = nil
            state.lease = lease
            state.lastError = nil
        }
    }

    func renewed(until expiry: Date) { state.withLock { $0.lease?.expiresAt = expiry; $0.lastError = nil } }

    func failed(_ error: String) { state.withLock { $0.lastError = error } }
}

/// Another process leads: `hourledger sync` does not run beside a daemon.
public struct LeaderBusy: Error, CustomStringConvertible, Sendable {
    public let lease: LeaderLease?
    public var description: String {
        let who = lease.map { $0.holder.isEmpty ? "another process" : $0.holder } ?? "another process"
        return "the ledger is in use by \(who), which leads it; one process may poll and deliver for a ledger at a time: stop it first"
    }
}

extension LeaderElection {
    /// How a process names itself in the lease and in the store's connection list.
    public static func holderName(command: String) -> String {
        "hourledger \(command) (pid \(ProcessInfo.processInfo.processIdentifier) on \(ProcessInfo.processInfo.hostName))"
    }
}

/// Runs the leader's work (the poller, the outbox, alerts, rollover) in exactly one of the processes sharing a
/// ledger. A standby tries to claim the lease every `retry`; the leader renews it every quarter of its length, and
/// stops its work at once when a renewal says another took over, or when its lease runs out by its own clock before a
/// renewal got through (the store unreachable, the process paused). Its writes are fenced meanwhile
/// (`LeaderFence`), so none of them lands after a takeover. A clean stop lets go of the lease, so a standby takes
/// over at its next try.
public actor LeaderElection: Service {
    private let leases: any LeaderLeases
    private let holder: String
    private let leaseSeconds: Int
    private let retry: Duration
    private let workers: [any Service]
    private let status: LeadershipStatus
    private let heartbeat: Heartbeat
    private let logger: Logger
    private let queue = DispatchQueue(label: "hourledger.leadership")

    public init(leases: any LeaderLeases, holder: String, leaseSeconds: Int, retry: Duration = .seconds(1), workers: [any Service],
                status: LeadershipStatus, heartbeat: Heartbeat, logger: Logger) {
        self.leases = leases
        self.holder = holder
        self.leaseSeconds = leaseSeconds
        self.retry = retry
        self.workers = workers
        self.status = status
        self.heartbeat = heartbeat
        self.logger = logger
    }

    /// How far this process's clock keeps ahead of the store's in judging its own lease.
    var margin: Duration { .milliseconds(max(1000, leaseSeconds * 1000 / 6)) }

    public func run() async throws {
        var lastWarning: ContinuousClock.Instant?
        status.follow(nil, now: Date())
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            heartbeat.beat()
            let asked = ContinuousClock.now
            do {
                switch try await blocking({ [leases, holder, leaseSeconds] in try leases.claimLease(holder: holder, seconds: leaseSeconds, now: Date()) }) {
                case .held(let lease):
                    status.follow(lease, now: Date())
                case .taken(let lease):
                    let fence = LeaderFence(term: lease.term, validUntil: asked + .seconds(leaseSeconds) - margin)
                    status.lead(lease, now: Date())
                    logger.notice("leading: this process runs the poller, the outbox and the alerts",
                                  metadata: ["term": "\(lease.term)", "holder": "\(holder)"])
                    let why = await lead(fence)
                    if Task.isShuttingDownGracefully || Task.isCancelled {
                        do {
                            try await blocking { [leases] in try leases.releaseLease(term: lease.term) }
                            logger.notice("let go of the lead", metadata: ["term": "\(lease.term)"])
                        } catch {
                            logger.warning("could not let go of the lead; a standby takes over when it runs out", metadata: ["error": "\(error)"])
                        }
                        status.follow(nil, now: Date())
                        return
                    }
                    logger.notice("the workers stopped", metadata: ["term": "\(lease.term)", "reason": "\(why)"])
                }
                lastWarning = nil
            } catch {
                status.failed("\(error)")
                // Tried every second; said once a minute while the store stays unreachable.
                let now = ContinuousClock.now
                if lastWarning.map({ now - $0 >= .seconds(60) }) ?? true {
                    logger.warning("cannot read the lead from the ledger; standing by", metadata: ["error": "\(error)"])
                    lastWarning = now
                }
            }
            heartbeat.sleeping(for: retry)
            try? await cancelWhenGracefulShutdown { [retry] in try await Task.sleep(for: retry) }
        }
    }

    /// Leads for `body` alone (`hourledger sync` on a shared ledger): claims the lease, runs `body` under its fence
    /// while renewing it, and lets go afterwards. Refused with `LeaderBusy` while another process leads.
    public func leadOnce<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let asked = ContinuousClock.now
        let claim = try await blocking { [leases, holder, leaseSeconds] in try leases.claimLease(holder: holder, seconds: leaseSeconds, now: Date()) }
        guard case .taken(let lease) = claim else {
            if case .held(let lease) = claim { throw LeaderBusy(lease: lease) }
            throw LeaderBusy(lease: nil)
        }
        let fence = LeaderFence(term: lease.term, validUntil: asked + .seconds(leaseSeconds) - margin)
        status.lead(lease, now: Date())
        defer { status.follow(nil, now: Date()) }
        let result = await withTaskGroup(of: Result<T, any Error>.self) { group -> Result<T, any Error> in
            group.addTask {
                do { return .success(try await Ledger.$fence.withValue(fence) { try await body() }) } catch { return .failure(error) }
            }
            group.addTask { [self] in
                let why = await keepLease(fence)
                return .failure(LeadershipLost(term: fence.term, reason: why))
            }
            let first = await group.next()!
            group.cancelAll()
            return first
        }
        try? await blocking { [leases] in try leases.releaseLease(term: lease.term) }
        return try result.get()
    }

    /// Runs the workers under `fence` until the lead is lost (they are cancelled) or the daemon stops (they finish
    /// what they do, as without a standby). Returns why it ended.
    private func lead(_ fence: LeaderFence) async -> String {
        await withTaskGroup(of: Void.self) { group in
            for worker in workers {
                group.addTask { [logger] in
                    do {
                        try await Ledger.$fence.withValue(fence) { try await worker.run() }
                    } catch {
                        logger.error("a leader's worker failed", metadata: ["error": "\(error)"])
                    }
                }
            }
            let why = await keepLease(fence)
            if !Task.isShuttingDownGracefully {
                // Said at once: a worker stuck in a call to an unreachable store may take a while to end.
                status.follow(nil, now: Date())
                logger.warning("no longer leading: the workers stop; standing by", metadata: ["term": "\(fence.term)", "reason": "\(why)"])
                group.cancelAll()
            }
            await group.waitForAll()
            return why
        }
    }

    /// Renews the lease every quarter of its length until it is lost or the daemon stops.
    private func keepLease(_ fence: LeaderFence) async -> String {
        let every = Duration.milliseconds(leaseSeconds * 250)
        while true {
            let wait = min(every, max(.milliseconds(50), fence.validUntil - ContinuousClock.now))
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: wait) }
            } catch {
                return "stopping"
            }
            if Task.isShuttingDownGracefully || Task.isCancelled { return "stopping" }
            if let lost = fence.lostReason { return lost }
            let asked = ContinuousClock.now
            do {
                if try await blocking({ [leases, leaseSeconds] in try leases.renewLease(term: fence.term, seconds: leaseSeconds) }) {
                    fence.renewed(askedAt: asked, seconds: leaseSeconds, margin: margin)
                    status.renewed(until: Date().addingTimeInterval(TimeInterval(leaseSeconds)))
                } else {
                    fence.lose("another process took over")
                }
            } catch {
                status.failed("\(error)")
                logger.warning("cannot renew the lead", metadata: ["term": "\(fence.term)", "error": "\(error)",
                                                                  "runs_out_in_ms": "\(Int((fence.validUntil - ContinuousClock.now).timeInterval * 1000))"])
            }
            if let lost = fence.lostReason { return lost }
        }
    }

    /// The store's calls block their thread: they run on a queue of their own, off the cooperative pool.
    private func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try body() }) }
        }
    }
}
