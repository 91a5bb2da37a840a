import Foundation
import HourLedgerCore

/// The helpdesk's own count of time per ticket, read in one pass over every ticket.
public struct TicketTotals: Sendable {
    /// Seconds by ticket id (GLPI: the ticket's total duration, search option 45).
    public var seconds: [Int: Int]
    /// Each ticket's modification stamp in the same read, to tell a ticket changed since the last poll.
    public var dateMods: [Int: String]

    public init(seconds: [Int: Int] = [:], dateMods: [Int: String] = [:]) {
        self.seconds = seconds
        self.dateMods = dateMods
    }
}

/// Why the ledger and the helpdesk count a ticket differently, where HourLedger can tell.
public enum DriftCause: String, Sendable, Codable, Equatable {
    /// The ticket changed in the helpdesk after the last poll read it; the next poll brings it in line.
    case changedSinceLastPoll = "changed_since_last_poll"
    /// The helpdesk counts time on a ticket the ledger does not have yet.
    case notInLedger = "not_in_ledger"
    /// The ledger counts time on a ticket the helpdesk no longer lists (trash, purge, or a right withdrawn).
    case notInHelpdesk = "not_in_helpdesk"
    /// A write-back of HourLedger's own time to this ticket has not gone through yet.
    case writeBackPending = "write_back_pending"
    /// The ticket's tasks could not be read at the last polls.
    case readFailing = "read_failing"
    /// A note HourLedger wrote (iTop's private log) is no longer in the ticket: its time is not shown there.
    case noteMissing = "note_missing"
    /// None of the above: the helpdesk's total is not the sum of the tasks HourLedger read and wrote (a total edited
    /// by hand, or a change the polls missed). Worth a look.
    case unexplained
}

/// One ticket the ledger and the helpdesk count differently.
public struct TicketDrift: Sendable, Codable, Equatable {
    public var ticketID: Int
    public var contractID: String?
    /// What the ledger says the helpdesk should count: the raw seconds of the tasks it read plus the seconds it wrote.
    public var ledgerSeconds: Int
    public var helpdeskSeconds: Int
    /// Helpdesk minus ledger.
    public var driftSeconds: Int
    public var cause: DriftCause
    public var detail: String

    enum CodingKeys: String, CodingKey {
        case cause, detail
        case ticketID = "ticket_id", contractID = "contract_id", ledgerSeconds = "ledger_seconds", helpdeskSeconds = "helpdesk_seconds"
        case driftSeconds = "drift_seconds"
    }
}

/// One contract's tickets, added up on both sides.
public struct ContractDrift: Sendable, Codable, Equatable {
    /// Nil for tickets that count on no contract (or that the ledger does not have).
    public var contractID: String?
    public var tickets: Int
    public var ledgerSeconds: Int
    public var helpdeskSeconds: Int
    public var driftSeconds: Int

    enum CodingKeys: String, CodingKey {
        case tickets
        case contractID = "contract_id", ledgerSeconds = "ledger_seconds", helpdeskSeconds = "helpdesk_seconds", driftSeconds = "drift_seconds"
    }
}

/// The ledger's time per ticket and contract against the helpdesk's own figure, with every drift and its cause.
public struct Reconciliation: Sendable, Codable, Equatable {
    public var at: Date
    public var ticketsCompared: Int
    public var ledgerSeconds: Int
    public var helpdeskSeconds: Int
    public var drifts: [TicketDrift]
    public var contracts: [ContractDrift]
    public var requests: Int
    public var seconds: Double

    enum CodingKeys: String, CodingKey {
        case at, drifts, contracts, requests, seconds
        case ticketsCompared = "tickets_compared", ledgerSeconds = "ledger_seconds", helpdeskSeconds = "helpdesk_seconds"
    }

    /// Compares the ledger's figures with the helpdesk's. Pure, so every cause can be tested without a helpdesk.
    /// `explained` names the cause of a ticket's drift where the caller knows it better (a note found missing).
    public static func compare(ledger: [TicketSeconds], helpdesk: TicketTotals, pendingWrites: [Int: Int], failing: [Int: String],
                               explained: [Int: (DriftCause, String)] = [:], at: Date) -> Reconciliation {
        var drifts: [TicketDrift] = []
        var contracts: [String?: ContractDrift] = [:]
        var known = Set<Int>()
        func count(_ contractID: String?, ledger: Int, helpdesk: Int) {
            var row = contracts[contractID] ?? ContractDrift(contractID: contractID, tickets: 0, ledgerSeconds: 0, helpdeskSeconds: 0, driftSeconds: 0)
            row.tickets += 1
            row.ledgerSeconds += ledger
            row.helpdeskSeconds += helpdesk
            row.driftSeconds = row.helpdeskSeconds - row.ledgerSeconds
            contracts[contractID] = row
        }
        for ticket in ledger {
            known.insert(ticket.ticketID)
            let theirs = helpdesk.seconds[ticket.ticketID]
            count(ticket.contractID, ledger: ticket.expectedSeconds, helpdesk: theirs ?? 0)
            guard theirs != ticket.expectedSeconds, theirs != nil || ticket.expectedSeconds != 0 else { continue }
            let cause: DriftCause, detail: String
            if theirs == nil {
                (cause, detail) = (.notInHelpdesk, "the helpdesk no longer lists this ticket; the next deletion check marks it")
            } else if let error = failing[ticket.ticketID] {
                (cause, detail) = (.readFailing, "its tasks cannot be read: \(error)")
            } else if let pending = pendingWrites[ticket.ticketID] {
                (cause, detail) = (.writeBackPending, "\(pending) s of HourLedger's time are still to be written to it")
            } else if let known = explained[ticket.ticketID] {
                (cause, detail) = known
            } else if let stamp = helpdesk.dateMods[ticket.ticketID], stamp > ticket.dateMod {
                (cause, detail) = (.changedSinceLastPoll, "changed at \(stamp), after the last poll read it (\(ticket.dateMod))")
            } else {
                (cause, detail) = (.unexplained, "the helpdesk's total is not the sum of the tasks HourLedger read and wrote")
            }
            drifts.append(TicketDrift(ticketID: ticket.ticketID, contractID: ticket.contractID, ledgerSeconds: ticket.expectedSeconds,
                                      helpdeskSeconds: theirs ?? 0, driftSeconds: (theirs ?? 0) - ticket.expectedSeconds, cause: cause, detail: detail))
        }
        for (id, seconds) in helpdesk.seconds where !known.contains(id) {
            count(nil, ledger: 0, helpdesk: seconds)
            guard seconds != 0 else { continue }
            drifts.append(TicketDrift(ticketID: id, contractID: nil, ledgerSeconds: 0, helpdeskSeconds: seconds, driftSeconds: seconds,
                                      cause: .notInLedger, detail: "the next poll reads it"))
        }
        drifts.sort { $0.ticketID < $1.ticketID }
        let rows = contracts.values.sorted { ($0.contractID ?? "") < ($1.contractID ?? "") }
        return Reconciliation(at: at, ticketsCompared: known.union(helpdesk.seconds.keys).count, ledgerSeconds: rows.reduce(0) { $0 + $1.ledgerSeconds },
                              helpdeskSeconds: rows.reduce(0) { $0 + $1.helpdeskSeconds }, drifts: drifts, contracts: rows, requests: 0, seconds: 0)
    }
}

