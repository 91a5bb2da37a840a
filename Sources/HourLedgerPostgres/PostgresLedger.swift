import Foundation
import HourLedgerCore
import HourLedgerUseCases
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PostgresNIO

/// Where a PostgreSQL ledger is: the server, the role, the database and the schema its tables live in.
public struct PostgresLocation: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var user: String
    /// Read from `password_file` or the environment, never from the config's text.
    public var password: String?
    public var database: String
    public var schema: String
    /// `require` refuses a server without TLS; `disable` speaks plain TCP (loopback, a private network).
    public var tls: TLSMode
    /// The CA certificates (PEM) the server's certificate must chain to (`sslrootcert`), for a private CA; without it,
    /// the system's trust store. The server's name (or IP address) must match its certificate either way.
    public var caFile: String?

    public enum TLSMode: String, Sendable { case disable, prefer, require }

    public init(host: String, port: Int = 5432, user: String, password: String?, database: String, schema: String = "public",
                tls: TLSMode = .prefer, caFile: String? = nil) {
        self.caFile = caFile
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.schema = schema
        self.tls = tls
    }

    /// `postgres://user@host:port/database?schema=x&sslmode=disable`. A password in the URL is refused: it would end
    /// up in the config file, the process list and the logs.
    public init(url: String, password: String?) throws {
        guard let components = URLComponents(string: url), ["postgres", "postgresql"].contains(components.scheme ?? ""),
              let host = components.host, !host.isEmpty
        else { throw PostgresConfigError("database.url must look like postgres://USER@HOST:PORT/DATABASE, not \(url)") }
        guard components.password == nil else {
            throw PostgresConfigError("database.url holds a password: give it in database.password_file or HOURLEDGER_DATABASE_PASSWORD instead")
        }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty, !database.contains("/") else { throw PostgresConfigError("database.url names no database: \(url)") }
        let port = components.port ?? 5432
        guard (1...65_535).contains(port) else { throw PostgresConfigError("database.url's port \(port) is out of range") }
        var schema = "public", tls = TLSMode.prefer, caFile: String?
        for item in components.queryItems ?? [] {
            switch item.name {
            case "schema":
                guard let value = item.value, value.range(of: "^[a-z_][a-z0-9_]{0,62}$", options: .regularExpression) != nil else {
                    throw PostgresConfigError("database.url's schema must be a lower-case SQL name, not \(item.value ?? "")")
                }
                schema = value
            case "sslmode":
                guard let value = item.value, let mode = TLSMode(rawValue: value) else {
                    throw PostgresConfigError("database.url's sslmode must be disable, prefer or require, not \(item.value ?? "")")
                }
                tls = mode
            case "sslrootcert":
                guard let value = item.value, value.hasPrefix("/") else {
                    throw PostgresConfigError("database.url's sslrootcert must be an absolute path to a PEM file, not \(item.value ?? "")")
                }
                guard FileManager.default.isReadableFile(atPath: value) else {
                    throw PostgresConfigError("database.url's sslrootcert \(value) cannot be read")
                }
                caFile = value
            default:
                throw PostgresConfigError("database.url: unknown parameter \(item.name) (known: schema, sslmode, sslrootcert)")
            }
        }
        if caFile != nil, tls == .disable { throw PostgresConfigError("database.url: sslrootcert needs sslmode prefer or require") }
        self.init(host: host, port: port, user: components.user ?? "hourledger", password: password, database: database, schema: schema,
                  tls: tls, caFile: caFile)
    }

    /// For logs and `/status`: never the password.
    public var description: String { "postgres://\(user)@\(host):\(port)/\(database)?schema=\(schema)" }
}

