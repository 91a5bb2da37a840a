import Foundation
import HourLedgerCore
import HourLedgerPostgres
import HourLedgerHTTPClient
import HourLedgerGLPI
import HourLedgerITop
import HourLedgerUseCases
import HourLedgerServer
import HourLedgerStore
import Hummingbird
import Logging
import Prometheus
import NIOCore
import ServiceLifecycle
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Everything a command needs, built from one configuration. Nothing here does I/O beyond opening the store.
public struct Runtime: Sendable {
    public let configuration: HourLedgerConfiguration
    /// Where the ledger is kept: the SQLite file of the configuration, unless another repository is given.
    public let repository: any LedgerRepository
    /// The use cases, on that store.
    public let ledger: Ledger
    public let connector: any HelpdeskPort
    /// Checks a person's own helpdesk login for the dashboard: the same connector, with their credentials.
    public let signIn: any HelpdeskSignIn
    public let engine: SyncEngine
    public let outbox: OutboxWorker
    public let alerts: AlertSender
    public let logger: Logger
    /// Where `/metrics` reads from; one per runtime, so tests do not share counters.
    public let registry: PrometheusCollectorRegistry
    public let metrics: PrometheusMetricsFactory
    /// Fed by the poller's loop and by every helpdesk answer; read by the watchdog.
    public let heartbeat = Heartbeat()
    /// Webhook secrets and limits in force; a reload replaces them.
    public let webhooks: WebhookSettingsBox
    public let deliveries: DeliveryRecorder
    /// The listener's connection cap and request-head timeout.
    public let connections: ConnectionLimits
    /// This process's part in a shared ledger: `single` on a SQLite file, leader or standby on PostgreSQL.
    public let leadership: LeadershipStatus

    public init(configuration: HourLedgerConfiguration, repository: (any LedgerRepository)? = nil, http: (any HTTPSending)? = nil, logger: Logger? = nil,
                clock: WallClock = .system) throws {
        var logger = logger ?? Logger(label: "hourledger")
        logger.logLevel = Logger.Level(rawValue: configuration.logLevel) ?? .info
        self.configuration = configuration
        self.logger = logger
        self.repository = try repository ?? openRepository(configuration)
        leadership = LeadershipStatus(role: self.repository is any LeaderLeases && configuration.postgres != nil ? .standby : .single)
        LogRedactor.shared.set(configuration.secretValues)
        registry = PrometheusCollectorRegistry()
        metrics = PrometheusMetricsFactory(registry: registry)
        // Each connection is a descriptor, and SQLite, libcurl and the notify socket need some of their own: the cap
        // stays below what the open-file limit allows, whatever the unit's LimitNOFILE.
        let files = raiseOpenFileLimit(toAtLeast: configuration.maxConnections + 256, logger: logger)
        connections = ConnectionLimits(maxConnections: max(16, min(configuration.maxConnections, files - 256)),
                                       requestHeadTimeout: .seconds(configuration.idleTimeoutSeconds), metrics: metrics)
        let settings = configuration.helpdesk
        webhooks = WebhookSettingsBox(Self.webhookSettings(settings))
        var httpConfiguration = HTTPClientConfiguration()
        httpConfiguration.connectTimeout = .seconds(settings.connectTimeoutSeconds)
        httpConfiguration.totalTimeout = .seconds(settings.timeoutSeconds)
        httpConfiguration.verifyTLS = settings.verifyTLS
        httpConfiguration.caBundlePath = settings.caBundle
        let heartbeat = heartbeat
        let client = MeasuredHTTPClient(http ?? CurlHTTPClient(configuration: httpConfiguration), helpdesk: settings.kind.rawValue, factory: metrics,
                                        onResponse: { heartbeat.beat() })
        let timeZone = TimeZone(identifier: settings.timeZone) ?? TimeZone(identifier: "UTC")!
        let helpdesk = Self.connector(settings, timeZone: timeZone, http: client, logger: logger)
        connector = helpdesk
        signIn = helpdesk
        ledger = Ledger(repository: self.repository, profile: connector.profile, book: contractBook(configuration), clock: clock, logger: logger)
        do {
            try ledger.loadHelpdeskContracts()
        } catch {
            logger.error("\(error)")
        }
        engine = SyncEngine(connector: connector, ledger: ledger, overlapSeconds: settings.overlapSeconds,
                            deletionCheckSeconds: settings.deletionCheckSeconds, logger: logger)
        deliveries = DeliveryRecorder(ledger: ledger, replayWindow: { [webhooks] in .seconds(webhooks.current.maxAgeSeconds) })
        outbox = OutboxWorker(ledger: ledger, helpdesk: connector, fenceSeconds: configuration.writeFenceSeconds, logger: logger)
        // Alert webhooks get a client of their own: their timeouts are theirs, not the helpdesk's.
        alerts = AlertSender(ledger: ledger, helpdesk: connector,
                             webhooks: AlertWebhookClient(http: http ?? CurlHTTPClient(configuration: HTTPClientConfiguration())),
                             targets: Self.targets(configuration.alerts), maxAttempts: configuration.alerts.maxAttempts,
                             fenceSeconds: configuration.writeFenceSeconds, logger: logger)
    }

