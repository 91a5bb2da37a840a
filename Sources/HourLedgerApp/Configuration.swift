import Foundation
import HourLedgerCore
import HourLedgerPostgres
import HourLedgerGLPI
import HourLedgerITop
import HourLedgerServer
import HourLedgerUseCases
import Yams

/// A secret read from the config, a file or the environment. It prints as `[redacted]` so it cannot leak into logs.
public struct Secret: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    public let value: String
    public init(_ value: String) { self.value = value }
    public var description: String { "[redacted]" }
    public var debugDescription: String { "[redacted]" }
}

public struct HelpdeskSettings: Sendable, Equatable {
    public enum Credentials: Sendable, Equatable {
        case userToken(Secret)
        case password(login: String, password: Secret)
    }

    public var kind: HelpdeskKind
    public var url: String
    public var appToken: Secret?
    public var credentials: Credentials
    public var pollIntervalSeconds: Int
    /// Seconds of changes re-read before the last poll's newest stamp.
    public var overlapSeconds: Int
    /// The helpdesk's own time zone: GLPI's dates carry no offset.
    public var timeZone: String
    public var verifyTLS: Bool
    public var caBundle: String?
    public var connectTimeoutSeconds: Int
    public var timeoutSeconds: Int
    public var pageSize: Int
    public var concurrency: Int
    /// Task category of the private tasks HourLedger writes back (0: none).
    public var taskCategory: Int
    /// iTop: the ticket classes polled (UserRequest, Incident).
    public var classes: [String] = ["UserRequest", "Incident"]
    /// The shared secret a helpdesk's webhook must carry (GLPI: the key it signs with; iTop: a header or `?token=`).
    /// One per line: during a rotation the old and the new secret are both accepted.
    public var webhookSecret: Secret?
    /// How far a GLPI webhook's timestamp may be from now, either way.
    public var webhookMaxAgeSeconds: Int = 300
    public var webhookMaxBodyBytes: Int = 256 * 1024
    /// How long the helpdesk may still apply a write after the client gave up on it: its own execution limit (PHP's
    /// max_execution_time) plus any queueing in front of it. A write whose answer was lost is looked up again only
    /// after `timeoutSeconds + writeGraceSeconds`, so a retry never races the first attempt.
    public var writeGraceSeconds: Int = 60
    /// How often a poll also looks for tickets that left the helpdesk (trash, purge, deletion); 0 means every poll.
    public var deletionCheckSeconds: Int = 600
    /// iTop: how a dashboard sign-in learns the person behind a login (`user` or `email`).
    public var signInLookup: String = "user"
    /// GLPI: tasks per page when a first sync lists every task across tickets.
    public var taskPageSize: Int = 5000
    /// How often the daemon compares the ledger with the helpdesk's own figures (GLPI: one full ticket search; iTop:
    /// the private logs of the tickets HourLedger wrote to); 0 never.
    public var reconcileEveryHours: Int = 24

    /// Seconds after an attempt was sent during which it may still land.
    public var writeFenceSeconds: Int { timeoutSeconds + writeGraceSeconds }

    /// Each line of `webhookSecret`, trimmed.
    public var webhookSecrets: [String] {
        (webhookSecret?.value ?? "").split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
}

public struct HourLedgerConfiguration: Sendable, Equatable {
    public var helpdesk: HelpdeskSettings
    /// The SQLite ledger's file (`database.path`), unless `postgres` is set.
    public var databasePath: String
    /// The ledger on PostgreSQL (`database: { kind: postgres, url, password_file }`) instead of SQLite.
    public var postgres: PostgresLocation? = nil
    /// How long a leader's lease on a shared (PostgreSQL) ledger lasts unrenewed: a paused or cut-off leader is taken
    /// over this long after its last renewal; a killed one at once.
    public var leaseSeconds = 6
    public var httpHost: String
    public var httpPort: Int
    /// Connections beyond this are answered 503 and closed.
    public var maxConnections: Int = 1000
    /// A connection must send a complete request head within this many seconds of opening or of its last answer.
    public var idleTimeoutSeconds: Int = 30
    public var logLevel: String
    /// A timer running longer than this in one stretch is paused and flagged for review.
    public var maxRunningTimerSeconds: Int
    public var contracts: [Contract]
    /// Terms for the helpdesk's own contracts (`helpdesk_contracts`): each one they cover is a contract here too.
    public var helpdeskContracts = HelpdeskContractTerms()
    /// Where contract alerts are sent.
    public var alerts: AlertSettings = AlertSettings()
    /// Which helpdesk profiles (or logins) are managers and technicians on the dashboard.
    public var roles: StaffRoles = StaffRoles(managerProfiles: [], technicianProfiles: [])
    public var dashboard: DashboardSettings = DashboardSettings()

    /// Every secret value in the config, for the log redactor.
    public var secretValues: [String] {
        var values = helpdesk.webhookSecrets + alerts.webhooks.compactMap(\.secret?.value)
        if let appToken = helpdesk.appToken { values.append(appToken.value) }
        if let password = postgres?.password { values.append(password) }
        switch helpdesk.credentials {
        case .userToken(let token): values.append(token.value)
        case .password(_, let password): values.append(password.value)
        }
        return values
    }
}

/// An outgoing webhook that receives every alert as JSON, signed when it has a secret.
public struct AlertWebhook: Sendable, Equatable {
    public var name: String
    public var url: String
    /// HMAC-SHA256 key: the receiver checks `X-HourLedger-Signature`.
    public var secret: Secret?
    public var timeoutSeconds: Int

    public init(name: String, url: String, secret: Secret? = nil, timeoutSeconds: Int = 10) {
        self.name = name
        self.url = url
        self.secret = secret
        self.timeoutSeconds = timeoutSeconds
    }
}

public struct AlertSettings: Sendable, Equatable {
    public var webhooks: [AlertWebhook] = []
    /// Also write a private followup in the ticket whose time crossed the threshold.
    public var followup = false
    /// A delivery is given up, and shown as failed, after this many attempts.
    public var maxAttempts = 12

    public init(webhooks: [AlertWebhook] = [], followup: Bool = false, maxAttempts: Int = 12) {
        self.webhooks = webhooks
        self.followup = followup
        self.maxAttempts = maxAttempts
    }
}

/// One problem in a config file, named by its key path and line.
public struct ConfigIssue: Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var line: Int?
    public var message: String
    public var description: String { (line.map { "line \($0): " } ?? "") + "\(path): \(message)" }
}

public struct ConfigError: Error, CustomStringConvertible, Sendable {
    public var file: String
    public var issues: [ConfigIssue]
    public var description: String {
        "\(file): \(issues.count) error\(issues.count == 1 ? "" : "s")\n" + issues.map { "  \($0)" }.joined(separator: "\n")
    }
}