public struct PostgresConfigError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The ledger on PostgreSQL. Every use-case transaction is one PostgreSQL transaction. Writes are serialised, as
/// SQLite's are, by a transaction-level advisory lock of this schema: several processes on one database never
/// interleave two ledger changes, so a contract's books chain and balance revisions stay in commit order. Reads run
/// on their own connections in `REPEATABLE READ` snapshots and never wait for a write.
public final class PostgresLedger: LedgerRepository, @unchecked Sendable {
    public let location: PostgresLocation
    let logger: Logger
    private let group: any EventLoopGroup
    /// The writing connection; the lock is held for a whole write transaction, as GRDB's writer queue is.
    private let writerLock = NIOLock()
    private var writer: Session?
    private let idleLock = NIOLock()
    private var idleReaders: [Session] = []
    private let readerSlots = DispatchSemaphore(value: 8)
    private let writeQueue = DispatchQueue(label: "hourledger.postgres.writer")
    let closed = NIOLockedValueBox(false)
    /// The lease's own connection (`LeaderLeases`): a renewal never waits behind a long write of this process.
    let leaseLock = NIOLock()
    var leaseSession: Session?
    /// Tells this process's own notifications from the others'.
    let instance = UUID().uuidString
    /// How long a write transaction may wait for its next statement before the server ends it (and its session).
    /// A process paused in the middle of a write (SIGSTOP, a frozen VM) holds the ledger's write lock, which every
    /// other process's writes and the standby's claim need; it is set to the lease, which such a pause costs anyway.
    let writeIdleSeconds: Int

    /// The advisory lock's first key: HourLedger's ledger writes (the second key is the schema's hash).
    static let writeLockClass = 0x484C_0001

    /// Connects, creates the schema if needed and runs pending migrations (under the write lock, so two processes
    /// starting at once migrate once).
    public init(location: PostgresLocation, logger: Logger = Logger(label: "hourledger.postgres"), writeIdleSeconds: Int = 6) throws {
        self.location = location
        self.logger = logger
        self.writeIdleSeconds = writeIdleSeconds
        group = MultiThreadedEventLoopGroup.singleton
        try Self.mapped {
            try withWriter { session in
                try session.transaction("BEGIN") {
                    try session.execute("SELECT pg_advisory_xact_lock(\(unescaped: String(Self.writeLockClass)), hashtext(current_schema()))")
                    try PostgresSchema.migrate(session)
                    try PostgresSchema.createLease(session)
                    try PostgresTransaction.openBooks(session)
                }
            }
        }
    }

    // MARK: Transactions

    public func read<T>(_ body: (any LedgerReader) throws -> T) throws -> T {
        try Self.mapped {
            try withReader { session in
                try session.transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") { try body(PostgresTransaction(session: session)) }
            }
        }
    }

    public func write<T>(_ body: (any LedgerWriter) throws -> T) throws -> T {
        try Self.mapped {
            try withWriter { session in
                try session.transaction("BEGIN") {
                    try session.execute("SELECT pg_advisory_xact_lock(\(unescaped: String(Self.writeLockClass)), hashtext(current_schema()))")
                    let transaction = PostgresTransaction(session: session)
                    let value = try body(transaction)
                    try transaction.flushBook()
                    try transaction.notifyChanges(channel: changeChannel, from: instance)
                    return value
                }
            }
        }
    }