    static func connector(_ settings: HelpdeskSettings, timeZone: TimeZone, http: any HTTPSending, logger: Logger) -> any HelpdeskPort & HelpdeskSignIn {
        switch (settings.kind, settings.credentials) {
        case (.itop, .password(let login, let password)):
            var configuration = ITopConfiguration(url: settings.url, login: login, password: password.value, timeZone: timeZone,
                                                  pageSize: settings.pageSize, classes: settings.classes,
                                                  personLookup: ITopPersonLookup(rawValue: settings.signInLookup) ?? .user)
            configuration.concurrency = settings.concurrency
            return ITopConnector(configuration: configuration, http: http, logger: logger)
        case (.itop, .userToken):
            preconditionFailure("the configuration refuses helpdesk.user_token for iTop")
        case (.glpi, let credentials):
            let glpiCredentials: GLPIConfiguration.Credentials
            switch credentials {
            case .userToken(let token): glpiCredentials = .userToken(token.value)
            case .password(let login, let password): glpiCredentials = .password(login: login, password: password.value)
            }
            var configuration = GLPIConfiguration(url: settings.url, appToken: settings.appToken?.value, credentials: glpiCredentials,
                                                  timeZone: timeZone, pageSize: settings.pageSize, concurrency: settings.concurrency,
                                                  taskCategory: settings.taskCategory)
            configuration.taskPageSize = settings.taskPageSize
            return GLPIConnector(configuration: configuration, http: http, logger: logger)
        }
    }

    static func webhookSettings(_ settings: HelpdeskSettings) -> WebhookSettings {
        WebhookSettings(helpdesk: settings.kind, secrets: settings.webhookSecrets, maxAgeSeconds: settings.webhookMaxAgeSeconds,
                        maxBodyBytes: settings.webhookMaxBodyBytes)
    }

    static func channels(_ settings: AlertSettings) -> AlertChannels {
        AlertChannels(webhooks: settings.webhooks.map(\.name), followup: settings.followup)
    }

    static func targets(_ settings: AlertSettings) -> [AlertTarget] {
        settings.webhooks.map { AlertTarget(name: $0.name, url: $0.url, secret: $0.secret?.value, timeout: .seconds($0.timeoutSeconds)) }
    }

    /// Asks the helpdesk to run each contract's query rule (narrowed to no ticket, so it costs nothing): a rule the
    /// helpdesk refuses is reported here, by contract, instead of silently matching nothing later.
    /// Each explicit link is read once too (a search by contract): a contract GLPI will not search by is named here.
    public func validateQueryRules() async -> [(contractID: String, key: String, error: String)] {
        var problems: [(contractID: String, key: String, error: String)] = []
        for contract in configuration.contracts {
            if let query = contract.match.query {
                do {
                    _ = try await connector.ticketIDs(matching: query, since: nil, among: [])
                } catch {
                    problems.append((contract.id, "match." + configuration.helpdesk.kind.queryRuleKey, "\(error)"))
                }
            }
            if let linked = contract.match.linkedContract {
                do {
                    _ = try await connector.ticketsLinked(toContract: linked)
                } catch {
                    problems.append((contract.id, "glpi_contract", "\(error)"))
                }
            }
        }
        return problems
    }

