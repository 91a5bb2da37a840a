import Foundation
import Synchronization

/// The term a leader's work runs under. Every ledger write made inside `Ledger.$fence.withValue(fence)` checks, in
/// its own transaction, that the term is still the current one, and is refused once another process took over. A
/// write to the helpdesk is sent only while the lease is good by this process's own clock (`checkSending`), so a
/// leader paused between recording an attempt and sending it does not send after its lease ran out.
public final class LeaderFence: Sendable {
    public let term: Int64
    private let state: Mutex<(validUntil: ContinuousClock.Instant, lost: String?)>

    /// `validUntil`: when the lease runs out by this process's clock (measured from before the renewal was asked).
    public init(term: Int64, validUntil: ContinuousClock.Instant) {
        self.term = term
        state = Mutex((validUntil, nil))
    }

    /// A renewal asked at `asked` succeeded for `seconds`; the margin keeps this clock ahead of the store's.
    public func renewed(askedAt asked: ContinuousClock.Instant, seconds: Int, margin: Duration) {
        state.withLock { $0.validUntil = max($0.validUntil, asked + .seconds(seconds) - margin) }
    }

    /// Another took over, or the lease cannot be kept: every later write is refused.
    public func lose(_ reason: String) { state.withLock { if $0.lost == nil { $0.lost = reason } } }

    public var lostReason: String? {
        state.withLock { state in
            if let lost = state.lost { return lost }
            return ContinuousClock.now >= state.validUntil ? "the lease ran out before it could be renewed" : nil
        }
    }

    public var validUntil: ContinuousClock.Instant { state.withLock { $0.validUntil } }

    /// Throws unless the lease is still good by this process's clock: called just before a write is sent.
    public func checkSending() throws {
        if let reason = lostReason { throw LeadershipLost(term: term, reason: reason) }
    }

    /// Throws unless `transaction` still sees this term as the current one.
    func check(_ transaction: Any) throws {
        try checkSending()
        guard let reader = transaction as? any LeaseReader else { return }
        let current = try reader.leaderTerm()
        guard current == term else {
            let reason = "term \(current) took over"
            lose(reason)
            throw LeadershipLost(term: term, reason: reason)
        }
    }
}

extension Ledger {
    /// The fence of the leader's work in progress; nil for everything else (the API, webhooks, a CLI on its own file).
    @TaskLocal public static var fence: LeaderFence?
}
