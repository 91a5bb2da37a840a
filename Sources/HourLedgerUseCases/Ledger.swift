import Foundation
import HourLedgerCore
import Logging
import Synchronization

/// The contracts in force and where alerts go: the config file's, then those built from the helpdesk's own contracts
/// by the config's `helpdesk_contracts` terms (a config contract of the same id wins). A reload replaces the config
/// part and the terms; a poll replaces what the helpdesk lists. Every use case reads the contracts here.
public final class ContractBook: Sendable {
    private struct State {
        var configured: [Contract]
        var terms: HelpdeskContractTerms
        var known: [KnownHelpdeskContract]
        var channels: AlertChannels
        var version = 0
        var contracts: [Contract] = []
        var skipped: [(id: Int, reason: String)] = []
        var built: [String] = []
    }
    private let state: Mutex<State>
    /// `glpi` or `itop`: the prefix of the ids of contracts built from the helpdesk's.
    public let helpdeskPrefix: String

    public init(_ contracts: [Contract], alertChannels: AlertChannels = AlertChannels(), terms: HelpdeskContractTerms = .init(),
                known: [KnownHelpdeskContract] = [], helpdesk: HelpdeskKind = .glpi) {
        helpdeskPrefix = helpdesk.rawValue
        var initial = State(configured: contracts, terms: terms, known: known, channels: alertChannels)
        Self.build(&initial, prefix: helpdeskPrefix)
        state = Mutex(initial)
    }

    public var contracts: [Contract] { state.withLock { $0.contracts } }
    /// Grows with every change of the contracts: a reader that kept something worked out from them knows it is current.
    public var version: Int { state.withLock { $0.version } }
    public var alertChannels: AlertChannels { state.withLock { $0.channels } }
    public var terms: HelpdeskContractTerms { state.withLock { $0.terms } }
    /// The helpdesk's contracts as last read, with the day each was seen ended.
    public var knownHelpdeskContracts: [KnownHelpdeskContract] { state.withLock { $0.known } }
    /// The ids of the contracts in force that were built from the helpdesk's.
    public var helpdeskContractIDs: [String] { state.withLock { $0.built } }
    /// Helpdesk contracts that are not billed here, and why (no terms for their type, no start date…).
    public var skippedHelpdeskContracts: [(id: Int, reason: String)] { state.withLock { $0.skipped } }

    public func contract(_ id: String?) -> Contract? {
        guard let id else { return nil }
        return state.withLock { $0.contracts.first { $0.id == id } }
    }

    /// The config part, on start and on reload; the terms too when given.
    public func replace(_ contracts: [Contract], alertChannels: AlertChannels? = nil, terms: HelpdeskContractTerms? = nil) {
        state.withLock { state in
            state.configured = contracts
            if let terms { state.terms = terms }
            if let alertChannels { state.channels = alertChannels }
            Self.build(&state, prefix: helpdeskPrefix)
            state.version += 1
        }
    }

    /// The helpdesk's contracts as a poll read them. True when the contracts in force changed.
    @discardableResult
    public func replaceHelpdeskContracts(_ known: [KnownHelpdeskContract]) -> Bool {
        state.withLock { state in
            guard state.known != known else { return false }
            let before = state.contracts
            state.known = known
            Self.build(&state, prefix: helpdeskPrefix)
            guard state.contracts != before else { return false }
            state.version += 1
            return true
        }
    }

    private static func build(_ state: inout State, prefix: String) {
        let built: (contracts: [Contract], skipped: [(id: Int, reason: String)]) = state.terms.isEmpty ? ([], []) : state.terms.contracts(from: state.known, prefix: prefix, linked: prefix == "glpi")
        let configuredIDs = Set(state.configured.map(\.id))
        let fromHelpdesk = built.contracts.filter { !configuredIDs.contains($0.id) }
        state.contracts = state.configured + fromHelpdesk
        state.built = fromHelpdesk.map(\.id)
        state.skipped = built.skipped
    }
}

