import Foundation
import HourLedgerCore

extension Ledger {
    /// Stores webhook hints in one transaction, so many concurrent deliveries share one commit. A delivery with a
    /// signature already seen is a replay: its hint is not stored again. Signatures older than `forgetBefore` are
    /// dropped, since their timestamps can no longer pass the freshness check. Returns, per delivery, whether it was new.
    public func recordDeliveries(_ deliveries: [WebhookDelivery], now: Date? = nil, forgetBefore: Date) async throws -> [Bool] {
        let now = now ?? clock.now()
        let fresh = try await write { tx -> [Bool] in
            try tx.forgetSignatures(before: forgetBefore)
            var remembered = try tx.rememberSignatures(deliveries.compactMap(\.signature), at: now).makeIterator()
            let fresh = deliveries.map { delivery in delivery.signature == nil || remembered.next() == true }
            try tx.addHints(ticketIDs: zip(deliveries, fresh).filter(\.1).map(\.0.ticketID), at: now)
            return fresh
        }
        if fresh.contains(true) { hintsArrived.signal() }
        return fresh
    }

    /// Records that the helpdesk said these tickets changed, without a signature to remember (as iTop sends them).
    public func addHints(_ ticketIDs: [Int], now: Date? = nil) async throws {
        _ = try await recordDeliveries(ticketIDs.map { WebhookDelivery(ticketID: $0) }, now: now, forgetBefore: .distantPast)
    }

    /// Drops the hints a sync has served. A hint that arrived again meanwhile (counted higher) stays for the next sync.
    public func clearHints(_ hints: [TicketHint]) async throws {
        try await write { tx in for hint in hints { try tx.clearHint(hint) } }
    }
}

/// Gathers the webhook deliveries that arrive while a commit is running into the next commit. Each caller still
/// returns only after its own hint is on disk, but a thousand concurrent deliveries cost a few commits, not a thousand.
public actor DeliveryRecorder {
    private let ledger: Ledger
    private let replayWindow: @Sendable () -> Duration
    private var waiting: [(WebhookDelivery, CheckedContinuation<Bool, any Error>)] = []
    private var committing = false

    /// `replayWindow` is how long a signature is remembered: at least as long as a timestamp stays acceptable.
    public init(ledger: Ledger, replayWindow: @escaping @Sendable () -> Duration) {
        self.ledger = ledger
        self.replayWindow = replayWindow
    }

    /// Returns once the delivery is durable: true if it was new, false if its signature was already recorded.
    public func record(_ delivery: WebhookDelivery) async throws -> Bool {
        try await withCheckedThrowingContinuation { continuation in
            waiting.append((delivery, continuation))
            if !committing {
                committing = true
                Task { await self.commitWaiting() }
            }
        }
    }

    private func commitWaiting() async {
        while !waiting.isEmpty {
            let batch = waiting
            waiting = []
            let now = ledger.clock.now()
            let forget = now.addingTimeInterval(-Double(replayWindow().components.seconds) * 2 - 60)
            do {
                let fresh = try await ledger.recordDeliveries(batch.map(\.0), now: now, forgetBefore: forget)
                for (index, item) in batch.enumerated() { item.1.resume(returning: fresh[index]) }
            } catch {
                for item in batch { item.1.resume(throwing: error) }
            }
        }
        committing = false
    }
}