    /// The contracts the config's `helpdesk_contracts` terms make of what the helpdesk lists now, and why the others
    /// are not billed: what check-config shows before a daemon relies on it.
    public func previewHelpdeskContracts() async throws -> (contracts: [Contract], skipped: [(id: Int, reason: String)], listed: Int) {
        let listed = try await connector.helpdeskContracts()
        // A book of the helpdesk's contracts alone, built as the daemon's own is.
        let book = ContractBook([], terms: configuration.helpdeskContracts, known: KnownHelpdeskContract.merge([], listed: listed, now: Date()),
                                helpdesk: configuration.helpdesk.kind)
        return (book.contracts, book.skippedHelpdeskContracts, listed.count)
    }

    /// The helpdesk URL as safe to show: no user info, no query string.
    public var publicHelpdeskURL: String {
        guard var components = URLComponents(string: configuration.helpdesk.url) else { return "(invalid url)" }
        components.user = nil
        components.password = nil
        components.query = nil
        return components.string ?? "(invalid url)"
    }
}

/// Every route of the daemon, for the application and for the test that holds the OpenAPI document to them.
public func buildRouter(runtime: Runtime, startedAt: Date = Date()) -> Router<LedgerRequestContext> {
    let router = Router(context: LedgerRequestContext.self)
    router.add(middleware: LogRequestsMiddleware(.debug))
    router.add(middleware: failureMiddleware(ledger: runtime.ledger, logger: runtime.logger, metrics: runtime.metrics))
    let context = LedgerAPIContext(
        ledger: runtime.ledger, engine: runtime.engine, helpdeskKind: runtime.configuration.helpdesk.kind,
        helpdeskURL: runtime.publicHelpdeskURL, pollInterval: runtime.configuration.helpdesk.pollIntervalSeconds,
        startedAt: startedAt, version: HourLedgerVersion.current, writeFenceSeconds: runtime.configuration.writeFenceSeconds,
        leadership: runtime.leadership)
    LedgerRoutes.register(on: router, context: context)
    // Every route under /api/v1 needs a token: the middleware checks it once and puts the principal in the context.
    let api = router.group("/api/v1").add(middleware: TokenAuthentication(api: context))
    LedgerRoutes.registerAPI(on: api, context: context)
    OutboxRoutes.register(on: api, context: context)
    ReconciliationRoutes.register(on: api, context: context)
    WorkRoutes.register(on: api, context: context)
    BillingRoutes.register(on: api, context: context)
    WebhookRoutes.register(on: router, context: context, settings: runtime.webhooks, recorder: runtime.deliveries,
                           verifiers: [GLPIWebhookVerifier(), ITopWebhookVerifier()], metrics: runtime.metrics, logger: runtime.logger)
    MetricsRoutes.register(on: router, context: context, registry: runtime.registry)
    OpenAPIRoutes.register(on: router)
    if runtime.configuration.dashboard.enabled {
        var settings = runtime.configuration.dashboard
        settings.timeZone = TimeZone(identifier: runtime.configuration.helpdesk.timeZone) ?? settings.timeZone
        DashboardRoutes.register(on: router, dashboard: Dashboard(api: context, settings: settings, roles: runtime.configuration.roles,
                                                                  signIn: runtime.signIn, metrics: runtime.metrics))
    }
    return router
}