/// Reads and validates `hourledger.yaml`. Every problem is collected, not just the first, so an operator fixes a file in one go.
public enum ConfigLoader {
    /// Scalar keys that an environment variable may override: `HOURLEDGER_<SECTION>_<KEY>`, e.g. `HOURLEDGER_HELPDESK_URL`.
    static let overridable: [String: [String]] = [
        "helpdesk": ["kind", "url", "app_token", "app_token_file", "user_token", "user_token_file", "username", "password",
                     "password_file", "poll_interval_seconds", "overlap_seconds", "timezone", "verify_tls", "ca_bundle",
                     "connect_timeout_seconds", "timeout_seconds", "page_size", "concurrency", "task_category", "classes",
                     "webhook_secret", "webhook_secret_file", "webhook_max_age_seconds", "webhook_max_body_bytes", "write_grace_seconds",
                     "deletion_check_seconds", "sign_in_lookup", "task_page_size", "reconcile_every_hours"],
        "database": ["path", "kind", "url", "password_file", "lease_seconds"],
        "http": ["host", "port", "max_connections", "idle_timeout_seconds"],
        "log": ["level"],
        "timers": ["max_running_hours"],
    ]

    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> HourLedgerConfiguration {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ConfigError(file: path, issues: [ConfigIssue(path: "(file)", line: nil, message: "no such file")])
        }
        if isDirectory.boolValue {
            throw ConfigError(file: path, issues: [ConfigIssue(path: "(file)", line: nil, message: "is a directory; give the path of the YAML file")])
        }
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            let reason = FileManager.default.isReadableFile(atPath: path) ? "the file is not UTF-8 text" : "permission denied"
            throw ConfigError(file: path, issues: [ConfigIssue(path: "(file)", line: nil, message: "cannot read: \(reason)")])
        }
        return try parse(text, file: path, environment: environment)
    }

    public static func parse(_ text: String, file: String = "config", environment: [String: String] = [:]) throws -> HourLedgerConfiguration {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw ConfigError(file: file, issues: [ConfigIssue(path: "(yaml)", line: Self.line(of: error), message: Self.problem(of: error))])
        }
        var reader = Reader(environment: environment, baseDirectory: URL(fileURLWithPath: file).deletingLastPathComponent().path)
        let config = reader.configuration(root)
        guard reader.issues.isEmpty, let config else { throw ConfigError(file: file, issues: reader.issues) }
        return config
    }

    private static func line(of error: YamlError) -> Int? {
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _): return mark.line
        case .duplicatedKeysInMapping(_, let context): return context.mark.line
        default: return nil
        }
    }

    /// One line naming the problem; Yams' own descriptions carry the whole file, which must not reach a log.
    private static func problem(of error: YamlError) -> String {
        switch error {
        case .scanner(_, let problem, _, _), .parser(_, let problem, _, _), .composer(_, let problem, _, _): return "invalid YAML: \(problem)"
        case .duplicatedKeysInMapping(let duplicates, _):
            return "duplicate key \(duplicates.map { "'\($0)'" }.joined(separator: ", ")) in one mapping (the line is its first use)"
        case .reader(let problem, _, _, _): return "unreadable text: \(problem)"
        case .dataCouldNotBeDecoded: return "the file is not UTF-8 text"
        default: return "invalid YAML"
        }
    }
}

/// Walks the YAML tree, typing values and recording issues with their key paths.
private struct Reader {
    let environment: [String: String]
    let baseDirectory: String
    var issues: [ConfigIssue] = []
    /// Contract rules use the helpdesk's own keys, so the kind is read first.
    var helpdeskKind = HelpdeskKind.glpi
    /// Contracts of the file declared as an iTop CustomerContract (`itop_contract: 3`): terms by that contract's id.
    var declared: [(itopID: Int, terms: HelpdeskContractTerms.Terms, path: String)] = []

    init(environment: [String: String], baseDirectory: String) {
        self.environment = environment
        self.baseDirectory = baseDirectory
    }

    mutating func issue(_ path: String, _ node: Node?, _ message: String) {
        issues.append(ConfigIssue(path: path, line: node?.mark?.line, message: message))
    }