extension SyncEngine {
    static let reconciliationKey = "reconciliation.last"

    /// Reads every ticket's total from the helpdesk (one full ticket search) and compares it with the ledger; the
    /// result is kept for `/api/v1/reconciliation` and the metrics. Nil where the helpdesk keeps no total.
    @discardableResult
    public func reconcile(now: Date? = nil) async throws -> Reconciliation? {
        let started = ContinuousClock.now
        let before = await connector.requestCount()
        let (outbox, failures) = try ledger.read { tx in
            (try tx.pendingOutboxItems(parkedOnly: false, limit: 100_000), try tx.ticketFailures(limit: 100_000))
        }
        var pending: [Int: Int] = [:]
        for item in outbox { pending[item.ticketID, default: 0] += item.payload.seconds }
        let failing = Dictionary(failures.map { ($0.ticketID, $0.error) }, uniquingKeysWith: { first, _ in first })
        var result: Reconciliation
        if let totals = try await connector.ticketTotals() {
            result = Reconciliation.compare(ledger: try ledger.read { try $0.ticketSeconds() }, helpdesk: totals, pendingWrites: pending,
                                            failing: failing, at: now ?? ledger.clock.now())
        } else if let compared = try await compareNotes(pending: pending, failing: failing, at: now ?? ledger.clock.now()) {
            result = compared
        } else {
            return nil
        }
        result.requests = await connector.requestCount() - before
        let elapsed = ContinuousClock.now - started
        result.seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .secondsSince1970
        try ledger.setState(Self.reconciliationKey, String(decoding: try encoder.encode(result), as: UTF8.self))
        return result
    }

    /// Where HourLedger's time goes back as notes (iTop), the helpdesk's figure is the time of the entries whose note
    /// is still in the ticket: every written entry's marker is looked for in its ticket's notes.
    private func compareNotes(pending: [Int: Int], failing: [Int: String], at: Date) async throws -> Reconciliation? {
        let (written, stored) = try ledger.read { tx in
            let written = try tx.ownEntries(ticketID: nil, contractID: nil).filter { entry in
                guard let key = entry.key else { return false }
                return try tx.outboxItems(entryKey: key).contains { $0.action == .create && [.delivered, .found].contains($0.resolution) }
            }
            return (written, try tx.tickets(Array(Set(written.map(\.ticketID)))))
        }
        guard let notes = try await connector.noteTexts(ofTickets: Array(Set(written.map(\.ticketID))).sorted()) else { return nil }
        var rows: [Int: TicketSeconds] = [:]
        var totals = TicketTotals()
        var missing: [Int: [String]] = [:]
        for entry in written {
            let id = entry.ticketID
            rows[id, default: TicketSeconds(ticketID: id, contractID: stored[id]?.contractID ?? entry.contractID, dateMod: stored[id]?.dateMod ?? "",
                                            helpdeskTaskSeconds: 0, writtenSeconds: 0)].writtenSeconds += entry.billedSeconds
            // A ticket iTop no longer returns has no figure at all: it counts as not in the helpdesk.
            guard let texts = notes[id] else { continue }
            let marker = EntrySource.marker(entry.key ?? "")
            let found = texts.contains { $0.contains(marker) }
            totals.seconds[id, default: 0] += found ? entry.billedSeconds : 0
            if !found { missing[id, default: []].append(entry.key ?? "") }
        }
        let explained = missing.mapValues { keys in
            (DriftCause.noteMissing, "HourLedger's note for entr\(keys.count == 1 ? "y" : "ies") \(keys.joined(separator: ", ")) is no longer in the ticket's log")
        }
        return Reconciliation.compare(ledger: rows.keys.sorted().map { rows[$0]! }, helpdesk: totals, pendingWrites: pending, failing: failing,
                                      explained: explained, at: at)
    }

    /// The last reconciliation's result, as stored; it survives a restart.
    public nonisolated func lastReconciliation() throws -> Reconciliation? {
        guard let text = try ledger.state(Self.reconciliationKey) else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        return try decoder.decode(Reconciliation.self, from: Data(text.utf8))
    }
}
