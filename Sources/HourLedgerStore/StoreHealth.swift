import Foundation
import GRDB
import Synchronization

/// Whether the ledger can be written right now. A full disk, a read-only remount or an I/O error makes every write
/// fail; the daemon then answers 503 with Retry-After (nothing is acknowledged that is not on disk) and `/healthz`
/// fails, until a write succeeds again.
public final class StoreHealth: Sendable {
    private struct State {
        var failure: String?
        var since: Date?
        var lastProbe: ContinuousClock.Instant?
    }
    private let state = Mutex(State())

    public init() {}

    /// Why writes fail, and since when; nil while the ledger is writable.
    public var failure: (reason: String, since: Date)? {
        state.withLock { state in state.failure.map { ($0, state.since ?? Date()) } }
    }

    public func noteFailure(_ error: any Error) {
        let reason = Self.describe(error)
        state.withLock { state in
            if state.failure == nil { state.since = Date() }
            state.failure = reason
        }
    }

    public func noteSuccess() { state.withLock { $0.failure = nil; $0.since = nil } }

    /// True when a probe write is due: at most one every `interval`, so `/healthz` stays cheap.
    func probeDue(interval: Duration) -> Bool {
        state.withLock { state in
            if let last = state.lastProbe, ContinuousClock.now - last < interval { return false }
            state.lastProbe = .now
            return true
        }
    }

    /// True for the errors that mean the ledger cannot be written at all, as opposed to a bad request or a bug.
    public static func isStorageFailure(_ error: any Error) -> Bool {
        guard let error = error as? DatabaseError else { return false }
        return [.SQLITE_FULL, .SQLITE_IOERR, .SQLITE_READONLY, .SQLITE_CANTOPEN, .SQLITE_CORRUPT, .SQLITE_NOTADB, .SQLITE_PERM]
            .contains(error.resultCode)
    }

    static func describe(_ error: any Error) -> String {
        guard let error = error as? DatabaseError else { return "\(error)" }
        switch error.resultCode {
        case .SQLITE_FULL: return "the disk is full"
        case .SQLITE_READONLY, .SQLITE_PERM: return "the ledger is read-only"
        case .SQLITE_IOERR: return "an I/O error (\(error.message ?? "disk"))"
        case .SQLITE_CORRUPT, .SQLITE_NOTADB: return "the ledger file is damaged"
        default: return error.message ?? "\(error.resultCode)"
        }
    }
}

extension LedgerStore {
    /// Tries a one-row write (at most every five seconds) and records the outcome; returns the failure, if any.
    @discardableResult
    public func checkWritable(now: Date = Date()) -> (reason: String, since: Date)? {
        if health.probeDue(interval: .seconds(5)) {
            do {
                try writer.write { db in
                    try db.execute(sql: "INSERT INTO sync_state(key, value) VALUES ('health.probe', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                                   arguments: [String(Int(now.timeIntervalSince1970))])
                }
                health.noteSuccess()
            } catch {
                health.noteFailure(error)
            }
        }
        return health.failure
    }
}