/// Whether the ledger can be written right now. A full disk, a read-only remount or an I/O error makes every write
/// fail; the daemon then answers 503 with Retry-After (nothing is acknowledged that is not on disk) and `/healthz`
/// fails, until a write succeeds again.
public final class LedgerHealth: Sendable {
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

    public func noteFailure(_ error: LedgerUnavailable, at now: Date) {
        state.withLock { state in
            if state.failure == nil { state.since = now }
            state.failure = error.reason
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
}

/// The ledger's use cases: every workflow that reads or changes it, for the HTTP routes, the CLI and the workers
/// alike. Each runs in one transaction of the repository; after one that changed balances, carry-over and alerts are
/// settled here, whoever called.
public final class Ledger: Sendable {
    public let repository: any LedgerRepository
    public let book: ContractBook
    public let profile: HelpdeskProfile
    public let clock: WallClock
    /// Signalled by each commit that queued a write-back: the outbox worker wakes for it.
    public let outboxQueued = WakeSignal()
    /// Signalled by each commit that stored a webhook hint: the poller wakes for it.
    public let hintsArrived = WakeSignal()
    /// Signalled when a settlement fired alerts: the alert sender wakes for their deliveries.
    public let alertsFired = WakeSignal()
    public let health = LedgerHealth()
    let logger: Logger
    /// Contracts the last settlement could not settle (damaged stored figures), for `/status`.
    private let settlementFailures = Mutex<[ContractFailure]>([])
    /// Balances worked out by earlier reads, for as long as they hold.
    let keptBalances = KeptBalances()

    public init(repository: any LedgerRepository, profile: HelpdeskProfile, book: ContractBook, clock: WallClock = .system,
                logger: Logger = Logger(label: "hourledger.ledger")) {
        self.repository = repository
        self.profile = profile
        self.book = book
        self.clock = clock
        self.logger = logger
    }

    public var contracts: [Contract] { book.contracts }

    public var unsettledContracts: [ContractFailure] { settlementFailures.withLock { $0 } }

    func setUnsettled(_ failures: [ContractFailure]) -> [ContractFailure] {
        settlementFailures.withLock { state in
            let new = failures.filter { !state.contains($0) }
            state = failures
            return new
        }
    }

    /// Reads a consistent snapshot.
    public func read<T>(_ body: (any LedgerReader) throws -> T) throws -> T {
        try noting { try repository.read(body) }
    }

    /// One write transaction off the caller's thread; a storage failure is noted in `health`.
    /// Inside a leader's work (`Ledger.fence`), the transaction first checks that its term still leads.
    func write<T: Sendable>(_ body: @escaping @Sendable (any LedgerWriter) throws -> T) async throws -> T {
        let fence = Self.fence
        do {
            let value = try await repository.write { tx in
                try fence?.check(tx)
                return try body(tx)
            }
            health.noteSuccess()
            return value
        } catch let error as LedgerUnavailable {
            health.noteFailure(error, at: clock.now())
            throw error
        }
    }

    /// The same, blocking the caller: for the CLI and short writes.
    func writeNow<T>(_ body: (any LedgerWriter) throws -> T) throws -> T {
        let fence = Self.fence
        return try noting {
            let value = try repository.write { tx in
                try fence?.check(tx)
                return try body(tx)
            }
            health.noteSuccess()
            return value
        }
    }

    private func noting<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as LedgerUnavailable {
            health.noteFailure(error, at: clock.now())
            throw error
        }
    }

    /// Tries a one-row write (at most every five seconds) and records the outcome; returns the failure, if any.
    @discardableResult
    public func checkWritable() -> (reason: String, since: Date)? {
        if health.probeDue(interval: .seconds(5)) {
            let stamp = String(Int(clock.now().timeIntervalSince1970))
            _ = try? writeNow { try $0.setState("health.probe", stamp) }
        }
        return health.failure
    }

    public func state(_ key: String) throws -> String? { try read { try $0.state(key) } }

    public func setState(_ key: String, _ value: String) throws { try writeNow { try $0.setState(key, value) } }

    /// Makes everything durable and closes the store.
    public func close() throws { try repository.close() }
}