    public func write<T: Sendable>(_ body: @escaping @Sendable (any LedgerWriter) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            writeQueue.async {
                continuation.resume(with: Result { try self.write(body) })
            }
        }
    }

    /// A ledger let go without `close()` (a test, a failed start) still closes its connections.
    deinit { try? close() }

    public func close() throws {
        closed.withLockedValue { $0 = true }
        let sessions: [Session] = writerLock.withLock { defer { writer = nil }; return writer.map { [$0] } ?? [] }
            + idleLock.withLock { defer { idleReaders = [] }; return idleReaders }
            + leaseLock.withLock { defer { leaseSession = nil }; return leaseSession.map { [$0] } ?? [] }
        for session in sessions { session.close() }
    }

    /// Runs raw SQL on the writing connection outside any ledger transaction: for tests that edit rows by hand, and
    /// for `migrate` which copies a whole ledger in one transaction of its own.
    public func withWritingSession<T>(_ body: (Session) throws -> T) throws -> T {
        try Self.mapped { try withWriter(body) }
    }

    private func withWriter<T>(_ body: (Session) throws -> T) throws -> T {
        try writerLock.withLock {
            guard !closed.withLockedValue({ $0 }) else { throw LedgerStoreError("the ledger was closed") }
            let session = try writer ?? connect(idleInTransactionSeconds: writeIdleSeconds)
            writer = session
            do {
                return try body(session)
            } catch {
                if session.isBroken { writer = nil; session.close() }
                throw error
            }
        }
    }

    private func withReader<T>(_ body: (Session) throws -> T) throws -> T {
        readerSlots.wait()
        defer { readerSlots.signal() }
        guard !closed.withLockedValue({ $0 }) else { throw LedgerStoreError("the ledger was closed") }
        let session = try idleLock.withLock { idleReaders.popLast() } ?? connect()
        do {
            let value = try body(session)
            idleLock.withLock { idleReaders.append(session) }
            return value
        } catch {
            if session.isBroken { session.close() } else { idleLock.withLock { idleReaders.append(session) } }
            throw error
        }
    }

    func connectionConfiguration(timeout: TimeAmount) throws -> PostgresConnection.Configuration {
        var configuration = PostgresConnection.Configuration(host: location.host, port: location.port, username: location.user,
                                                             password: location.password, database: location.database, tls: .disable)
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caFile = location.caFile { tls.trustRoots = .file(caFile) }
        switch location.tls {
        case .disable: break
        case .prefer: configuration.tls = .prefer(try .init(configuration: tls))
        case .require: configuration.tls = .require(try .init(configuration: tls))
        }
        configuration.options.connectTimeout = timeout
        return configuration
    }

    /// A new connection with the schema as search path. `timeout` bounds both the connect and each statement's wait
    /// for a lock (the lease's connection gives up in seconds, so a leader learns in time that it cannot renew).
    func connect(timeout: TimeAmount = .seconds(10), lockTimeoutSeconds: Int = 30, statementTimeoutSeconds: Int = 300,
                 idleInTransactionSeconds: Int = 0) throws -> Session {
        guard !closed.withLockedValue({ $0 }) else { throw LedgerStoreError("the ledger was closed") }
        let loop = group.next()
        let connecting = PostgresConnection.connect(on: loop, configuration: try connectionConfiguration(timeout: timeout),
                                                    id: Self.connectionIDs.withLockedValue { $0 += 1; return $0 }, logger: logger)
        // The TCP connect has its own timeout; this bounds the whole handshake, which a server cut off mid-way never
        // answers. A connection that comes up after all is closed at once.
        let connection = try Session.within(timeout + timeout, on: loop, connecting, late: { let closing: EventLoopFuture<Void> = $0.close(); _ = closing }, what: "connecting")
        let session = Session(connection: connection, logger: logger, queryTimeout: .seconds(Int64(statementTimeoutSeconds + min(5, statementTimeoutSeconds))))
        do {
            try setUp(session, lockTimeoutSeconds: lockTimeoutSeconds, statementTimeoutSeconds: statementTimeoutSeconds)
            if idleInTransactionSeconds > 0 {
                try session.execute(PostgresQuery(unsafeSQL: "SET idle_in_transaction_session_timeout = '\(idleInTransactionSeconds)s'"))
            }
        } catch {
            session.close()
            throw error
        }
        return session
    }

    private func setUp(_ session: Session, lockTimeoutSeconds: Int, statementTimeoutSeconds: Int) throws {
        try session.execute(PostgresQuery(unsafeSQL: "CREATE SCHEMA IF NOT EXISTS \(location.schema)"))
        try session.execute(PostgresQuery(unsafeSQL: "SET search_path TO \(location.schema)"))
        // A write that waits longer than this for the lock or a row is refused rather than hanging its caller.
        try session.execute(PostgresQuery(unsafeSQL: "SET lock_timeout = '\(lockTimeoutSeconds)s'"))
        try session.execute(PostgresQuery(unsafeSQL: "SET statement_timeout = '\(statementTimeoutSeconds)s'"))
    }

    static let connectionIDs = NIOLockedValueBox(0)

    // MARK: Errors

    static func mapped<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch { throw unavailable(error) ?? described(error) }
    }

    /// PostgresNIO hides a server error's words from `description`; the ledger's callers and logs need them (they
    /// hold SQL and the offending row's key, never a password).
    static func described(_ error: any Error) -> any Error {
        guard let error = error as? PSQLError else { return error }
        let state = error.serverInfo?[.sqlState] ?? "-"
        let message = error.serverInfo?[.message] ?? "\(error.code)"
        let detail = error.serverInfo?[.detail].map { " (\($0))" } ?? ""
        return LedgerStoreError("PostgreSQL refused the change: \(message)\(detail) [SQLSTATE \(state)]"
                                + (error.query.map { " in: \($0.sql.prefix(200))" } ?? ""))
    }

    /// The errors that mean the ledger cannot be reached or written at all, as opposed to a bad request or a bug.
    static func unavailable(_ error: any Error) -> LedgerUnavailable? {
        if let error = error as? LedgerUnavailable { return error }
        if error is NIOConnectionError || error is ChannelError || error is IOError {
            return LedgerUnavailable(reason: "the database cannot be reached", detail: "\(error)")
        }
        guard let error = error as? PSQLError else { return nil }
        // A refused TLS handshake says why (an unknown CA, a name that does not match) only in the underlying error.
        let detail = error.serverInfo?[.message] ?? error.underlying.map { "\(error.code): \(String(describing: $0))" } ?? "\(error.code)"
        switch error.code {
        case .connectionError, .serverClosedConnection, .uncleanShutdown, .clientClosedConnection:
            return LedgerUnavailable(reason: "the database cannot be reached", detail: detail)
        case .server:
            let state = error.serverInfo?[.sqlState] ?? ""
            switch state {
            case "53100": return LedgerUnavailable(reason: "the database's disk is full", detail: detail)
            case "25006": return LedgerUnavailable(reason: "the database is read-only (a standby server?)", detail: detail)
            case "57P01", "57P02", "57P03", "08000", "08003", "08006":
                return LedgerUnavailable(reason: "the database is shutting down or starting", detail: detail)
            case "28P01", "28000": return LedgerUnavailable(reason: "the database refused the sign-in", detail: detail)
            case "3D000": return LedgerUnavailable(reason: "the database does not exist", detail: detail)
            default: return nil
            }
        default:
            return nil
        }
    }
}

