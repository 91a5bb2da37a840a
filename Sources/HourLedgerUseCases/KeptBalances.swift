import Foundation
import HourLedgerCore
import Synchronization

/// Each contract's balance rows as last worked out, kept until the contract's stored totals change or time crosses
/// one of its period boundaries. `/status`, `GET /api/v1/contracts` and the dashboard read every contract's balance
/// on each request; walking every period of a thousand contracts took a third of a second, a look-up here takes
/// microseconds. The store's balance revision (kept by the store on each write, whoever writes) says which contracts
/// changed, so a second process on the same ledger never serves balances older than the last commit it can see.
final class KeptBalances: Sendable {
    private struct Worked {
        var contract: Contract
        var rows: [BalanceRow]
        /// The span of `now` over which `rows` stay the same: between the period boundaries around the instant they
        /// were worked out for.
        var from: Date
        var until: Date
    }

    private struct State {
        /// The store's balance revision the usage below is as of; -1 before the first read.
        var revision: Int64 = -1
        var usage: [String: [String: PeriodUsage]] = [:]
        var topUps: [String: [TopUp]] = [:]
        var worked: [String: Worked] = [:]
    }

    private let state = Mutex(State())

    /// The balance rows of each of `contracts` at `now`, in their order; a contract whose stored figures are damaged
    /// gives its error instead. One read of the store when nothing changed; the changed contracts' totals otherwise.
    func rows(of contracts: [Contract], now: Date, repository: any LedgerRepository) throws -> [Result<[BalanceRow], DamagedLedger>] {
        try spannedRows(of: contracts, now: now, repository: repository).rows
    }

    /// `rows`, with the span of `now` over which all of them stay the same unless the store changes: between the
    /// nearest period boundaries of any of the contracts.
    func spannedRows(of contracts: [Contract], now: Date, repository: any LedgerRepository)
        throws -> (rows: [Result<[BalanceRow], DamagedLedger>], from: Date, until: Date)
    {
        let known = state.withLock { $0.revision }
        let (revision, changed) = try repository.read { tx -> (Int64, (usage: [String: [String: PeriodUsage]], topUps: [String: [TopUp]])?) in
            let revision = try tx.balanceRevision()
            guard revision != known else { return (revision, nil) }
            return (revision, (try tx.periodUsage(changedAfter: max(known, 0)), try tx.topUps(changedAfter: max(known, 0))))
        }
        return state.withLock { state in
            if let changed, revision > state.revision {
                // Usage read after a revision the state has not reached yet holds everything changed since then too.
                if state.revision < 0 { state.usage = [:]; state.topUps = [:]; state.worked = [:] }
                for (contractID, usage) in changed.usage {
                    state.usage[contractID] = usage
                    state.topUps[contractID] = changed.topUps[contractID] ?? []
                    state.worked[contractID] = nil
                }
                state.revision = revision
            }
            var from = Date.distantPast
            var until = Date.distantFuture
            let rows = contracts.map { contract -> Result<[BalanceRow], DamagedLedger> in
                if let worked = state.worked[contract.id], worked.contract == contract, worked.from <= now, now < worked.until {
                    from = max(from, worked.from)
                    until = min(until, worked.until)
                    return .success(worked.rows)
                }
                do {
                    let rows = try BalanceRow.statements(of: contract, usage: state.usage[contract.id] ?? [:],
                                                           topUps: state.topUps[contract.id] ?? [], now: now)
                    let span = Self.span(of: contract, rows: rows, around: now)
                    state.worked[contract.id] = Worked(contract: contract, rows: rows, from: span.from, until: span.until)
                    from = max(from, span.from)
                    until = min(until, span.until)
                    return .success(rows)
                } catch let error as DamagedLedger {
                    return .failure(error)
                } catch {
                    return .failure(DamagedLedger(description: "contract \(contract.id): \(error)"))
                }
            }
            return (rows, from, until)
        }
    }

    /// Rows depend on `now` only through which periods have started and which have ended, so they hold between the
    /// nearest boundaries on either side.
    static func span(of contract: Contract, rows: [BalanceRow], around now: Date) -> (from: Date, until: Date) {
        let first = PeriodCalculator(kind: contract.period, starts: contract.starts, expires: contract.expires, calendar: contract.calendar)
            .period(index: 0).start
        var from = Date.distantPast
        var until = Date.distantFuture
        for boundary in rows.flatMap({ [$0.periodStart, $0.periodEnd].compactMap { $0 } }) + [first] {
            if boundary <= now { from = max(from, boundary) } else { until = min(until, boundary) }
        }
        return (from, until)
    }
}