/// The HTTP application, kept apart from `main` so tests can drive it with `app.test(.router)`.
public func buildApplication(runtime: Runtime, startedAt: Date = Date(),
                             onServerRunning: @escaping @Sendable (_ port: Int?) async -> Void = { _ in }) -> some ApplicationProtocol {
    Application(
        router: buildRouter(runtime: runtime, startedAt: startedAt),
        server: runtime.connections.server,
        configuration: .init(address: .hostname(runtime.configuration.httpHost, port: runtime.configuration.httpPort),
                             serverName: "HourLedger/\(HourLedgerVersion.current)"),
        onServerRunning: { channel in await onServerRunning(channel.localAddress?.port) },
        logger: runtime.logger)
}

/// `hourledger serve`: the poller, the workers and the HTTP server under one ServiceGroup.
///
/// SIGTERM drains in reverse order of the list: systemd hears STOPPING=1, the server stops accepting and finishes
/// its requests, then the workers finish what they are doing (the outbox its current delivery), then the store is
/// closed. SIGHUP reloads `configPath`.
/// Raises the soft limit on open files to what the connection cap needs (up to the hard limit), so that idle sockets
/// meet the cap's 503 long before the descriptors run out. Returns the limit in force.
@discardableResult
/// Caps glibc's malloc at two arenas, before the process starts its threads. By default every thread that meets a
/// busy arena gets one of its own (up to eight per core), and the memory freed in each stays with it: a first sync
/// of 100,000 tickets peaked 14 MB lower with two. An operator's MALLOC_ARENA_MAX still wins.
public func limitMallocArenas() {
    #if os(Linux)
    // mallopt is in glibc but not in Swift's Glibc module; M_ARENA_MAX is -8 in <malloc.h>.
    guard ProcessInfo.processInfo.environment["MALLOC_ARENA_MAX"] == nil, let symbol = dlsym(nil, "mallopt") else { return }
    typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
    _ = unsafeBitCast(symbol, to: Mallopt.self)(-8, 2)
    #endif
}

public func raiseOpenFileLimit(toAtLeast needed: Int, logger: Logger) -> Int {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return needed }
    let wanted = rlim_t(needed)
    if limit.rlim_cur < wanted {
        limit.rlim_cur = min(wanted, limit.rlim_max)
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
    if limit.rlim_cur < wanted {
        logger.warning("the open-file limit is below what http.max_connections needs: the cap is lowered to fit (raise LimitNOFILE)",
                       metadata: ["limit": "\(limit.rlim_cur)", "needed": "\(needed)"])
    }
    return Int(limit.rlim_cur)
}