/// One connection, used by one transaction at a time. Calls block their thread until PostgreSQL answers: the
/// repository's protocol is synchronous, as SQLite's is; the answer arrives on NIO's own threads.
public final class Session: @unchecked Sendable {
    let connection: PostgresConnection
    let logger: Logger
    /// How long a statement may wait for its answer: the server's `statement_timeout` and a margin. An answer that
    /// never comes (the server cut off by the network) fails the call then, and the connection is dropped.
    let queryTimeout: TimeAmount
    private(set) var isBroken = false

    /// Fails the statement waiting when the connection closes.
    let closing = ClosingWatch()

    init(connection: PostgresConnection, logger: Logger, queryTimeout: TimeAmount = .seconds(305)) {
        self.connection = connection
        self.logger = logger
        self.queryTimeout = queryTimeout
        let closing = self.closing, loop = connection.eventLoop
        // A moment's grace first: the server's own error (sent before it hangs up) is the better one to report.
        connection.closeFuture.whenComplete { _ in loop.scheduleTask(in: .milliseconds(50)) { closing.closed() } }
    }

    /// `future`'s value, or a timeout error after `timeout`; a value that comes too late is handed to `late`.
    /// `onClose` is its connection's: PostgresNIO never answers a statement sent on a connection the server has just
    /// ended (an idle-in-transaction timeout, a restart), so the connection's close fails the wait too.
    static func within<T: Sendable>(_ timeout: TimeAmount, on loop: any EventLoop, _ future: EventLoopFuture<T>,
                                    onClose: ClosingWatch? = nil,
                                    late: @escaping @Sendable (T) -> Void = { _ in }, what: String) throws -> T {
        let promise = loop.makePromise(of: T.self)
        let settled = NIOLockedValueBox(false)
        @Sendable func settle() -> Bool { settled.withLockedValue { done in defer { done = true }; return !done } }
        let timer = loop.scheduleTask(in: timeout) {
            if settle() { promise.fail(LedgerUnavailable(reason: "the database did not answer in time", detail: "\(what): no answer within \(timeout)")) }
        }
        onClose?.watch {
            if settle() { timer.cancel(); promise.fail(LedgerUnavailable(reason: "the database closed the connection", detail: "\(what): the connection closed before its answer")) }
        }
        defer { onClose?.watch(nil) }
        future.whenComplete { result in
            timer.cancel()
            guard settle() else {
                if case .success(let value) = result { late(value) }
                return
            }
            promise.completeWith(result)
        }
        return try promise.futureResult.wait()
    }

