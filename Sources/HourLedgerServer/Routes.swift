import Foundation
import HourLedgerCore
import HourLedgerUseCases
import Hummingbird

/// What the HTTP layer reads: the ledger, the poller's state and the contracts in force.
public struct LedgerAPIContext: Sendable {
    public var ledger: Ledger
    public var engine: SyncEngine
    public var helpdeskKind: HelpdeskKind
    /// The helpdesk URL without credentials, for ops.
    public var helpdeskURL: String
    public var pollInterval: Int
    public var startedAt: Date
    public var version: String
    /// Seconds after a write-back attempt during which it may still land (see `OutboxWorker`).
    public var writeFenceSeconds: Int
    /// Where long reads run, off the threads `/healthz` and the webhooks need.
    public var reads: ReadPool
    /// This process's part in a shared ledger: a standby does not poll, so its health does not ask for fresh polls.
    public var leadership: LeadershipStatus
    /// The balances' JSON as the contract list and `/status` last wrote it.
    public let balanceJSON = BalanceJSON.Kept()

    public init(ledger: Ledger, engine: SyncEngine, helpdeskKind: HelpdeskKind, helpdeskURL: String, pollInterval: Int,
                startedAt: Date = Date(), version: String, writeFenceSeconds: Int = 120, reads: ReadPool = .shared,
                leadership: LeadershipStatus = LeadershipStatus()) {
        self.reads = reads
        self.leadership = leadership
        self.writeFenceSeconds = writeFenceSeconds
        self.ledger = ledger
        self.engine = engine
        self.helpdeskKind = helpdeskKind
        self.helpdeskURL = helpdeskURL
        self.pollInterval = pollInterval
        self.startedAt = startedAt
        self.version = version
    }

    /// The API's clock: which period is "current", what is month-to-date. The ledger's, so tests set one clock.
    public func clock() -> Date { ledger.clock.now() }
}

/// Encodes API answers: snake_case keys from the types, stable key order, ISO 8601 dates.
enum JSONBody {
    static func encode(_ value: some Encodable) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return try encoder.encode(value)
    }

    static func response(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        written(ByteBuffer(bytes: try encode(value)), status: status)
    }

    /// JSON already written, such as `BalanceJSON`'s.
    static func written(_ json: ByteBuffer, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: json))
    }

    /// `/status` with its contracts as `BalanceJSON` wrote them (`contracts`, at indent 1): the rest is encoded with
    /// an empty list, which is then replaced. The same bytes as encoding it whole.
    static func status(_ body: StatusBody, contracts: [UInt8]) throws -> Response {
        precondition(body.contracts.isEmpty, "the contracts come written")
        let text = [UInt8](try encode(body))
        let empty = Array("\n  \"contracts\" : [\n\n  ]".utf8)
        guard let start = text.firstRange(of: empty) else { throw LedgerStoreError("/status: no place for the contracts in the encoded body") }
        var buffer = ByteBuffer()
        buffer.reserveCapacity(text.count + contracts.count + 32)
        buffer.writeBytes(text[..<start.lowerBound])
        buffer.writeString("\n  \"contracts\" : ")
        buffer.writeBytes(contracts)
        buffer.writeBytes(text[start.upperBound...])
        return written(buffer)
    }

    static func error(_ status: HTTPResponse.Status, _ message: String, field: String? = nil) throws -> Response {
        try response(APIError(error: message, field: field), status: status)
    }
}

struct APIError: Codable {
    var error: String
    var field: String?
}

public enum LedgerRoutes {
    /// The public routes ops and systemd read.
    public static func register<Context: RequestContext>(on router: Router<Context>, context api: LedgerAPIContext) {
        router.get("/healthz") { _, _ in try await health(api) }
        router.get("/status") { _, _ in try await status(api) }
    }

    /// Balances and ticket titles are customer data: on the authenticated API group (`/api/v1`).
    public static func registerAPI(on router: some RouterMethods<LedgerRequestContext>, context api: LedgerAPIContext) {
        router.get("contracts") { request, _ in
            try await WorkRoutes.handle {
                let now = api.clock()
                let (bytes, failures) = try await api.reads.run { try api.balanceJSON.current(api.ledger, at: now) }
                if let first = failures.first { throw LedgerStoreError(first.error) }
                return JSONBody.written(ByteBuffer(bytes: bytes))
            }
        }
        router.get("contracts/{id}") { request, context in
            try await WorkRoutes.handle {
                return try await contractDetail(id: try context.parameters.require("id"), at: request.uri.queryParameters.get("at").map { String($0) }, api)
            }
        }
        router.get("unmatched") { request, _ in
            try await WorkRoutes.handle {
                return try JSONBody.response(try await api.reads.run { try api.ledger.unmatchedTickets() })
            }
        }
    }