    /// The keys of a mapping, refusing unknown ones and duplicates.
    mutating func mapping(_ node: Node?, at path: String, allowed: [String]) -> [String: Node]? {
        guard let node else { return nil }
        guard case .mapping(let mapping) = node else {
            issue(path, node, "must be a mapping")
            return nil
        }
        var result: [String: Node] = [:]
        for (key, value) in mapping {
            guard let name = key.string else {
                issue(path, key, "keys must be strings")
                continue
            }
            let keyPath = path.isEmpty ? name : "\(path).\(name)"
            if !allowed.contains(name) {
                let hint = allowed.min(by: { Self.distance($0, name) < Self.distance($1, name) }).flatMap { Self.distance($0, name) <= 2 ? " (did you mean '\($0)'?)" : nil } ?? ""
                issue(keyPath, key, "unknown key\(hint); allowed: \(allowed.joined(separator: ", "))")
                continue
            }
            if result[name] != nil { issue(keyPath, key, "duplicate key") }
            result[name] = value
        }
        return result
    }

    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var row = Array(0...b.count)
        for i in 1...max(a.count, 1) where i <= a.count {
            var previous = row[0]
            row[0] = i
            for j in 1...max(b.count, 1) where j <= b.count {
                let current = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                previous = current
            }
        }
        return row[b.count]
    }

    /// A scalar, with `HOURLEDGER_<SECTION>_<KEY>` taking precedence when the key may be overridden.
    func scalar(_ map: [String: Node]?, _ key: String, section: String?) -> (text: String, node: Node?)? {
        if let section, ConfigLoader.overridable[section]?.contains(key) == true,
           let value = environment["HOURLEDGER_\(section.uppercased())_\(key.uppercased())"] {
            return (value, nil)
        }
        guard let node = map?[key] else { return nil }
        if case .scalar(let scalar) = node { return (scalar.string, node) }
        return ("\u{0}", node)
    }

    mutating func string(_ map: [String: Node]?, _ key: String, at path: String, section: String? = nil) -> String? {
        guard let (text, node) = scalar(map, key, section: section) else { return nil }
        if text == "\u{0}" {
            issue("\(path).\(key)", node, "must be a string")
            return nil
        }
        return text
    }

    mutating func int(_ map: [String: Node]?, _ key: String, at path: String, section: String? = nil, range: ClosedRange<Int>? = nil) -> Int? {
        guard let (text, node) = scalar(map, key, section: section) else { return nil }
        guard let value = Int(text) else {
            issue("\(path).\(key)", node, "must be an integer, got '\(text == "\u{0}" ? "a list or mapping" : text)'")
            return nil
        }
        if let range, !range.contains(value) {
            issue("\(path).\(key)", node, "must be between \(range.lowerBound) and \(range.upperBound), got \(value)")
            return nil
        }
        return value
    }

    /// A number of hours, refused outside `range` so that hours × 3600 always fits in whole seconds.
    mutating func number(_ map: [String: Node]?, _ key: String, at path: String, range: ClosedRange<Double> = Bounds.configHours) -> Double? {
        guard let (text, node) = scalar(map, key, section: nil) else { return nil }
        guard let value = Double(text), value.isFinite else {
            issue("\(path).\(key)", node, "must be a number, got '\(text == "\u{0}" ? "a list or mapping" : text)'")
            return nil
        }
        guard range.contains(value) else {
            issue("\(path).\(key)", node, "must be between \(Self.plain(range.lowerBound)) and \(Self.plain(range.upperBound)), got \(text)")
            return nil
        }
        return value
    }

    static func plain(_ value: Double) -> String { value == value.rounded() ? String(Int(value)) : String(value) }

    /// A day (YYYY-MM-DD) within the years contracts may use.
    mutating func day(_ map: [String: Node], _ key: String, at path: String) -> CivilDate? {
        guard let text = string(map, key, at: path) else { return nil }
        guard let date = CivilDate(text) else {
            issue("\(path).\(key)", map[key], "not a valid date '\(text)' (YYYY-MM-DD)")
            return nil
        }
        guard Bounds.configYears.contains(date.year) else {
            issue("\(path).\(key)", map[key], "must lie between \(Bounds.configYears.lowerBound) and \(Bounds.configYears.upperBound), got \(text)")
            return nil
        }
        return date
    }

    mutating func bool(_ map: [String: Node]?, _ key: String, at path: String, section: String? = nil) -> Bool? {
        guard let (text, node) = scalar(map, key, section: section) else { return nil }
        switch text.lowercased() {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default:
            issue("\(path).\(key)", node, "must be true or false, got '\(text)'")
            return nil
        }
    }

    mutating func intList(_ map: [String: Node]?, _ key: String, at path: String) -> [Int]? {
        list(map, key, at: path, of: "ids", item: "must be an integer id") { $0.string.flatMap { Int($0) } }
    }

    mutating func stringList(_ map: [String: Node]?, _ key: String, at path: String) -> [String]? {
        list(map, key, at: path, of: "names", item: "must be a name") { $0.string }
    }

    /// A list (or a single scalar) whose items `read` converts; an empty list is refused, since it would match nothing.
    private mutating func list<T>(_ map: [String: Node]?, _ key: String, at path: String, of what: String, item problem: String,
                                  _ read: (Node) -> T?) -> [T]? {
        guard let node = map?[key] else { return nil }
        let items: [Node]
        switch node {
        case .sequence(let sequence): items = Array(sequence)
        case .scalar: items = [node]
        default:
            issue("\(path).\(key)", node, "must be a list of \(what)")
            return nil
        }
        var result: [T] = []
        for (index, item) in items.enumerated() {
            if let value = read(item) { result.append(value) } else { issue("\(path).\(key)[\(index)]", item, problem) }
        }
        if result.isEmpty { issue("\(path).\(key)", node, "an empty list matches nothing; omit the key to match any") }
        return result
    }

    /// `database: { kind: postgres, url: postgres://USER@HOST:PORT/DB?schema=S&sslmode=M, password_file: FILE }`; the
    /// password may instead come from `HOURLEDGER_DATABASE_PASSWORD`, never from the URL.
    mutating func postgres(_ database: [String: Node]?) -> PostgresLocation? {
        let kind = string(database, "kind", at: "database", section: "database") ?? "sqlite"
        switch kind {
        case "sqlite":
            for key in ["url", "password_file", "lease_seconds"] where database?[key] != nil {
                issue("database.\(key)", database?[key], "is a PostgreSQL setting: add kind: postgres, or remove it")
            }
            return nil
        case "postgres":
            if database?["path"] != nil { issue("database.path", database?["path"], "is SQLite's file; a PostgreSQL ledger has a url") }
            guard let url = string(database, "url", at: "database", section: "database") else {
                issue("database.url", database?["kind"], "kind postgres needs url: postgres://USER@HOST:PORT/DATABASE")
                return nil
            }
            let password = secret(database, "password", at: "database", section: "database", environmentName: "HOURLEDGER_DATABASE_PASSWORD")
            do {
                return try PostgresLocation(url: url, password: password?.value)
            } catch {
                issue("database.url", database?["url"], "\(error)")
                return nil
            }
        default:
            issue("database.kind", database?["kind"], "must be sqlite or postgres, not \(kind)")
            return nil
        }
    }

    /// A secret given inline (`key`) or by file (`key_file`), never both.
    mutating func secret(_ map: [String: Node]?, _ key: String, at path: String, section: String? = "helpdesk",
                         environmentName: String? = nil) -> Secret? {
        // The environment wins over the file's value or file path, so a unit or a shell can inject the secret.
        let variable = environmentName ?? "HOURLEDGER_HELPDESK_\(key.uppercased())"
        if let value = environment[variable], !value.isEmpty { return Secret(value) }
        let inline = string(map, key, at: path, section: section)
        let file = string(map, "\(key)_file", at: path, section: section)
        if inline != nil, file != nil {
            issue("\(path).\(key)", map?[key], "give either \(key) or \(key)_file, not both")
            return nil
        }
        if let inline { return inline.isEmpty ? nil : Secret(inline) }
        guard let file else { return nil }
        let resolved = resolveSecretPath(file)
        guard let contents = try? String(contentsOfFile: resolved, encoding: .utf8) else {
            issue("\(path).\(key)_file", map?["\(key)_file"], "cannot read secret file \(resolved)")
            return nil
        }
        let value = contents.trimmingCharacters(in: .whitespacesAndNewlines)
        if value.isEmpty { issue("\(path).\(key)_file", map?["\(key)_file"], "secret file \(resolved) is empty") }
        return Secret(value)
    }

    /// Relative secret paths name a systemd credential (`LoadCredential=`) when $CREDENTIALS_DIRECTORY is set.
    func resolveSecretPath(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        if let credentials = environment["CREDENTIALS_DIRECTORY"] { return credentials + "/" + path }
        return baseDirectory + "/" + path
    }

    mutating func configuration(_ root: Node?) -> HourLedgerConfiguration? {
        guard let root else {
            issue("(file)", nil, "the file is empty")
            return nil
        }
        let top = mapping(root, at: "", allowed: ["helpdesk", "database", "http", "log", "timers", "alerts", "contracts", "helpdesk_contracts", "roles", "dashboard"])
        let helpdeskNode = top?["helpdesk"]
        if helpdeskNode == nil { issue("helpdesk", root, "missing section") }
        let helpdesk = self.helpdesk(helpdeskNode)
        let database = mapping(top?["database"], at: "database", allowed: ConfigLoader.overridable["database"]!)
        let databasePath = string(database, "path", at: "database", section: "database") ?? "/var/lib/hourledger/ledger.sqlite"
        let postgres = self.postgres(database)
        let http = mapping(top?["http"], at: "http", allowed: ConfigLoader.overridable["http"]!)
        let host = string(http, "host", at: "http", section: "http") ?? "127.0.0.1"
        let port = int(http, "port", at: "http", section: "http", range: 0...65535) ?? 8470
        let maxConnections = int(http, "max_connections", at: "http", section: "http", range: 1...100_000) ?? 1000
        let idleTimeout = int(http, "idle_timeout_seconds", at: "http", section: "http", range: 1...3600) ?? 30
        let log = mapping(top?["log"], at: "log", allowed: ["level"])
        let level = string(log, "level", at: "log", section: "log") ?? "info"
        if !["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(level) {
            issue("log.level", log?["level"], "must be one of trace, debug, info, notice, warning, error, critical")
        }
        let timers = mapping(top?["timers"], at: "timers", allowed: ["max_running_hours"])
        let maxRunningHours = int(timers, "max_running_hours", at: "timers", section: "timers", range: 1...168) ?? 10
        let contracts = self.contracts(top?["contracts"])
        let helpdeskContracts = self.helpdeskContracts(top?["helpdesk_contracts"])
        let alerts = self.alerts(top?["alerts"])
        let roles = self.roles(top?["roles"])
        let dashboard = self.dashboard(top?["dashboard"])
        guard let helpdesk else { return nil }
        var configuration = HourLedgerConfiguration(helpdesk: helpdesk, databasePath: databasePath, postgres: postgres, httpHost: host, httpPort: port,
                                                    maxConnections: maxConnections, idleTimeoutSeconds: idleTimeout, logLevel: level,
                                                    maxRunningTimerSeconds: maxRunningHours * 3600, contracts: contracts, alerts: alerts)
        configuration.roles = roles
        configuration.leaseSeconds = int(database, "lease_seconds", at: "database", section: "database", range: 3...120) ?? 6
        configuration.dashboard = dashboard
        configuration.helpdeskContracts = helpdeskContracts
        return configuration
    }

    /// Staff roles from helpdesk profile names; by default the helpdesk's own staff profiles.
    mutating func roles(_ node: Node?) -> StaffRoles {
        let itop = helpdeskKind == .itop
        var roles = itop ? StaffRoles(managerProfiles: ["Administrator", "Service Manager"], technicianProfiles: ["Support Agent"])
            : StaffRoles(managerProfiles: ["Super-Admin", "Admin", "Supervisor"], technicianProfiles: ["Technician"])
        guard let node, let map = mapping(node, at: "roles", allowed: ["manager_profiles", "technician_profiles", "manager_logins", "technician_logins"])
        else { return roles }
        if let list = stringList(map, "manager_profiles", at: "roles") { roles.managerProfiles = list }
        if let list = stringList(map, "technician_profiles", at: "roles") { roles.technicianProfiles = list }
        if let list = stringList(map, "manager_logins", at: "roles") { roles.managerLogins = list }
        if let list = stringList(map, "technician_logins", at: "roles") { roles.technicianLogins = list }
        return roles
    }

    mutating func dashboard(_ node: Node?) -> DashboardSettings {
        var settings = DashboardSettings()
        guard let node, let map = mapping(node, at: "dashboard", allowed: ["enabled", "session_idle_minutes", "session_max_hours", "secure_cookie",
                                                                            "behind_proxy", "max_failures_per_login", "max_failures_per_address",
                                                                            "lockout_minutes"])
        else { return settings }
        settings.enabled = bool(map, "enabled", at: "dashboard") ?? true
        settings.idleSeconds = (int(map, "session_idle_minutes", at: "dashboard", range: 1...1440) ?? 30) * 60
        settings.maxSeconds = (int(map, "session_max_hours", at: "dashboard", range: 1...168) ?? 12) * 3600
        let secure = string(map, "secure_cookie", at: "dashboard") ?? "auto"
        if let mode = DashboardSettings.SecureCookie(rawValue: secure) { settings.secureCookie = mode } else {
            issue("dashboard.secure_cookie", map["secure_cookie"], "must be auto, always or never, got '\(secure)'")
        }
        settings.behindProxy = bool(map, "behind_proxy", at: "dashboard") ?? false
        settings.maxFailuresPerLogin = int(map, "max_failures_per_login", at: "dashboard", range: 1...1000) ?? 5
        settings.maxFailuresPerAddress = int(map, "max_failures_per_address", at: "dashboard", range: 1...10_000) ?? 20
        settings.lockoutSeconds = (int(map, "lockout_minutes", at: "dashboard", range: 1...1440) ?? 15) * 60
        return settings
    }

    /// `visible_to: { users, profiles, groups, entities | orgs }`: who besides staff sees a contract.
    mutating func audience(_ node: Node?, at path: String) -> Audience? {
        let itop = helpdeskKind == .itop
        guard let node, let map = mapping(node, at: path, allowed: ["users", "profiles", "groups", itop ? "orgs" : "entities"]) else { return nil }
        return Audience(users: stringList(map, "users", at: path) ?? [], profiles: stringList(map, "profiles", at: path) ?? [],
                        groups: intList(map, "groups", at: path) ?? [], entities: intList(map, itop ? "orgs" : "entities", at: path) ?? [])
    }

    mutating func alerts(_ node: Node?) -> AlertSettings {
        var settings = AlertSettings()
        guard let map = mapping(node, at: "alerts", allowed: ["webhooks", "followup", "max_attempts"]) else { return settings }
        settings.followup = bool(map, "followup", at: "alerts") ?? false
        settings.maxAttempts = int(map, "max_attempts", at: "alerts", range: 1...100) ?? 12
        guard let list = map["webhooks"] else { return settings }
        guard case .sequence(let items) = list else {
            issue("alerts.webhooks", list, "must be a list of webhooks")
            return settings
        }
        for (index, item) in items.enumerated() {
            let path = "alerts.webhooks[\(index)]"
            guard let hook = mapping(item, at: path, allowed: ["name", "url", "secret", "secret_file", "timeout_seconds"]) else { continue }
            let name = string(hook, "name", at: path)
            if name == nil { issue("\(path).name", item, "missing") }
            if let name, name.isEmpty || !name.allSatisfy({ $0.isLetter || $0.isNumber || "-_".contains($0) }) {
                issue("\(path).name", hook["name"], "must be letters, digits, '-' or '_'")
            }
            if let name, settings.webhooks.contains(where: { $0.name == name }) { issue("\(path).name", hook["name"], "duplicate webhook name '\(name)'") }
            let url = string(hook, "url", at: path)
            if url == nil { issue("\(path).url", item, "missing") }
            if let url, URLComponents(string: url)?.scheme.map({ ["http", "https"].contains($0) }) != true {
                issue("\(path).url", hook["url"], "must be an http(s) URL")
            }
            let secret = self.secret(hook, "secret", at: path, section: nil,
                                     environmentName: name.map { "HOURLEDGER_WEBHOOK_\($0.uppercased().replacingOccurrences(of: "-", with: "_"))_SECRET" })
            let timeout = int(hook, "timeout_seconds", at: path, range: 1...300) ?? 10
            if let name, let url { settings.webhooks.append(AlertWebhook(name: name, url: url, secret: secret, timeoutSeconds: timeout)) }
        }
        return settings
    }

    mutating func helpdesk(_ node: Node?) -> HelpdeskSettings? {
        let path = "helpdesk"
        let map = mapping(node, at: path, allowed: ConfigLoader.overridable["helpdesk"]!)
        guard node != nil else { return nil }
        let kindText = string(map, "kind", at: path, section: "helpdesk") ?? HelpdeskKind.glpi.rawValue
        let kind = HelpdeskKind(rawValue: kindText) ?? .glpi
        if HelpdeskKind(rawValue: kindText) == nil {
            issue("\(path).kind", map?["kind"], "unsupported helpdesk kind '\(kindText)'; supported: "
                  + HelpdeskKind.allCases.map(\.rawValue).joined(separator: ", "))
        }
        helpdeskKind = kind
        let itop = kind == .itop
        let url = string(map, "url", at: path, section: "helpdesk")
        if url == nil {
            issue("\(path).url", node, itop ? "missing; e.g. https://itop.example.com/webservices/rest.php" : "missing; e.g. https://glpi.example.com/apirest.php")
        }
        if let url, URLComponents(string: url)?.scheme.map({ ["http", "https"].contains($0) }) != true {
            issue("\(path).url", map?["url"], "must be an http(s) URL")
        }
        let appToken = secret(map, "app_token", at: path)
        let userToken = secret(map, "user_token", at: path)
        let login = string(map, "username", at: path, section: "helpdesk")
        let password = secret(map, "password", at: path)
        var credentials: HelpdeskSettings.Credentials?
        switch (userToken, login, password) {
        case (let token?, nil, nil): credentials = .userToken(token)
        case (nil, let login?, let password?): credentials = .password(login: login, password: password)
        case (nil, nil, nil): issue(path, node, "no credentials: give user_token(_file), or username and password(_file)")
        case (_?, _, _): issue(path, node, "give either user_token or username/password, not both")
        case (nil, nil, _?): issue("\(path).username", node, "password given without username")
        case (nil, _?, nil): issue("\(path).password", node, "username given without password(_file)")
        }
        let interval = int(map, "poll_interval_seconds", at: path, section: "helpdesk", range: 5...86400) ?? 60
        let overlap = int(map, "overlap_seconds", at: path, section: "helpdesk", range: 0...86400) ?? 120
        if itop {
            for key in ["app_token", "user_token", "task_category"] where map?[key] != nil || map?["\(key)_file"] != nil {
                issue("\(path).\(key)", map?[key] ?? map?["\(key)_file"], "is a GLPI setting; iTop takes username and password(_file)")
            }
            if case .userToken = credentials { credentials = nil }
            if map?["timezone"] == nil, environment["HOURLEDGER_HELPDESK_TIMEZONE"] == nil {
                issue("\(path).timezone", node, "missing: iTop's dates carry no offset, give its time zone (its 'timezone' setting, e.g. Europe/Paris)")
            }
        } else if map?["classes"] != nil {
            issue("\(path).classes", map?["classes"], "is an iTop setting (the ticket classes polled)")
        }
        var classes = ["UserRequest", "Incident"]
        if let list = stringList(map, "classes", at: path) {
            classes = list
            for (index, name) in list.enumerated() where name.isEmpty || !name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) {
                issue("\(path).classes[\(index)]", map?["classes"], "'\(name)' is not an iTop class name")
            }
        }
        let webhookSecret = secret(map, "webhook_secret", at: path)
        let webhookMaxAge = int(map, "webhook_max_age_seconds", at: path, section: "helpdesk", range: 10...86400) ?? 300
        let webhookMaxBody = int(map, "webhook_max_body_bytes", at: path, section: "helpdesk", range: 1024...(16 * 1024 * 1024)) ?? 256 * 1024
        let timeZone = string(map, "timezone", at: path, section: "helpdesk") ?? "UTC"
        if TimeZone(identifier: timeZone) == nil { issue("\(path).timezone", map?["timezone"], "unknown time zone '\(timeZone)'") }
        let verify = bool(map, "verify_tls", at: path, section: "helpdesk") ?? true
        let caBundle = string(map, "ca_bundle", at: path, section: "helpdesk")
        let connectTimeout = int(map, "connect_timeout_seconds", at: path, section: "helpdesk", range: 1...300) ?? 10
        let timeout = int(map, "timeout_seconds", at: path, section: "helpdesk", range: 1...3600) ?? 60
        let pageSize = int(map, "page_size", at: path, section: "helpdesk", range: 1...1000) ?? (itop ? 500 : 1000)
        let concurrency = int(map, "concurrency", at: path, section: "helpdesk", range: 1...32) ?? 4
        let taskCategory = int(map, "task_category", at: path, section: "helpdesk", range: 0...Int(Int32.max)) ?? 0
        let writeGrace = int(map, "write_grace_seconds", at: path, section: "helpdesk", range: 0...3600) ?? 60
        let deletionCheck = int(map, "deletion_check_seconds", at: path, section: "helpdesk", range: 0...86400) ?? 600
        let taskPageSize = int(map, "task_page_size", at: path, section: "helpdesk", range: 100...20_000) ?? 5000
        if itop, map?["task_page_size"] != nil { issue("\(path).task_page_size", map?["task_page_size"], "is a GLPI setting (iTop has no tasks)") }
        let reconcileEvery = int(map, "reconcile_every_hours", at: path, section: "helpdesk", range: 0...168) ?? 24
        let lookup = string(map, "sign_in_lookup", at: path, section: "helpdesk") ?? "user"
        if !["user", "email"].contains(lookup) { issue("\(path).sign_in_lookup", map?["sign_in_lookup"], "must be user or email, got '\(lookup)'") }
        if !itop, map?["sign_in_lookup"] != nil { issue("\(path).sign_in_lookup", map?["sign_in_lookup"], "is an iTop setting (GLPI names the person itself)") }
        guard let url, let credentials else { return nil }
        var settings = HelpdeskSettings(kind: kind, url: url, appToken: appToken, credentials: credentials, pollIntervalSeconds: interval,
                                overlapSeconds: overlap, timeZone: timeZone, verifyTLS: verify, caBundle: caBundle,
                                connectTimeoutSeconds: connectTimeout, timeoutSeconds: timeout, pageSize: pageSize, concurrency: concurrency,
                                taskCategory: taskCategory, classes: classes, webhookSecret: webhookSecret,
                                webhookMaxAgeSeconds: webhookMaxAge, webhookMaxBodyBytes: webhookMaxBody, writeGraceSeconds: writeGrace,
                                deletionCheckSeconds: deletionCheck)
        settings.signInLookup = lookup
        settings.taskPageSize = taskPageSize
        settings.reconcileEveryHours = reconcileEvery
        return settings
    }

    mutating func contracts(_ node: Node?) -> [Contract] {
        guard let node else { return [] }
        guard case .sequence(let sequence) = node else {
            issue("contracts", node, "must be a list of contracts")
            return []
        }
        var result: [Contract] = []
        var seen: [String: Int] = [:]
        for (index, item) in sequence.enumerated() {
            let path = "contracts[\(index)]"
            if helpdeskKind == .itop, case .mapping(let given) = item, given.contains(where: { $0.key.string == "itop_contract" }) {
                if let (itopID, terms) = declaredITopContract(given, at: path), let id = terms.id {
                    if let first = seen[id] { issue("\(path).id", item, "duplicate contract id '\(id)' (first at contracts[\(first)])") }
                    seen[id] = index
                    declared.append((itopID, terms, path))
                }
                continue
            }
            guard let contract = contract(item, at: path) else { continue }
            if let first = seen[contract.id] {
                issue("\(path).id", item, "duplicate contract id '\(contract.id)' (first at contracts[\(first)])")
                continue
            }
            seen[contract.id] = index
            result.append(contract)
        }
        return result
    }

    /// `helpdesk_contracts: {by_id: {2: terms}, by_type: {"Prepaid support hours": terms}, default: terms}`: the terms
    /// of the helpdesk's own contracts. Terms are a contract's keys without those the helpdesk's contract gives.
    mutating func helpdeskContracts(_ node: Node?) -> HelpdeskContractTerms {
        let path = "helpdesk_contracts"
        var result = HelpdeskContractTerms()
        for (itopID, terms, declaredAt) in declared {
            if result.byID[itopID] != nil { issue("\(declaredAt).itop_contract", nil, "iTop contract \(itopID) is declared twice") }
            result.byID[itopID] = terms
        }
        guard let node, let map = mapping(node, at: path, allowed: ["by_id", "by_type", "default"]) else { return result }
        if let fallback = map["default"] { result.fallback = terms(fallback, at: "\(path).default") }
        for (section, isID) in [("by_type", false), ("by_id", true)] {
            guard let sectionNode = map[section] else { continue }
            guard case .mapping(let entries) = sectionNode else {
                issue("\(path).\(section)", sectionNode, isID ? "must map helpdesk contract ids to their terms" : "must map contract type names to their terms")
                continue
            }
            for (key, value) in entries {
                let name = key.string ?? ""
                let entryPath = "\(path).\(section).\(name)"
                if isID {
                    guard let id = Int(name), (1...Int(Int32.max)).contains(id) else {
                        issue(entryPath, key, "must be a helpdesk contract id (a positive number)")
                        continue
                    }
                    if result.byID[id] != nil { issue(entryPath, key, "duplicate contract id (or declared by itop_contract in contracts)") }
                    if let terms = terms(value, at: entryPath) { result.byID[id] = terms }
                } else {
                    guard !name.isEmpty, name.count <= 255 else {
                        issue(entryPath, key, "must be a contract type's name, as the helpdesk shows it")
                        continue
                    }
                    if result.byType[name] != nil { issue(entryPath, key, "duplicate contract type") }
                    if let terms = terms(value, at: entryPath) { result.byType[name] = terms }
                }
            }
        }
        if map.isEmpty, issues.allSatisfy({ !$0.path.hasPrefix(path) }) {
            issue(path, node, "gives no terms: add by_id, by_type or default")
        }
        return result
    }

    /// `- { id: globex, itop_contract: 1, quota_hours: 40 }`: the file names the contract and gives its terms; iTop's
    /// CustomerContract 1 gives its organisation, services and dates. Returns the iTop id and the terms, which carry
    /// the HourLedger id.
    mutating func declaredITopContract(_ given: Node.Mapping, at path: String) -> (Int, HelpdeskContractTerms.Terms)? {
        var rest: [(Node, Node)] = []
        var id: String?
        var itopID: Int?
        for (key, value) in given {
            switch key.string {
            case "id":
                id = value.string
            case "itop_contract":
                itopID = value.int.flatMap { (1...Int(Int32.max)).contains($0) ? $0 : nil }
                if itopID == nil { issue("\(path).itop_contract", value, "must be an iTop CustomerContract id (a positive number)") }
            default:
                rest.append((key, value))
            }
        }
        guard let id, !id.isEmpty, id.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            issue("\(path).id", nil, "missing, or not only letters, digits, '-', '_' or '.'")
            return nil
        }
        guard let itopID, var terms = terms(.mapping(Node.Mapping(rest)), at: path) else { return nil }
        terms.id = id
        return (itopID, terms)
    }

    /// One set of terms, read as a contract whose id, scope and start the helpdesk fills in later.
    mutating func terms(_ node: Node, at path: String) -> HelpdeskContractTerms.Terms? {
        let fromHelpdesk = ["id", "name", "entity", "org", "include_subentities", "starts", "expires", "glpi_contract"]
        guard case .mapping(let given) = node else {
            issue(path, node, "must be a mapping of contract terms (quota_hours, period, rounding, billing…)")
            return nil
        }
        var pairs: [(Node, Node)] = []
        var refused = false
        for (key, value) in given {
            if let name = key.string, fromHelpdesk.contains(name) {
                issue("\(path).\(name)", key, "comes from the helpdesk's contract; terms give hours, period, rounding, billing and alerts")
                refused = true
                continue
            }
            pairs.append((key, value))
        }
        pairs += [(Node("id"), Node("terms")), (Node(helpdeskKind == .itop ? "org" : "entity"), Node("0")), (Node("starts"), Node("2000-01-01"))]
        guard let template = contract(.mapping(Node.Mapping(pairs)), at: path), !refused else { return nil }
        let periodGiven = given.contains { $0.key.string == "period" }
        return HelpdeskContractTerms.Terms(template: template, period: periodGiven ? template.period : nil)
    }

    /// `glpi_criteria: [{field: 12, searchtype: equals, value: notold}, {link: AND, field: 14, searchtype: equals, value: 2}]`:
    /// checked here as far as the file can say; GLPI checks the fields at check-config and on reload.
    mutating func glpiCriteria(_ node: Node, at path: String) -> String? {
        guard case .sequence(let sequence) = node else {
            issue(path, node, "must be a list of criteria, each {field, searchtype, value} and, after the first, a link")
            return nil
        }
        var criteria: [GLPICriteria.Criterion] = []
        for (index, item) in sequence.enumerated() {
            let itemPath = "\(path)[\(index)]"
            guard let map = mapping(item, at: itemPath, allowed: ["link", "field", "searchtype", "value"]) else { return nil }
            let field = int(map, "field", at: itemPath, range: 1...100_000)
            let searchtype = string(map, "searchtype", at: itemPath)
            let value = string(map, "value", at: itemPath)
            for (key, given) in [("field", field != nil || map["field"] != nil), ("searchtype", searchtype != nil || map["searchtype"] != nil),
                                 ("value", value != nil || map["value"] != nil)] where !given {
                issue("\(itemPath).\(key)", item, "missing")
            }
            guard let field, let searchtype, let value else { return nil }
            criteria.append(GLPICriteria.Criterion(link: string(map, "link", at: itemPath), field: field, searchtype: searchtype, value: value))
        }
        do {
            return try GLPICriteria(criteria: criteria).description
        } catch {
            issue(path, node, "\(error)")
            return nil
        }
    }

    mutating func contract(_ node: Node, at path: String) -> Contract? {
        let itop = helpdeskKind == .itop
        let keys = ["id", "name", itop ? "org" : "entity", "include_subentities", "match", "priority", "quota_hours", "period", "starts", "expires",
                    "timezone", "rounding", "approval", "billing", "currency", "rate", "overage_rate", "block_fee", "invoice_lines",
                    "rates", "carry_over", "alerts", "visible_to", "customers_see_money", "customer"] + (itop ? [] : ["glpi_contract"])
        guard let map = mapping(node, at: path, allowed: keys) else { return nil }
        let id = string(map, "id", at: path)
        if id == nil { issue("\(path).id", node, "missing") }
        if let id, id.isEmpty || !id.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) {
            issue("\(path).id", map["id"], "must be letters, digits, '-', '_' or '.'")
        }
        let name = string(map, "name", at: path) ?? id ?? ""
        let scopeKey = itop ? "org" : "entity"
        let entity = int(map, scopeKey, at: path, range: 0...Int(Int32.max))
        let subentities = bool(map, "include_subentities", at: path) ?? false
        var rule = MatchRule()
        let matchPath = "\(path).match"
        var oqlGiven = false
        if let matchNode = map["match"] {
            if itop, let match = mapping(matchNode, at: matchPath, allowed: ["orgs", "teams", "services", "subcategories", "classes", "oql"]) {
                rule.entities = intList(match, "orgs", at: matchPath)
                rule.groups = intList(match, "teams", at: matchPath)
                rule.services = intList(match, "services", at: matchPath)
                rule.categories = intList(match, "subcategories", at: matchPath)
                rule.classes = stringList(match, "classes", at: matchPath)
                if let oql = string(match, "oql", at: matchPath) {
                    oqlGiven = true
                    do {
                        _ = try OQL(oql)
                        rule.query = oql.trimmingCharacters(in: .whitespacesAndNewlines)
                    } catch {
                        issue("\(matchPath).oql", match["oql"], "\(error)")
                    }
                }
            } else if !itop, let match = mapping(matchNode, at: matchPath, allowed: ["groups", "categories", "glpi_criteria"]) {
                rule.groups = intList(match, "groups", at: matchPath)
                rule.categories = intList(match, "categories", at: matchPath)
                if let criteria = match["glpi_criteria"] { rule.query = glpiCriteria(criteria, at: "\(matchPath).glpi_criteria") }
            }
        }
        if !itop { rule.linkedContract = int(map, "glpi_contract", at: path, range: 1...Int(Int32.max)) }
        if itop, entity == nil, map["org"] == nil, rule.entities == nil, !oqlGiven {
            issue("\(path).org", node, "missing: give org (the iTop organization id), match.orgs or match.oql, so the contract covers one customer")
        } else if !itop, entity == nil, map["entity"] == nil {
            issue("\(path).entity", node, "missing (the helpdesk entity id)")
        }
        let priority = int(map, "priority", at: path, range: Bounds.priority) ?? 0
        let billing = self.billing(map, at: path)
        let quotaHours = number(map, "quota_hours", at: path) ?? (billing?.mode == .block || map["quota_hours"] != nil ? nil : 0)
        if quotaHours == nil, map["quota_hours"] == nil { issue("\(path).quota_hours", node, "missing (a block contract needs its hours per period)") }

        let periodText = string(map, "period", at: path) ?? "monthly"
        let period = PeriodKind(rawValue: periodText)
        if period == nil { issue("\(path).period", map["period"], "must be monthly, quarterly, yearly or none, got '\(periodText)'") }
        if map["starts"] == nil { issue("\(path).starts", node, "missing (YYYY-MM-DD)") }
        let starts = day(map, "starts", at: path)
        let expires = day(map, "expires", at: path)
        if let expires, let starts, expires < starts { issue("\(path).expires", map["expires"], "is before starts") }
        let expiresValid = map["expires"] == nil || expires != nil
        let timeZone = string(map, "timezone", at: path) ?? "UTC"
        if TimeZone(identifier: timeZone) == nil { issue("\(path).timezone", map["timezone"], "unknown time zone '\(timeZone)'") }
        let rounding = self.rounding(map["rounding"], at: "\(path).rounding")
        let approval = string(map, "approval", at: path) ?? "none"
        if !["none", "required"].contains(approval) { issue("\(path).approval", map["approval"], "must be none or required, got '\(approval)'") }
        var carryOver: CarryOverPolicy?
        if let carryNode = map["carry_over"],
           let carry = mapping(carryNode, at: "\(path).carry_over", allowed: ["max_hours", "expires_after_periods"]) {
            let maxHours = number(carry, "max_hours", at: "\(path).carry_over")
            if maxHours == nil, carry["max_hours"] == nil { issue("\(path).carry_over.max_hours", carryNode, "missing (the most hours that move to the next period)") }
            let expiresAfter = carry["expires_after_periods"]?.string == "never" ? nil
                : (int(carry, "expires_after_periods", at: "\(path).carry_over", range: 1...120) ?? 1)
            if billing?.mode != .block { issue("\(path).carry_over", carryNode, "only a block contract carries hours over") }
            if period == PeriodKind.none { issue("\(path).carry_over", carryNode, "a one-off block (period: none) has no next period to carry into") }
            if let maxHours { carryOver = CarryOverPolicy(maxSeconds: Int((maxHours * 3600).rounded()), expiresAfterPeriods: expiresAfter) }
        }
        var thresholds: [Int] = []
        var alertUntimed = false
        if let alertsNode = map["alerts"], let alerts = mapping(alertsNode, at: "\(path).alerts", allowed: ["thresholds", "untimed"]) {
            alertUntimed = bool(alerts, "untimed", at: "\(path).alerts") ?? false
            thresholds = intList(alerts, "thresholds", at: "\(path).alerts") ?? []
            for (index, value) in thresholds.enumerated() where !(1...1000).contains(value) {
                issue("\(path).alerts.thresholds[\(index)]", alertsNode, "must be a percentage from 1 to 1000, got \(value)")
            }
            if Set(thresholds).count != thresholds.count { issue("\(path).alerts.thresholds", alertsNode, "lists a threshold twice") }
            if billing?.mode != .block { issue("\(path).alerts", alertsNode, "thresholds are shares of a block: only a block contract has them") }
        }
        var customer = string(map, "customer", at: path)
        if let text = customer, text.isEmpty || text.count > 200 || text.contains(where: { $0.isNewline || $0.asciiValue.map { $0 < 32 } == true }) {
            issue("\(path).customer", map["customer"], "must be one line of 1 to 200 characters")
            customer = nil
        }
        guard let id, entity != nil || map[scopeKey] == nil, let quotaHours, let period, let starts, expiresValid, let rounding, let billing,
              TimeZone(identifier: timeZone) != nil else { return nil }
        // Quotas are kept in whole seconds; 0.1 h is 360 s exactly.
        let quotaSeconds = Int((quotaHours * 3600).rounded())
        let audience = self.audience(map["visible_to"], at: "\(path).visible_to")
        let seeMoney = bool(map, "customers_see_money", at: path) ?? false
        var contract = Contract(id: id, name: name, entity: entity, includeSubentities: subentities, match: rule, priority: priority,
                                quotaSeconds: quotaSeconds, period: period, starts: starts, expires: expires, timeZone: timeZone, rounding: rounding,
                                approvalRequired: approval == "required", billing: billing, carryOver: carryOver, alertThresholds: thresholds.sorted())
        contract.visibleTo = audience
        contract.customersSeeMoney = seeMoney
        contract.alertUntimed = alertUntimed
        contract.customer = customer
        return contract
    }

    /// Billing mode, currency and rates (integer minor units per hour, e.g. 9500 for 95.00).
    mutating func billing(_ map: [String: Node], at path: String) -> Billing? {
        let modeText = string(map, "billing", at: path) ?? "block"
        let mode = Billing.Mode(rawValue: modeText)
        if mode == nil { issue("\(path).billing", map["billing"], "must be block, payg or unlimited, got '\(modeText)'") }
        let currency = string(map, "currency", at: path) ?? "EUR"
        if currency.count != 3 || !currency.allSatisfy({ $0.isASCII && $0.isUppercase }) {
            issue("\(path).currency", map["currency"], "must be an ISO 4217 code such as EUR or USD, got '\(currency)'")
        }
        let money = 0...100_000_000
        let rate = int(map, "rate", at: path, range: money)
        let overageRate = int(map, "overage_rate", at: path, range: money)
        let blockFee = int(map, "block_fee", at: path, range: 0...1_000_000_000)
        let linesText = string(map, "invoice_lines", at: path) ?? "ticket"
        let lines = Billing.LineGrouping(rawValue: linesText)
        if lines == nil { issue("\(path).invoice_lines", map["invoice_lines"], "must be entry or ticket, got '\(linesText)'") }
        var technicianRates: [Int: Int] = [:]
        if let ratesNode = map["rates"], let rates = mapping(ratesNode, at: "\(path).rates", allowed: ["by_technician"]),
           let byNode = rates["by_technician"] {
            if case .mapping(let pairs) = byNode {
                for (key, value) in pairs {
                    guard let technician = key.string.flatMap({ Int($0) }), let amount = value.string.flatMap({ Int($0) }), money.contains(amount) else {
                        issue("\(path).rates.by_technician", key, "each entry is <helpdesk user id>: <rate in minor units per hour>")
                        continue
                    }
                    technicianRates[technician] = amount
                }
            } else {
                issue("\(path).rates.by_technician", byNode, "must be a mapping of helpdesk user id to rate")
            }
        }
        if mode == .payg, rate == nil, map["rate"] == nil { issue("\(path).rate", map["billing"], "a payg contract needs a rate (minor units per hour)") }
        if mode == .unlimited, rate != nil || overageRate != nil || blockFee != nil {
            issue("\(path).billing", map["billing"], "an unlimited contract is never invoiced: remove rate, overage_rate and block_fee")
        }
        guard let mode, let lines else { return nil }
        return Billing(mode: mode, currency: currency, rate: rate, overageRate: overageRate, blockFee: blockFee,
                       technicianRates: technicianRates, lines: lines)
    }

    mutating func rounding(_ node: Node?, at path: String) -> RoundingPolicy? {
        guard let node else { return RoundingPolicy.none }
        guard let map = mapping(node, at: path, allowed: ["increment_minutes", "mode", "minimum_minutes"]) else { return nil }
        let modeText = string(map, "mode", at: path) ?? "up"
        let mode = RoundingPolicy.Mode(rawValue: modeText)
        if mode == nil { issue("\(path).mode", map["mode"], "must be up, nearest or none, got '\(modeText)'") }
        let increment = int(map, "increment_minutes", at: path)
        if let increment, !(1...1440).contains(increment) {
            issue("\(path).increment_minutes", map["increment_minutes"], "impossible increment \(increment): must be 1 to 1440 minutes")
            return nil
        }
        if increment == nil, mode != RoundingPolicy.Mode.none, mode != nil {
            issue("\(path).increment_minutes", node, "required when mode is \(modeText)")
        }
        let minimum = int(map, "minimum_minutes", at: path, range: 0...1440) ?? 0
        guard let mode else { return nil }
        if mode == .none { return RoundingPolicy(incrementSeconds: 0, mode: .none, minimumSeconds: minimum * 60) }
        guard let increment else { return nil }
        return RoundingPolicy(incrementSeconds: increment * 60, mode: mode, minimumSeconds: minimum * 60)
    }
}