    func close() { _ = try? connection.close().wait() }

    @discardableResult
    public func execute(_ query: PostgresQuery) throws -> Int {
        try run(query).metadata.rows ?? 0
    }

    /// `body` between `begin` and COMMIT; any error rolls it back.
    func transaction<T>(_ begin: PostgresQuery, _ body: () throws -> T) throws -> T {
        try execute(begin)
        do {
            let value = try body()
            try execute("COMMIT")
            return value
        } catch {
            _ = try? execute("ROLLBACK")
            throw error
        }
    }

    /// Several statements without parameters, one after another: a migration's script. PostgreSQL parses one
    /// statement per request, so the script is cut at each `;` that ends a line outside a `$$` function body.
    public func script(_ sql: String) throws {
        for statement in Self.statements(sql) { try execute(PostgresQuery(unsafeSQL: statement)) }
    }

    static func statements(_ sql: String) -> [String] {
        var statements: [String] = [], current = ""
        for line in sql.split(separator: "\n", omittingEmptySubsequences: false) {
            current += line + "\n"
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasSuffix(";"), current.components(separatedBy: "$$").count % 2 == 1 {
                statements.append(current)
                current = ""
            }
        }
        if !current.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { statements.append(current) }
        return statements
    }

    public func rows(_ query: PostgresQuery) throws -> [Row] {
        try run(query).rows.map { Row(cells: $0.makeRandomAccess()) }
    }

    private func run(_ query: PostgresQuery) throws -> PostgresQueryResult {
        do {
            guard !connection.isClosed else {
                throw LedgerUnavailable(reason: "the database closed the connection", detail: "a statement on a closed connection")
            }
            return try Self.within(queryTimeout, on: connection.eventLoop, connection.query(query, logger: logger),
                                   onClose: closing, what: "a statement")
        } catch let error as LedgerUnavailable {
            // The answer may still come, on a connection nobody reads any more: it is closed.
            isBroken = true
            let closing: EventLoopFuture<Void> = connection.close()
            _ = closing
            throw error
        } catch let error as PSQLError where error.code != .server {
            isBroken = true
            throw error
        } catch let error as PSQLError {
            throw error
        } catch {
            isBroken = true
            throw error
        }
    }
}

/// The one wait on a connection that its close must end: set while a statement waits, fired once when it closes.
final class ClosingWatch: Sendable {
    private let state = NIOLockedValueBox<(isClosed: Bool, waiting: (@Sendable () -> Void)?)>((false, nil))

    /// `fail` runs once the connection has closed, at once if it already has; `nil` ends the watch.
    func watch(_ fail: (@Sendable () -> Void)?) {
        let now = state.withLockedValue { state -> Bool in
            state.waiting = state.isClosed ? nil : fail
            return state.isClosed
        }
        if now { fail?() }
    }

    func closed() {
        let fail = state.withLockedValue { state in defer { state = (true, nil) }; return state.waiting }
        fail?()
    }
}

/// One row, read by column name. A column of another type than asked is an error, not a trap.
public struct Row {
    let cells: PostgresRandomAccessRow

    public subscript<T: PostgresDecodable>(_ name: String) -> T {
        get throws {
            do {
                return try cells[name].decode(T.self)
            } catch {
                throw LedgerStoreError("column \(name) does not hold a \(T.self): \(String(reflecting: error))")
            }
        }
    }
}

/// Whole seconds since 1970, as every instant is stored.
func seconds(_ date: Date) -> Int { Int(date.timeIntervalSince1970) }

func date(_ seconds: Int) -> Date { Date(timeIntervalSince1970: TimeInterval(seconds)) }

func date(_ seconds: Int?) -> Date? { seconds.map { Date(timeIntervalSince1970: TimeInterval($0)) } }