public func runDaemon(runtime: Runtime, configPath: String, notifier: SystemdNotifier = SystemdNotifier()) async throws {
    let poller = Poller(engine: runtime.engine, interval: .seconds(runtime.configuration.helpdesk.pollIntervalSeconds),
                        heartbeat: runtime.heartbeat, metrics: runtime.metrics, logger: runtime.logger)
    // The workers write to the ledger and the helpdesk; they start only once the port is bound, so a daemon that
    // cannot listen (the port is taken) exits having synced and written nothing.
    let listening = StartGate()
    let app = buildApplication(runtime: runtime, onServerRunning: { port in
        let listen = "\(runtime.configuration.httpHost):\(port ?? runtime.configuration.httpPort)"
        listening.open()
        notifier.notify("READY=1\nSTATUS=listening on \(listen)")
        runtime.logger.notice("ready", metadata: ["listen": "\(listen)"])
    })
    let watchdog = WatchdogService(notifier: notifier, interval: SystemdNotifier.watchdogInterval(), heartbeat: runtime.heartbeat,
                                   logger: runtime.logger) { await runtime.statusLine() }
    let reloader = ConfigReloader(path: configPath, runtime: runtime, webhooks: runtime.webhooks, notifier: notifier)
    let workers: [any Service] = [poller, runtime.outbox, runtime.alerts, PeriodRollover(ledger: runtime.ledger, logger: runtime.logger),
                                  TimerCap(ledger: runtime.ledger, maxRunningSeconds: runtime.configuration.maxRunningTimerSeconds, logger: runtime.logger),
                                  ScheduledReconciliation(engine: runtime.engine, everyHours: runtime.configuration.helpdesk.reconcileEveryHours,
                                                          logger: runtime.logger)]
    // On a shared ledger the workers run only while this process leads; it stands by, serving the API, meanwhile.
    let leading: [any Service]
    var watch: (any ChangeWatch)?
    if runtime.leadership.snapshot.role == .standby, let leases = runtime.repository as? any LeaderLeases {
        leading = [LeaderElection(leases: leases, holder: LeaderElection.holderName(command: "serve"), leaseSeconds: runtime.configuration.leaseSeconds,
                                  workers: workers, status: runtime.leadership, heartbeat: runtime.heartbeat, logger: runtime.logger)]
        // What the other processes queue (a webhook's hint, an entry's write-back) wakes this one's workers too.
        if let feed = runtime.repository as? any LedgerChangeFeed {
            let ledger = runtime.ledger
            watch = try feed.watchChanges { change in
                switch change {
                case .hints: ledger.hintsArrived.signal()
                case .outbox: ledger.outboxQueued.signal()
                case .alerts: ledger.alertsFired.signal()
                }
            }
        }
    } else {
        leading = workers
    }
    defer { watch?.stop() }
    let group = ServiceGroup(configuration: .init(
        services: leading.map { .init(service: GatedService($0, gate: listening)) }
            + [.init(service: reloader), .init(service: app), .init(service: watchdog)],
        gracefulShutdownSignals: [.sigterm, .sigint],
        logger: runtime.logger))
    runtime.logger.info("hourledger starting", metadata: [
        "version": "\(HourLedgerVersion.current)", "helpdesk": "\(runtime.publicHelpdeskURL)",
        "database": "\(runtime.configuration.ledgerDescription)", "contracts": "\(runtime.configuration.contracts.count)",
        "listen": "\(runtime.configuration.httpHost):\(runtime.configuration.httpPort)",
    ])
    do {
        try await group.run()
    } catch let error as IOError where error.errnoCode == EADDRINUSE || error.errnoCode == EACCES {
        try? runtime.repository.close()
        let listen = "\(runtime.configuration.httpHost):\(runtime.configuration.httpPort)"
        let cause = error.errnoCode == EADDRINUSE ? "the address is in use by another process" : "permission denied"
        throw DaemonError(description: "cannot listen on \(listen): \(cause); nothing was synced or written back "
                          + "(set http.port, or stop what listens there)")
    }
    try runtime.repository.close()
    runtime.logger.notice("stopped: store closed")
}

extension Runtime {
    /// Runs `body` as the leader of a shared ledger (`hourledger sync`), refused with `LeaderBusy` while a daemon
    /// leads it; on a SQLite file, whose owner lock the command already holds, it just runs.
    public func leadingOnce<T: Sendable>(command: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        guard leadership.snapshot.role == .standby, let leases = repository as? any LeaderLeases else { return try await body() }
        let election = LeaderElection(leases: leases, holder: LeaderElection.holderName(command: command), leaseSeconds: configuration.leaseSeconds,
                                      workers: [], status: leadership, heartbeat: heartbeat, logger: logger)
        return try await election.leadOnce(body)
    }
}

extension HourLedgerConfiguration {
    /// How long after an attempt a write-back may still land: the helpdesk's timeout and grace, and on a shared
    /// ledger the lease too (a leader may send up to a lease after its last renewal, see `LeaderLeases`).
    public var writeFenceSeconds: Int { helpdesk.writeFenceSeconds + (postgres == nil ? 0 : leaseSeconds) }
}

/// Why the daemon could not run, in one line for the operator.
public struct DaemonError: Error, CustomStringConvertible {
    public let description: String
}