    /// One contract's balance at `at` (default now) with its tickets, every stored period and its recent alerts.
    static func contractDetail(id: String, at: String?, _ api: LedgerAPIContext) async throws -> Response {
        guard let contract = api.ledger.book.contract(id) else {
            throw APIFailure(.notFound, "no contract with id '\(id)'", field: "id")
        }
        let now = api.clock()
        var instant = now
        if let at {
            guard let date = Timestamp.parse(at) else {
                throw APIFailure(.badRequest, "'at' must be an RFC 3339 date-time, e.g. 2026-11-01T00:00:00Z", field: "at")
            }
            // A period of the contract's term up to a year ahead: the walk to a far period would cost seconds.
            guard date >= contract.starts.startOfDay(in: contract.calendar), date <= now.addingTimeInterval(366 * 86_400) else {
                throw APIFailure(.badRequest, "'at' must lie between the contract's start (\(contract.starts)) and a year from now", field: "at")
            }
            instant = date
        }
        let chosen = instant
        let detail = try await api.reads.run { () -> ContractDetail? in
            guard let row = try api.ledger.balance(of: contract, at: chosen, now: now) else { return nil }
            let tickets = try api.ledger.ticketBreakdown(contractID: id, periodKey: row.periodKey)
            let periods = try api.ledger.balances(of: contract, now: now).map { ContractBalance(contract: contract, row: $0, now: now) }
            return ContractDetail(balance: ContractBalance(contract: contract, row: row, now: now), tickets: tickets, periods: periods,
                                  alerts: try api.ledger.alerts(contractID: id, limit: 20))
        }
        guard let detail else { throw APIFailure(.notFound, "contract '\(id)' has no period at \(instant)", field: "at") }
        return try JSONBody.response(detail)
    }

    static func health(_ api: LedgerAPIContext) async throws -> Response {
        let status = await api.engine.status
        var problems: [String] = []
        // Readable, and writable: a full disk fails health until a write succeeds again (probed every few seconds).
        do { _ = try api.ledger.state("health.probe") } catch { problems.append("store unreadable: \(error)") }
        if let failure = api.ledger.checkWritable() {
            problems.append("store cannot write since \(ISO8601DateFormatter().string(from: failure.since)): \(failure.reason)")
        }
        // Unhealthy once the helpdesk has not been read for three poll intervals (or never, after three failures);
        // a standby does not read it, and is healthy while its store is.
        let stale = max(3 * api.pollInterval, 180)
        if api.leadership.leads, let last = status.lastSuccess {
            let age = api.clock().timeIntervalSince(last)
            if age > Double(stale) { problems.append("no successful poll for \(Int(age)) s") }
        } else if api.leadership.leads, status.consecutiveFailures >= 3 {
            problems.append("helpdesk never reached: \(status.lastError ?? "unknown error")")
        }
        return try JSONBody.response(Health(ok: problems.isEmpty, problems: problems), status: problems.isEmpty ? .ok : .serviceUnavailable)
    }

    static func status(_ api: LedgerAPIContext) async throws -> Response {
        let sync = await api.engine.status
        let (body, contracts) = try await api.reads.run { try statusBody(api, sync: sync) }
        return try JSONBody.status(body, contracts: contracts)
    }

