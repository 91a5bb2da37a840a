import Foundation
import HourLedgerCore
import HourLedgerUseCases
import Hummingbird
import Prometheus
import Synchronization

/// `GET /metrics` in Prometheus text format. Counters and histograms are recorded as things happen; the ledger's
/// state (outbox, entries, balances) is read from the store at scrape time, so it is never stale.
public enum MetricsRoutes {
    public static func register<Context: RequestContext>(on router: Router<Context>, context api: LedgerAPIContext,
                                                         registry: PrometheusCollectorRegistry) {
        let gauges = LedgerGauges(registry: registry)
        router.get("/metrics") { _, _ in
            try await gauges.update(from: api)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
    }
}

/// Gauges set from the store before each scrape. A contract dropped by a reload loses its series.
final class LedgerGauges: Sendable {
    private let registry: PrometheusCollectorRegistry
    private let contractGauges = Mutex<[String: [Gauge]]>([:])

    init(registry: PrometheusCollectorRegistry) { self.registry = registry }

    private func gauge(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> Gauge {
        registry.makeGauge(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels)
    }

    func update(from api: LedgerAPIContext) async throws {
        let now = api.clock()
        let sync = await api.engine.status
        let (counts, outbox, deliveries, balances) = try await api.reads.run {
            (try api.ledger.counts(), try api.ledger.outboxStats(now: now), try api.ledger.alertDeliveryStats(),
             try api.ledger.contractBalances(at: now).balances)
        }

        gauge("hourledger_outbox_depth", "Write-backs waiting to reach the helpdesk.").set(Double(outbox.depth))
        gauge("hourledger_outbox_oldest_age_seconds", "Age of the oldest waiting write-back (0 when none).").set(Double(outbox.oldestAgeSeconds ?? 0))
        gauge("hourledger_outbox_parked", "Write-backs the helpdesk refused for good, waiting for a manager to retry or discard them.")
            .set(Double(outbox.parked))
        gauge("hourledger_outbox_in_doubt", "Write-backs whose last attempt's outcome is unknown, waiting out the write fence.")
            .set(Double(outbox.inDoubt))
        gauge("hourledger_entries", "Ledger entries stored.").set(Double(counts.entries))
        gauge("hourledger_tickets", "Tickets seen in the helpdesk.").set(Double(counts.tickets))
        gauge("hourledger_tickets_unmatched", "Tickets no contract rule matches.").set(Double(counts.unmatched))
        gauge("hourledger_tickets_failing", "Tickets the helpdesk would not let the daemon read at the last poll.").set(Double(counts.failingTickets))
        gauge("hourledger_alerts_fired", "Contract alerts fired since the ledger was created.").set(Double(counts.alerts))
        gauge("hourledger_alert_deliveries_pending", "Alert deliveries not yet sent.").set(Double(deliveries.pending))
        gauge("hourledger_alert_deliveries_failed", "Alert deliveries that gave up.").set(Double(deliveries.failed))
        gauge("hourledger_webhook_hints_pending", "Webhook hints waiting for a sync.").set(Double(counts.pendingHints))
        let leadership = api.leadership.snapshot
        gauge("hourledger_leader", "1 while this process runs the poller and the outbox (always, on a SQLite ledger); 0 while it stands by.")
            .set(leadership.role == .standby ? 0.0 : 1.0)
        gauge("hourledger_leader_term", "The lease's term as this process last saw it (0 on a SQLite ledger).").set(Double(leadership.lease?.term ?? 0))
        gauge("hourledger_leader_takeovers", "How often this process took the lead since it started.").set(Double(leadership.takeovers))
        gauge("hourledger_poll_consecutive_failures", "Polls failed in a row.").set(Double(sync.consecutiveFailures))
        gauge("hourledger_last_successful_poll_timestamp_seconds", "Unix time of the last successful poll (0 before the first).")
            .set(sync.lastSuccess?.timeIntervalSince1970 ?? 0)

        var current: [String: [Gauge]] = [:]
        for balance in balances {
            let labels = [("contract", balance.id)]
            let series = [
                (gauge("hourledger_contract_available_seconds", "Seconds available in the current period: quota plus carried in.", labels),
                 balance.availableSeconds),
                (gauge("hourledger_contract_used_seconds", "Billed seconds used in the current period.", labels), balance.usedSeconds),
                (gauge("hourledger_contract_remaining_seconds", "Seconds left in the current period; negative in overage.", labels),
                 balance.remainingSeconds),
                (gauge("hourledger_contract_overage_seconds", "Billed seconds beyond the period's quota.", labels), balance.overageSeconds),
            ]
            for (gauge, value) in series { gauge.set(Double(value)) }
            current[balance.id] = series.map(\.0)
        }
        // The last reconciliation's drift per contract (helpdesk minus ledger; "none" for tickets on no contract).
        if let reconciliation = try api.engine.lastReconciliation() {
            gauge("hourledger_reconciliation_drifting_tickets", "Tickets whose helpdesk total differed from the ledger at the last reconciliation.")
                .set(Double(reconciliation.drifts.count))
            gauge("hourledger_reconciliation_last_timestamp_seconds", "Unix time of the last reconciliation.").set(reconciliation.at.timeIntervalSince1970)
            for row in reconciliation.contracts {
                let drift = gauge("hourledger_reconciliation_drift_seconds",
                                  "Seconds the helpdesk counts minus those the ledger counts, at the last reconciliation.",
                                  [("contract", row.contractID ?? "none")])
                drift.set(Double(row.driftSeconds))
                current["drift:" + (row.contractID ?? "")] = [drift]
            }
        }
        let dropped = contractGauges.withLock { previous in
            defer { previous = current }
            return previous.filter { current[$0.key] == nil }.flatMap(\.value)
        }
        for gauge in dropped { registry.unregisterGauge(gauge) }
    }
}