extension Runtime {
    /// The one-line `STATUS=` systemd shows in `systemctl status`.
    func statusLine() async -> String {
        let sync = await engine.status
        let last = sync.lastSuccess.map { "last poll ok \($0.formatted(.iso8601))" } ?? "no successful poll yet"
        let failing = sync.consecutiveFailures > 0 ? ", \(sync.consecutiveFailures) failed in a row" : ""
        let outbox = (try? ledger.outboxStats().depth).map { ", outbox \($0)" } ?? ""
        let role = leadership.snapshot
        switch role.role {
        case .single: break
        case .leader: return "leader (term \(role.term ?? 0)), \(configuration.helpdesk.kind.rawValue): \(last)\(failing)\(outbox)"
        case .standby: return "standby (leader: \(role.lease?.holder ?? "none yet")), outbox \((try? ledger.outboxStats().depth) ?? 0)"
        }
        return "\(configuration.helpdesk.kind.rawValue): \(last)\(failing)\(outbox)"
    }
}

/// Opens once; everything waiting on it then goes on. Used to hold the workers until the HTTP port is bound.
public final class StartGate: Sendable {
    private let state = Mutex<(open: Bool, waiting: [UUID: CheckedContinuation<Void, Never>])>((false, [:]))

    public init() {}

    public func open() {
        let waiting = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.open = true
            defer { state.waiting = [:] }
            return Array(state.waiting.values)
        }
        for continuation in waiting { continuation.resume() }
    }

    public var isOpen: Bool { state.withLock { $0.open } }

    /// Returns once the gate is open, or at once when the task is cancelled (check `isOpen`).
    public func wait() async {
        let id = UUID()
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let now = state.withLock { state -> Bool in
                    if state.open || Task.isCancelled { return true }
                    state.waiting[id] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiting.removeValue(forKey: id) }?.resume()
        }
    }
}

/// A service that starts its work only once `gate` opens; a shutdown before that ends it having done nothing.
struct GatedService: Service {
    let inner: any Service
    let gate: StartGate

    init(_ inner: any Service, gate: StartGate) {
        self.inner = inner
        self.gate = gate
    }

    func run() async throws {
        try? await cancelWhenGracefulShutdown { await gate.wait() }
        guard gate.isOpen, !Task.isCancelled, !Task.isShuttingDownGracefully else { return }
        try await inner.run()
    }
}

extension HelpdeskSettings {
    /// What the use cases know of the configured helpdesk, without connecting to it.
    public var profile: HelpdeskProfile { kind == .itop ? ITopConnector.itopProfile : GLPIConnector.glpiProfile }
}

/// The ledger of `configuration` with its use cases, for commands that neither poll nor deliver.
public func openLedger(_ configuration: HourLedgerConfiguration, clock: WallClock = .system) throws -> Ledger {
    let ledger = Ledger(repository: try openRepository(configuration), profile: configuration.helpdesk.profile,
                        book: contractBook(configuration), clock: clock)
    try ledger.loadHelpdeskContracts()
    return ledger
}

/// The configured store: SQLite's file, or PostgreSQL (its errors in the operator's words, as SQLite's are).
public func openRepository(_ configuration: HourLedgerConfiguration) throws -> any LedgerRepository {
    guard let location = configuration.postgres else { return try SQLiteLedger(path: configuration.databasePath) }
    do {
        // A write paused longer than a lease (SIGSTOP, a frozen VM) is ended by the server, so it cannot hold the
        // write lock that the standby's claim needs.
        return try PostgresLedger(location: location, writeIdleSeconds: configuration.leaseSeconds)
    } catch {
        throw StoreError(description: "cannot open the ledger on \(location.description): \(error)")
    }
}

/// Where the ledger is, for logs and `/status`: the file, or the server without its password.
extension HourLedgerConfiguration {
    public var ledgerDescription: String { postgres?.description ?? databasePath }
}

/// The config's contracts and the terms for the helpdesk's; the helpdesk's contracts themselves come from the ledger.
func contractBook(_ configuration: HourLedgerConfiguration) -> ContractBook {
    ContractBook(configuration.contracts, alertChannels: Runtime.channels(configuration.alerts), terms: configuration.helpdeskContracts,
                 helpdesk: configuration.helpdesk.kind)
}

extension HelpdeskKind {
    /// The config key of a contract's query rule on this helpdesk, for messages that name it.
    var queryRuleKey: String { self == .itop ? "oql" : "glpi_criteria" }
}