    /// The body without its contracts, and the contracts' JSON at the body's indent.
    static func statusBody(_ api: LedgerAPIContext, sync: SyncStatus) throws -> (StatusBody, [UInt8]) {
        let counts = try api.ledger.counts()
        let now = api.clock()
        let (contracts, failures) = try api.balanceJSON.current(api.ledger, at: now, indent: 1)
        return (StatusBody(
            version: api.version,
            uptimeSeconds: Int(now.timeIntervalSince(api.startedAt)),
            leadership: api.leadership.snapshot,
            helpdesk: .init(kind: api.helpdeskKind.rawValue, url: api.helpdeskURL, reachable: sync.reachable,
                            lastSuccessfulPoll: sync.lastSuccess, lastAttempt: sync.lastAttempt,
                            pollLagSeconds: sync.lastSuccess.map { Int(now.timeIntervalSince($0)) },
                            pollIntervalSeconds: api.pollInterval, lastError: sync.lastError,
                            consecutiveFailures: sync.consecutiveFailures, lastSync: sync.lastReport, ruleErrors: sync.ruleFailures,
                            syncProgress: sync.progress, helpdeskContracts: sync.helpdeskContracts),
            ticketsSeen: counts.tickets, unmatchedTickets: counts.unmatched, entries: counts.entries,
            failingTickets: try api.ledger.ticketFailures(limit: 50),
            outbox: try api.ledger.outboxStats(now: now),
            parkedWriteBacks: try api.ledger.outboxItems(parkedOnly: true, limit: 20).map(ParkedWriteBack.init),
            alerts: .init(recent: try api.ledger.alerts(limit: 20), deliveries: try api.ledger.alertDeliveryStats()),
            contracts: [], contractErrors: failures), contracts)
    }
}

struct Health: Codable {
    var ok: Bool
    var problems: [String]
}

struct StatusBody: Codable {
    struct Helpdesk: Codable {
        var kind: String
        var url: String
        var reachable: Bool?
        var lastSuccessfulPoll: Date?
        var lastAttempt: Date?
        var pollLagSeconds: Int?
        var pollIntervalSeconds: Int
        var lastError: String?
        var consecutiveFailures: Int
        var lastSync: SyncReport?
        /// Query rules the helpdesk refused at the last poll, by contract.
        var ruleErrors: [ContractFailure]
        /// While a long poll (a first sync) runs: its phase, done of total, rate and time left.
        var syncProgress: SyncProgress?
        /// The helpdesk's own contracts, when the config gives terms for them: how many it lists, which are billed.
        var helpdeskContracts: HelpdeskContractsStatus?
        enum CodingKeys: String, CodingKey {
            case kind, url, reachable
            case syncProgress = "sync_progress"
            case helpdeskContracts = "helpdesk_contracts"
            case ruleErrors = "rule_errors"
            case lastSuccessfulPoll = "last_successful_poll", lastAttempt = "last_attempt", pollLagSeconds = "poll_lag_seconds"
            case pollIntervalSeconds = "poll_interval_seconds", lastError = "last_error", consecutiveFailures = "consecutive_failures"
            case lastSync = "last_sync"
        }
    }
    var version: String
    var uptimeSeconds: Int
    /// `single`, `leader` or `standby`, with the lease as this process last saw it.
    var leadership: LeadershipStatus.Snapshot
    var helpdesk: Helpdesk
    var ticketsSeen: Int
    var unmatchedTickets: Int
    var entries: Int
    /// Tickets the helpdesk would not let the daemon read; each is read again at every poll.
    var failingTickets: [TicketFailureRecord]
    var outbox: OutboxStats
    /// Write-backs the helpdesk refused for good: a manager retries or discards them (`/api/v1/outbox`).
    var parkedWriteBacks: [ParkedWriteBack]
    var alerts: Alerts
    var contracts: [ContractBalance]
    /// Contracts whose balance could not be worked out, each with why.
    var contractErrors: [ContractFailure]
    struct Alerts: Codable {
        var recent: [AlertRecord]
        var deliveries: AlertDeliveryStats
    }
    enum CodingKeys: String, CodingKey {
        case version, helpdesk, entries, contracts, outbox, alerts, leadership
        case uptimeSeconds = "uptime_seconds", ticketsSeen = "tickets_seen", unmatchedTickets = "unmatched_tickets"
        case contractErrors = "contract_errors", parkedWriteBacks = "parked_write_backs", failingTickets = "failing_tickets"
    }
}

struct ParkedWriteBack: Codable {
    var id: Int64
    var entryKey: String
    var action: String
    var ticketID: Int
    var parkedAt: Date?
    var error: String?

    init(_ item: OutboxItem) {
        id = item.id
        entryKey = item.entryKey
        action = item.action.rawValue
        ticketID = item.ticketID
        parkedAt = item.parkedAt
        error = item.lastError
    }

    enum CodingKeys: String, CodingKey {
        case id, action, error
        case entryKey = "entry_key", ticketID = "ticket_id", parkedAt = "parked_at"
    }
}



struct ContractDetail: Codable {
    var balance: ContractBalance
    var tickets: [TicketUsage]
    var periods: [ContractBalance]
    var alerts: [AlertRecord]
}

