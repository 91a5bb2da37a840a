import Crypto
import Foundation
import HourLedgerCore
import HourLedgerHTTPClient
import HourLedgerHelpdeskKit
import HourLedgerUseCases
import Logging

public struct GLPIConfiguration: Sendable {
    public enum Credentials: Sendable {
        /// The user's remote access key: `Authorization: user_token …`.
        case userToken(String)
        /// Login and password: `Authorization: Basic …`.
        case password(login: String, password: String)
    }

    /// The API root, ending in `apirest.php`.
    public var url: String
    public var appToken: String?
    public var credentials: Credentials
    /// GLPI's session time zone: its dates carry no offset.
    public var timeZone: TimeZone
    /// Rows per search page; GLPI caps it at `Accept-Range` (1000 by default).
    public var pageSize: Int
    /// Parallel task reads.
    public var concurrency: Int
    /// The task category (`taskcategories_id`) of the tasks HourLedger writes back; 0 leaves it unset.
    public var taskCategory: Int
    /// Tasks per page when a first sync lists every task across tickets.
    public var taskPageSize: Int = 5000

    public init(url: String, appToken: String?, credentials: Credentials, timeZone: TimeZone = TimeZone(identifier: "UTC")!,
                pageSize: Int = 1000, concurrency: Int = 4, taskCategory: Int = 0) {
        self.url = url.hasSuffix("/") ? String(url.dropLast()) : url
        self.appToken = appToken
        self.credentials = credentials
        self.timeZone = timeZone
        self.pageSize = pageSize
        self.concurrency = concurrency
        self.taskCategory = taskCategory
    }
}

/// GLPI 10's legacy REST API (`apirest.php`), as recorded in shared/fixtures/glpi.
///
/// A poll costs: one search page per `pageSize` changed tickets, one getSubItems per ticket whose tasks may have
/// changed, and, only when a name is new, one list per dropdown (entities, groups, categories) to learn ids.
public actor GLPIConnector: HelpdeskTaskWriter {
    public nonisolated let profile = GLPIConnector.glpiProfile

    /// GLPI's words, its solved (5) and closed (6) statuses, its purge, and how invoices name its tasks.
    public static let glpiProfile = HelpdeskProfile(kind: .glpi, terms: .glpi, finishedStatuses: [5, 6], vanished: .purged,
                                                    taskReference: "glpi_task")
    let configuration: GLPIConfiguration
    private let http: any HTTPSending
    private let logger: Logger
    private var sessionToken: String?
    private var sessionOpening: Task<String, any Error>?
    private var requests = 0
    private var names = DropdownNames()
    /// When the session was last opened again because GLPI refused a read: at most once a minute.
    private var lastRightsRefresh: ContinuousClock.Instant?

    public nonisolated func stamp(_ stamp: String, movedBackBy seconds: Int) -> String? {
        LocalStamp.movedBack(stamp, by: seconds, timeZone: configuration.timeZone)
    }

    /// Columns read from the ticket search: id, name, entity, category, status, type, date_mod, assigned groups, then the
    /// task summary (number of tasks, total duration, task durations, dates and privacy) that tells whether to re-read tasks.
    public static let ticketColumns = [2, 1, 80, 7, 12, 14, 19, 8, 28, 45, 96, 97, 92]

    public init(configuration: GLPIConfiguration, http: any HTTPSending, logger: Logger = Logger(label: "hourledger.glpi")) {
        self.configuration = configuration
        self.http = http
        self.logger = logger
    }

    public func requestCount() -> Int { requests }

    // MARK: Session

    private var authorization: String {
        switch configuration.credentials {
        case .userToken(let token): return "user_token \(token)"
        case .password(let login, let password): return "Basic " + Data("\(login):\(password)".utf8).base64EncodedString()
        }
    }

    func baseHeaders() -> [(String, String)] {
        var headers = [("Content-Type", "application/json")]
        if let appToken = configuration.appToken { headers.append(("App-Token", appToken)) }
        return headers
    }

    private func openSession() async throws -> String {
        if let sessionToken { return sessionToken }
        if let sessionOpening { return try await sessionOpening.value }
        let task = Task { () throws -> String in
            var headers = self.baseHeaders()
            headers.append(("Authorization", self.authorization))
            let response = try await self.transport(HTTPRequest(url: self.configuration.url + "/initSession", headers: headers), operation: "initSession")
            let body = try self.decode(response, operation: "initSession")
            guard let token = body["session_token"]?.string else {
                throw HelpdeskError(.malformedResponse, operation: "initSession", detail: "no session_token in the answer")
            }
            return token
        }
        sessionOpening = task
        defer { sessionOpening = nil }
        let token = try await task.value
        sessionToken = token
        logger.info("GLPI session opened", metadata: ["url": "\(configuration.url)"])
        return token
    }

    public func close() async {
        guard let token = sessionToken else { return }
        await dropSession(token)
    }

    /// Forgets the session and asks GLPI to end it.
    func dropSession(_ token: String) async {
        if sessionToken == token { sessionToken = nil }
        var headers = baseHeaders()
        headers.append(("Session-Token", token))
        do {
            _ = try await transport(HTTPRequest(url: configuration.url + "/killSession", headers: headers, timeout: .seconds(5)), operation: "killSession")
        } catch {
            logger.warning("killSession failed", metadata: ["error": "\(error)"])
        }
    }

    // MARK: Requests

    func transport(_ request: HTTPRequest, operation: String) async throws -> HTTPResponse {
        requests += 1
        do {
            return try await http.send(request)
        } catch let error as HTTPClientError {
            throw HelpdeskError(transport: error, operation: operation)
        }
    }

    /// Sends an authenticated request; a session GLPI has forgotten is reopened once, transparently.
    func call(method: String = "GET", _ path: String, query: [(String, String)] = [], body: [UInt8]? = nil, operation: String) async throws -> HTTPResponse {
        var attempt = 0
        while true {
            attempt += 1
            let token = try await openSession()
            var headers = baseHeaders()
            headers.append(("Session-Token", token))
            let url = configuration.url + "/" + path + (query.isEmpty ? "" : "?" + Self.encode(query))
            let response = try await transport(HTTPRequest(method: method, url: url, headers: headers, body: body), operation: operation)
            if response.status == 401, attempt == 1, Self.errorCode(response) == "ERROR_SESSION_TOKEN_INVALID" {
                logger.info("GLPI session expired, opening a new one", metadata: ["operation": "\(operation)"])
                if sessionToken == token { sessionToken = nil }
                continue
            }
            // A GLPI session sees only the entities that existed when it logged in: a ticket of a customer entity
            // created since answers 403. A fresh session sees it; tried once, and at most once a minute, so a right
            // that is really missing costs one extra login, not one per request.
            if response.status == 403, attempt == 1, Self.errorCode(response) == "ERROR_RIGHT_MISSING",
               lastRightsRefresh.map({ ContinuousClock.now - $0 > .seconds(60) }) ?? true {
                lastRightsRefresh = .now
                logger.info("GLPI refused a read; logging in again, since a session does not see entities created after it",
                            metadata: ["operation": "\(operation)"])
                if sessionToken == token { await dropSession(token) }
                continue
            }
            return response
        }
    }

    static func errorCode(_ response: HTTPResponse) -> String? {
        guard let value = try? JSONValue.parse(response.body), let list = value.array, let code = list.first?.string else { return nil }
        return code
    }

    /// The decoded body of a 2xx answer, or the GLPI error it carries as a typed error.
    public nonisolated func decode(_ response: HTTPResponse, operation: String) throws -> JSONValue {
        try Self.decode(response, operation: operation)
    }

    public nonisolated static func decode(_ response: HTTPResponse, operation: String) throws -> JSONValue {
        if (200..<300).contains(response.status) {
            do {
                return try JSONValue.parse(response.body)
            } catch {
                throw HelpdeskError(.malformedResponse, operation: operation, detail: "HTTP \(response.status) with a body that is not JSON")
            }
        }
        let parsed = try? JSONValue.parse(response.body)
        let code = parsed?.array?.first?.string
        let message = parsed?.array.flatMap { $0.count > 1 ? $0[1].string : nil }.map { Self.shortMessage($0) } ?? ""
        let kind: HelpdeskError.Kind
        switch (response.status, code) {
        case (_, "ERROR_RIGHT_MISSING"), (403, _): kind = .permission
        case (_, "ERROR_GLPI_LOGIN"), (_, "ERROR_GLPI_LOGIN_USER_TOKEN"), (_, "ERROR_WRONG_APP_TOKEN_PARAMETER"),
             (_, "ERROR_APP_TOKEN_PARAMETERS_MISSING"), (_, "ERROR_SESSION_TOKEN_INVALID"), (401, _): kind = .authentication
        case (_, "ERROR_ITEM_NOT_FOUND"), (404, _): kind = .notFound
        case (500..., _): kind = .serverError
        case (400..<500, _): kind = .rejected
        default: kind = .malformedResponse
        }
        return try { throw HelpdeskError(kind, operation: operation, code: code, detail: message.isEmpty ? "HTTP \(response.status)" : message) }()
    }

    /// GLPI appends "; view documentation in your browser at …" to every message.
    nonisolated static func shortMessage(_ message: String) -> String {
        if let range = message.range(of: "; view documentation") { return String(message[..<range.lowerBound]) }
        return message
    }

    public nonisolated static func encode(_ query: [(String, String)]) -> String { FormEncoding.encode(query) }

    // MARK: Paging

    /// Parses `Content-Range: a-b/total` (header, or the body's `content-range` field).
    public nonisolated static func contentRange(_ text: String?) -> (first: Int, last: Int, total: Int)? {
        guard let text else { return nil }
        let parts = text.split(whereSeparator: { $0 == "-" || $0 == "/" })
        guard parts.count == 3, let a = Int(parts[0]), let b = Int(parts[1]), let t = Int(parts[2]) else { return nil }
        return (a, b, t)
    }

    /// One page of a list, parsed off the actor.
    private struct Page<Row: Sendable>: Sendable {
        var rows: [Row] = []
        /// Rows GLPI says this page holds.
        var count = 0
        var total = 0
        /// GLPI said there is more than this page (206, or a Content-Range short of the total).
        var partial = false
        /// 400 ERROR_RANGE_EXCEED_TOTAL: the list ends before this page.
        var pastTheEnd = false
    }

    private nonisolated func page<Row: Sendable>(_ path: String, query: [(String, String)], start: Int, operation: String,
                                     rows: @escaping @Sendable (JSONValue) throws -> [Row]) async throws -> Page<Row> {
        let response = try await call(path, query: query + [("range", "\(start)-\(start + configuration.pageSize - 1)")], operation: operation)
        return try Self.parsePage(response, operation: operation, rows: rows)
    }

    private nonisolated static func parsePage<Row: Sendable>(_ response: HTTPResponse, operation: String,
                                                             rows: @Sendable (JSONValue) throws -> [Row]) throws -> Page<Row> {
        var page = Page<Row>()
        if response.status == 400, errorCode(response) == "ERROR_RANGE_EXCEED_TOTAL" {
            page.pastTheEnd = true
            return page
        }
        let body = try decode(response, operation: operation)
        page.rows = try rows(body)
        page.count = body["count"]?.int ?? body.array?.count ?? body["data"]?.list.count ?? 0
        let range = contentRange(response.header("Content-Range") ?? body["content-range"]?.string)
        page.total = body["totalcount"]?.int ?? range?.total ?? page.rows.count
        page.partial = !(response.status == 200 && range == nil)
        return page
    }

    /// Reads every page of a list endpoint (getItems, getSubItems, search), following `Content-Range`. The first
    /// page tells the total; the others are then read `concurrency` at a time and parsed as they arrive, so a
    /// hundred search pages take the time of the wire rather than a hundred round trips. `stable` is false when the
    /// list moved while it was paged (its total changed, or a page came back short or past the end).
    func pages<Row: Sendable>(_ path: String, query: [(String, String)], operation: String, rows: @escaping @Sendable (JSONValue) throws -> [Row])
        async throws -> (rows: [Row], stable: Bool)
    {
        let first = try await page(path, query: query, start: 0, operation: operation, rows: rows)
        if first.pastTheEnd { return ([], true) }
        guard first.count > 0, first.count < first.total, first.partial else { return (first.rows, true) }
        let size = first.count
        let starts = Array(stride(from: size, to: first.total, by: size))
        let pages = try await concurrentMap(starts, concurrency: configuration.concurrency) { start in
            try await self.page(path, query: query, start: start, operation: operation, rows: rows)
        }
        var all = first.rows
        var stable = true
        for (start, page) in zip(starts, pages) {
            all.append(contentsOf: page.rows)
            if page.pastTheEnd || page.total != first.total || (page.count < size && start + size < first.total) { stable = false }
        }
        return (all, stable)
    }

    // MARK: Tickets

    public func changedTickets(since: String?) async throws -> ChangeBatch {
        var criteria: [(String, String)] = []
        if let since {
            criteria += [("criteria[0][field]", "19"), ("criteria[0][searchtype]", "morethan"), ("criteria[0][value]", since)]
        }
        let result = try await searchTickets(criteria: criteria)
        var highWater: String?
        for row in result.rows where highWater.map({ row.dateMod > $0 }) ?? true { highWater = row.dateMod }
        let (tickets, failures) = try await resolve(result.rows)
        return ChangeBatch(tickets: tickets, highWater: highWater, complete: result.stable, failures: failures)
    }

    /// Ids are read in OR-linked searches of 100, so a thousand hinted tickets cost ten searches, not a thousand reads.
    public func tickets(ids: [Int]) async throws -> ChangeBatch {
        var rows: [SearchRow] = []
        for criteria in Self.idCriteria(ids) { rows += try await searchTickets(criteria: criteria).rows }
        let (tickets, failures) = try await resolve(rows)
        return ChangeBatch(tickets: tickets, failures: failures)
    }

    // MARK: Rights

    /// The rights the daemon needs, as GLPI's profile bits: (right, bits any of which suffices, need, where to grant).
    static func neededRights(followups: Bool) -> [(right: String, bits: Int, need: String, grant: String)] {
        var rights: [(right: String, bits: Int, need: String, grant: String)] = [
            ("ticket", 1024, "see every ticket", "Assistance > Tickets: See all tickets"),
            ("task", 8192, "see private tasks", "Assistance > Tasks: See private tasks"),
            ("task", 4096, "add private tasks to any ticket", "Assistance > Tasks: Add to all tickets"),
            ("task", 1024 | 2, "update the tasks it wrote", "Assistance > Tasks: Update all (or Update my tasks)"),
            ("task", 16, "purge the tasks of deleted entries", "Assistance > Tasks: Delete permanently"),
        ]
        if followups {
            rights += [("followup", 4096, "add private followups (alerts) to any ticket", "Assistance > Followups: Add to all tickets"),
                       ("followup", 8192, "see private followups", "Assistance > Followups: See private followups")]
        }
        return rights
    }

    public func checkAccess(followups: Bool) async -> AccessReport {
        var report = AccessReport()
        do {
            _ = try await openSession()
        } catch let error as HelpdeskError {
            report.loginFailure = Self.loginFailure(error, url: configuration.url)
            return report
        } catch {
            report.loginFailure = "\(error)"
            return report
        }
        var rights: [String: Int]?
        do {
            let session = try decode(try await call("getFullSession", operation: "getFullSession"), operation: "getFullSession")["session"]
            let profile = session?["glpiactiveprofile"]
            report.account = "\(session?["glpiname"]?.string ?? "?") (profile \"\(profile?["name"]?.string ?? "?")\")"
            var found: [String: Int] = [:]
            for key in ["ticket", "task", "followup", "entity", "group", "itilcategory"] { found[key] = profile?[key]?.int ?? 0 }
            rights = found
        } catch {
            report.checks.append(AccessCheck("read its own profile", .unchecked, "\(error)"))
        }
        // Reads are tried for real: what GLPI answers is the truth, whatever the profile says.
        let probes: [(need: String, path: String, query: [(String, String)], grant: String)] = [
            ("read tickets", "search/Ticket", [("forcedisplay[0]", "2"), ("range", "0-0")], "Assistance > Tickets: See all tickets"),
            ("read tasks", "TicketTask", [("range", "0-0")], "Assistance > Tasks: See public tasks and See private tasks"),
            ("read entities", "Entity", [("range", "0-0")], "Administration > Entities: Read"),
            ("read groups", "Group", [("range", "0-0")], "Administration > Groups: Read"),
            ("read ITIL categories", "ITILCategory", [("range", "0-0")], "Setup > Dropdowns > ITIL categories: Read"),
        ] + (followups ? [("read followups", "ITILFollowup", [("range", "0-0")], "Assistance > Followups: See public and private followups")] : [])
        for probe in probes {
            do {
                _ = try decode(try await call(probe.path, query: probe.query, operation: "getItems \(probe.path)"), operation: probe.path)
                report.checks.append(AccessCheck(probe.need, .ok))
            } catch let error as HelpdeskError where error.kind == .permission {
                report.checks.append(AccessCheck(probe.need, .missing, "GLPI answered \(error.code ?? "403"); grant \(probe.grant)"))
            } catch {
                report.checks.append(AccessCheck(probe.need, .missing, "\(error)"))
            }
        }
        // Writes cannot be tried without writing: the profile's bits tell.
        for need in Self.neededRights(followups: followups) {
            guard let rights else {
                report.checks.append(AccessCheck(need.need, .unchecked, "the profile could not be read; needs \(need.grant)"))
                continue
            }
            let granted = (rights[need.right] ?? 0) & need.bits != 0
            report.checks.append(AccessCheck(need.need, granted ? .ok : .missing, granted ? "" : "grant \(need.grant)"))
        }
        await close()
        return report
    }

    /// A failed login in the operator's words: which credential, or why the URL is not GLPI's API.
    static func loginFailure(_ error: HelpdeskError, url: String) -> String {
        switch (error.kind, error.code) {
        case (.unreachable, _): return "cannot reach GLPI at \(url): \(error.detail)"
        case (_, "ERROR_WRONG_APP_TOKEN_PARAMETER"): return "GLPI refused the app_token (Setup > General > API: the API client's token)"
        case (_, "ERROR_APP_TOKEN_PARAMETERS_MISSING"): return "GLPI wants an app_token for this API client; set helpdesk.app_token(_file)"
        case (_, "ERROR_GLPI_LOGIN_USER_TOKEN"): return "GLPI refused the user_token (the account's remote access key)"
        case (_, "ERROR_GLPI_LOGIN"): return "GLPI refused the username or password"
        case (_, "ERROR_LOGIN_PARAMETERS_MISSING"): return "GLPI got no credentials; set user_token or username and password"
        case (.notFound, _), (.malformedResponse, _), (.rejected, nil):
            return "\(url) does not answer as GLPI's REST API (\(error.detail)); the url ends in /apirest.php"
        default: return "GLPI refused the login: \(error)"
        }
    }

    // MARK: Trash and purge


    /// The ids of the trash's tickets matching `criteria` (GLPI's search with `is_deleted=1`).
    private func trashSearch(_ criteria: [(String, String)]) async throws -> Set<Int> {
        let query = criteria + [("is_deleted", "1"), ("forcedisplay[0]", "2"), ("forcedisplay[1]", "19"), ("sort", "2"), ("order", "ASC")]
        return Set(try await pages("search/Ticket", query: query, operation: "search Ticket (trash)") { body in
            (body["data"]?.list ?? []).compactMap { $0["2"]?.int }
        }.rows)
    }

    public func trashed(among ids: [Int]) async throws -> Set<Int> {
        var found = Set<Int>()
        for criteria in Self.idCriteria(ids) { found.formUnion(try await trashSearch(criteria)) }
        return found
    }

    /// Search criteria selecting these ticket ids, OR-linked, 100 to a search.
    static func idCriteria(_ ids: [Int]) -> [[(String, String)]] {
        let unique = Array(Set(ids)).sorted()
        return stride(from: 0, to: unique.count, by: 100).map { start in
            unique[start..<min(start + 100, unique.count)].enumerated().flatMap { index, id in
                [("criteria[\(index)][link]", "OR"), ("criteria[\(index)][field]", "2"), ("criteria[\(index)][searchtype]", "equals"),
                 ("criteria[\(index)][value]", "\(id)")]
            }
        }
    }

    public func trashed(since: String?) async throws -> Set<Int> {
        try await trashSearch(since.map { [("criteria[0][field]", "19"), ("criteria[0][searchtype]", "morethan"), ("criteria[0][value]", $0)] } ?? [])
    }

    /// The search's total with a one-row page.
    public func ticketCount() async throws -> Int {
        let response = try await call("search/Ticket", query: [("forcedisplay[0]", "2"), ("range", "0-0")], operation: "search Ticket (count)")
        return try decode(response, operation: "search Ticket (count)")["totalcount"]?.int ?? 0
    }

    public func allTicketIDs() async throws -> Set<Int> {
        let query = [("forcedisplay[0]", "2"), ("sort", "2"), ("order", "ASC")]
        return Set(try await pages("search/Ticket", query: query, operation: "search Ticket (ids)") { body in
            (body["data"]?.list ?? []).compactMap { $0["2"]?.int }
        }.rows)
    }

    /// Every ticket's total duration (search option 45, which GLPI keeps as the sum of its tasks) and date_mod, in
    /// one paged search of three columns: what a nightly reconciliation costs.
    public func ticketTotals() async throws -> TicketTotals? {
        let query = [("forcedisplay[0]", "2"), ("forcedisplay[1]", "19"), ("forcedisplay[2]", "45"), ("sort", "2"), ("order", "ASC")]
        var totals = TicketTotals()
        for (id, stamp, seconds) in try await pages("search/Ticket", query: query, operation: "search Ticket (totals)", rows: { body in
            (body["data"]?.list ?? []).compactMap { row -> (Int, String, Int)? in
                guard let id = row["2"]?.int else { return nil }
                return (id, row["19"]?.string ?? "", row["45"]?.int ?? 0)
            }
        }).rows {
            // At most a hundred years of tasks: anything else is not a duration.
            guard (0...100 * Bounds.helpdeskTaskSeconds.upperBound).contains(seconds) else {
                throw HelpdeskError(.malformedResponse, operation: "search Ticket (totals)", detail: "ticket \(id) has a total of \(seconds) s")
            }
            totals.seconds[id] = seconds
            totals.dateMods[id] = stamp
        }
        return totals
    }

    /// Search option 193 (the ticket's contracts, through glpi_tickets_contracts) equals the contract id, as recorded
    /// in search_Ticket_10_by_contract.
    public func ticketsLinked(toContract id: Int) async throws -> Set<Int> {
        let query = [("criteria[0][field]", "193"), ("criteria[0][searchtype]", "equals"), ("criteria[0][value]", "\(id)"),
                     ("forcedisplay[0]", "2"), ("sort", "2"), ("order", "ASC")]
        return Set(try await pages("search/Ticket", query: query, operation: "search Ticket (linked to contract \(id))") { body in
            (body["data"]?.list ?? []).compactMap { $0["2"]?.int }
        }.rows)
    }

    /// Every contract the daemon may see (getItems_Contract), trashed ones left out as getItems leaves them out.
    /// Read twice: with raw ids for the entity, and with `expand_dropdowns` for the contract type's name, which is what
    /// the terms are keyed by; the two are joined by contract id. A template (`is_template`) is not a contract.
    public func helpdeskContracts() async throws -> [HelpdeskContract] {
        let operation = "getItems Contract"
        let raw = try await pages("Contract", query: [], operation: operation) { body in
            try (body.array ?? []).map { try Self.contract($0, operation: operation) }
        }
        let typeNames = try await pages("Contract", query: [("expand_dropdowns", "true")], operation: operation) { body in
            (body.array ?? []).compactMap { item -> (Int, String)? in
                guard let id = item["id"]?.int else { return nil }
                return (id, TextRules.storable(HTMLEntities.decode(item["contracttypes_id"]?.string ?? "")))
            }
        }
        // A contract missing from the list is taken as ended: a list that moved while it was paged says nothing.
        guard raw.stable, typeNames.stable else {
            throw HelpdeskError(.serverError, operation: operation, detail: "the contract list changed while it was read; it is read again at the next poll")
        }
        let names = Dictionary(typeNames.rows, uniquingKeysWith: { a, _ in a })
        return raw.rows.compactMap { found in
            guard var contract = found else { return nil }
            contract.typeName = names[contract.id] ?? ""
            return contract
        }
    }

    /// One raw Contract item; nil for a template. Begin date, duration and periodicity are checked where they enter.
    public nonisolated static func contract(_ item: JSONValue, operation: String) throws -> HelpdeskContract? {
        guard let id = item["id"]?.int, id > 0 else {
            throw HelpdeskError(.malformedResponse, operation: operation, detail: "a contract without a numeric id")
        }
        if item["is_template"]?.int == 1 { return nil }
        func bounded(_ key: String, _ range: ClosedRange<Int>, required: Bool = false) throws -> Int {
            let value = item[key]?.int ?? (required ? -1 : 0)
            guard range.contains(value) else {
                throw HelpdeskError(.malformedResponse, operation: operation, detail: "contract \(id) has \(key) \(value)")
            }
            return value
        }
        let duration = try bounded("duration", 0...1200)
        let periodicity = try bounded("periodicity", 0...1200)
        let renewal = try bounded("renewal", 0...9)
        let begins = item["begin_date"]?.string.flatMap { CivilDate(String($0.prefix(10))) }
        // Tacit renewal (1) renews the contract for another term by itself: it runs until it is ended in GLPI.
        // Without it, or with express renewal (2), it ends after `duration` months; a duration of 0 has no end.
        let ends = begins.flatMap { begins in duration == 0 || renewal == 1 ? nil : begins.adding(months: duration).dayBefore }
        return HelpdeskContract(id: id, name: TextRules.storable(HTMLEntities.decode(item["name"]?.string ?? "")),
                                number: TextRules.storable(HTMLEntities.decode(item["num"]?.string ?? "")), typeName: "",
                                scope: try bounded("entities_id", 0...Int(Int32.max), required: true), includeSubentities: item["is_recursive"]?.int == 1,
                                begins: begins, ends: ends, periodMonths: periodicity)
    }

    /// The tickets a `glpi_criteria` rule selects, asked of GLPI's search: the rule as one nested group, ANDed with
    /// date_mod after `since`, or with the ids `among` (OR-linked, 100 to a search). No ids at all asks for ticket 0:
    /// GLPI checks every field of the rule and answers no rows, which is what check-config and a reload need.
    public func ticketIDs(matching query: String, since: String?, among: [Int]?) async throws -> Set<Int> {
        let rule: GLPICriteria
        do {
            rule = try GLPICriteria(text: query)
        } catch {
            throw HelpdeskError(.rejected, operation: "search Ticket (criteria rule)", detail: "the rule \(error)")
        }
        var base = rule.parameters(group: 0)
        if let since {
            base += [("criteria[1][link]", "AND"), ("criteria[1][field]", "19"), ("criteria[1][searchtype]", "morethan"), ("criteria[1][value]", since)]
        }
        let display = [("forcedisplay[0]", "2"), ("sort", "2"), ("order", "ASC")]
        guard let among else {
            return Set(try await pages("search/Ticket", query: base + display, operation: "search Ticket (criteria rule)") { body in
                (body["data"]?.list ?? []).compactMap { $0["2"]?.int }
            }.rows)
        }
        let group = since == nil ? 1 : 2
        var found = Set<Int>()
        for ids in among.isEmpty ? [[(String, String)]]([[("criteria[0][field]", "2"), ("criteria[0][searchtype]", "equals"), ("criteria[0][value]", "0")]])
                                 : Self.idCriteria(among) {
            let nested = [("criteria[\(group)][link]", "AND")] + ids.map { key, value in
                (key.replacingOccurrences(of: "criteria[", with: "criteria[\(group)][criteria][", options: .anchored), value)
            }
            found.formUnion(try await pages("search/Ticket", query: base + nested + display, operation: "search Ticket (criteria rule)") { body in
                (body["data"]?.list ?? []).compactMap { $0["2"]?.int }
            }.rows)
        }
        return found
    }

    /// The ticket search with the columns rules and task summaries need, sorted by modification date, every page.
    private func searchTickets(criteria: [(String, String)]) async throws -> (rows: [SearchRow], stable: Bool) {
        var query = criteria
        for (index, column) in Self.ticketColumns.enumerated() { query.append(("forcedisplay[\(index)]", "\(column)")) }
        query += [("sort", "19"), ("order", "ASC")]
        return try await pages("search/Ticket", query: query, operation: "search Ticket") { body in
            try (body["data"]?.list ?? []).map { value in
                guard let row = SearchRow(value) else {
                    throw HelpdeskError(.malformedResponse, operation: "search Ticket", detail: "a row without a numeric id")
                }
                return row
            }
        }
    }

    /// De-duplicates (a ticket modified while pages were read can appear twice; its newest state wins) and resolves
    /// names. A ticket GLPI will not let us read is a failure of its own; one that means GLPI itself is failing ends the poll.
    private func resolve(_ found: [SearchRow]) async throws -> ([ChangedTicket], [TicketReadFailure]) {
        // By position in `found`, so the rows are not copied on the way (a first sync holds a hundred thousand).
        var newest: [Int: Int] = [:]
        newest.reserveCapacity(found.count)
        for (index, row) in found.enumerated() {
            if let seen = newest[row.id], found[seen].dateMod > row.dateMod { continue }
            newest[row.id] = index
        }
        var tickets: [ChangedTicket] = []
        var failures: [TicketReadFailure] = []
        tickets.reserveCapacity(newest.count)
        for index in newest.values.sorted(by: { (found[$0].dateMod, found[$0].id) < (found[$1].dateMod, found[$1].id) }) {
            let row = found[index]
            do {
                tickets.append(ChangedTicket(facts: try await resolve(row), dateMod: row.dateMod, taskCount: row.taskCount,
                                             taskFingerprint: row.taskFingerprint,
                                             changedAt: LocalStamp.parse(row.dateMod, timeZone: configuration.timeZone)))
            } catch let error as HelpdeskError where error.concernsOneTicket {
                failures.append(TicketReadFailure(ticketID: row.id, error: error))
            }
        }
        return (tickets, failures)
    }

    /// One row of the ticket search, still with names where GLPI gives names.
    /// GLPI's two ticket types by the names its forms show; anything else is kept as its number.
    static func typeName(_ type: Int) -> String {
        switch type {
        case 1: "Incident"
        case 2: "Request"
        case 0: ""
        default: "type \(type)"
        }
    }

    public struct SearchRow: Sendable, Equatable {
        public var id: Int
        public var name: String
        public var entity: String
        public var category: String
        public var groups: [String]
        public var status: Int
        /// GLPI's ticket type by name (search option 14). Expected raw, 1 incident or 2 request, as status (12) is
        /// in the recordings; a label, should a GLPI give one, is kept as it reads.
        public var type: String
        public var dateMod: String
        public var taskCount: Int?
        public var taskFingerprint: String?

        public init?(_ value: JSONValue) {
            guard let id = value["2"]?.int else { return nil }
            self.id = id
            // GLPI returns names as it stores them, with &, < and > HTML-encoded; they are decoded once here, as the
            // dropdown lists are, so both sides of every comparison are in the same form and people see plain text.
            name = TextRules.storable(HTMLEntities.decode(value["1"]?.string ?? ""))
            entity = HTMLEntities.decode(value["80"]?.string ?? "")
            category = HTMLEntities.decode(value["7"]?.string ?? "")
            groups = value["8"]?.list.compactMap(\.string).map(HTMLEntities.decode) ?? []
            status = value["12"]?.int ?? 0
            type = value["14"]?.int.map(GLPIConnector.typeName) ?? TextRules.storable(HTMLEntities.decode(value["14"]?.string ?? ""))
            dateMod = value["19"]?.string ?? ""
            taskCount = value["28"]?.int
            if let taskCount {
                let column = { (key: String) in value[key]?.list.map { $0.string ?? "" } ?? [] }
                taskFingerprint = Self.fingerprint(count: taskCount, total: column("45").first ?? "", durations: column("96"), dates: column("97"),
                                                   privates: column("92"))
            }
        }

        /// The task columns as one short text: a digest of the count, the total, then each task's duration, date and
        /// privacy, each column sorted (GLPI does not de-duplicate them, nor say in which order it lists them). It
        /// changes when any of them does. 88 bits in 15 characters, which Swift keeps inline: a first sync holds one
        /// per ticket, so a hundred thousand of them cost no allocation of their own.
        public static func fingerprint(count: Int, total: String, durations: [String], dates: [String], privates: [String]) -> String {
            let text = "\(count)#\(total)#" + [durations, dates, privates].map { $0.sorted().joined(separator: "|") }.joined(separator: "#")
            let digest = Data(SHA256.hash(data: Data(text.utf8)).prefix(11))
            return digest.base64EncodedString().replacingOccurrences(of: "=", with: "").replacingOccurrences(of: "+", with: "-")
                .replacingOccurrences(of: "/", with: "_")
        }
    }

    /// What the search's task columns would be for a ticket holding exactly these tasks.
    public nonisolated func taskFingerprint(of tasks: [TaskFacts]) -> String? {
        SearchRow.fingerprint(count: tasks.count, total: "\(tasks.reduce(0) { $0 + $1.seconds })", durations: tasks.map { "\($0.seconds)" },
                              dates: tasks.map { GLPIDate.format($0.date, timeZone: configuration.timeZone) },
                              privates: tasks.map { $0.isPrivate ? "1" : "0" })
    }

    /// Turns the search's names into ids, from cached dropdown lists; a name not yet known refreshes that list once.
    private func resolve(_ row: SearchRow) async throws -> TicketFacts {
        func lookup(_ kind: DropdownNames.Kind, _ name: String) async throws -> Int? {
            if name.isEmpty { return 0 }
            if let id = names.id(kind, name) { return id }
            guard !names.isForbidden(kind) else { return nil }
            try await refresh(kind)
            return names.id(kind, name)
        }
        var entity = try await lookup(.entity, row.entity)
        var category = try await lookup(.category, row.category)
        var groups: [Int]? = []
        for name in row.groups {
            guard let id = try await lookup(.group, name) else { groups = nil; break }
            groups?.append(id)
        }
        // A name that is ambiguous or still unknown (renamed mid-poll): ask the ticket itself.
        if entity == nil || category == nil {
            let item = try decode(try await call("Ticket/\(row.id)", operation: "getItem Ticket"), operation: "getItem Ticket")
            entity = item["entities_id"]?.int ?? entity
            category = item["itilcategories_id"]?.int ?? category
            // Where a list may not be read, the ticket taught us one name: the next ticket with it needs no read.
            if let id = item["itilcategories_id"]?.int, names.isForbidden(.category) { names.learn(.category, row.category, id) }
            if let id = item["entities_id"]?.int, names.isForbidden(.entity) { names.learn(.entity, row.entity, id) }
        }
        if groups == nil {
            let links = try decode(try await call("Ticket/\(row.id)/Group_Ticket", operation: "getSubItems Group_Ticket"),
                                   operation: "getSubItems Group_Ticket")
            var assigned: [Int] = []
            for link in links.array ?? [] where link["type"]?.int == 2 {
                if let id = link["groups_id"]?.int { assigned.append(id) }
            }
            groups = assigned
        }
        guard let entity, let category, let groups else {
            throw HelpdeskError(.malformedResponse, operation: "resolve Ticket \(row.id)", detail: "could not resolve entity, category or groups")
        }
        return TicketFacts(id: row.id, name: row.name, entity: entity, groups: groups.sorted(), category: category, status: row.status,
                           ticketClass: row.type, categoryName: TextRules.storable(row.category))
    }

    private func refresh(_ kind: DropdownNames.Kind) async throws {
        let itemtype = kind.itemtype
        let result: (rows: [JSONValue], stable: Bool)
        do {
            result = try await pages(itemtype, query: [], operation: "getItems \(itemtype)") { $0.array ?? [] }
        } catch let error as HelpdeskError where error.kind == .permission && kind != .group {
            // A profile without READ on the list (GLPI's Technician has none on ITIL categories): ids are then
            // learned from the tickets themselves, one read per new name. check-config names the missing right.
            names.forbid(kind)
            logger.warning("GLPI refused to list \(itemtype); ids are read from each ticket instead (grant READ on it to save those reads)",
                           metadata: ["error": "\(error)"])
            return
        }
        names.replace(kind, with: result.rows.compactMap { item in
            guard let id = item["id"]?.int, let name = item["completename"]?.string ?? item["name"]?.string else { return nil }
            return (id, HTMLEntities.decode(name), item["entities_id"]?.int)
        })
    }

    /// The entity tree from the cached entity list; read once, then again whenever a new entity name shows up.
    public func entityTree() async throws -> EntityTree {
        if !names.hasLoaded(.entity) { try await refresh(.entity) }
        return names.entityTree
    }

    // MARK: Tasks

    public func tasks(ofTickets ids: [Int]) async throws -> TaskReads {
        var result = TaskReads()
        /// One ticket's tasks, or the reason that ticket alone cannot be read; a failure of GLPI itself is thrown.
        @Sendable func read(_ id: Int) async throws -> (Int, Result<[TaskFacts], HelpdeskError>) {
            do {
                return (id, .success(try await self.tasks(ofTicket: id)))
            } catch let error as HelpdeskError where error.concernsOneTicket {
                return (id, .failure(error))
            }
        }
        for (id, outcome) in try await concurrentMap(ids, concurrency: configuration.concurrency, read) {
            switch outcome {
            case .success(let tasks): result.tasks[id] = tasks
            case .failure(let error): result.failures.append(TicketReadFailure(ticketID: id, error: error))
            }
        }
        return result
    }

    public nonisolated var taskPageSize: Int? { configuration.taskPageSize }

    /// One page of every task, in ticket order (getItems TicketTask, sort=tickets_id). GLPI's `Accept-Range` (1000) is
    /// not enforced (getItems_TicketTask_paged): a page of 5000 costs a fifth of the requests. A range past the end is
    /// an empty page (getItems_TicketTask_range_past_total).
    public nonisolated func taskPage(_ number: Int) async throws -> TaskPage {
        let size = configuration.taskPageSize
        let start = number * size
        let response = try await call("TicketTask", query: [("range", "\(start)-\(start + size - 1)"), ("sort", "tickets_id"), ("order", "ASC"),
                                                            ("expand_dropdowns", "false")], operation: "getItems TicketTask")
        if response.status == 400, Self.errorCode(response) == "ERROR_RANGE_EXCEED_TOTAL" { return TaskPage(tasks: [], failures: [], total: nil) }
        return try Self.taskPage(response, timeZone: configuration.timeZone)
    }

    /// Parsed off the actor, so pages in flight are parsed in parallel.
    nonisolated static func taskPage(_ response: HTTPResponse, timeZone: TimeZone) throws -> TaskPage {
        var page = TaskPage(tasks: [], failures: [], total: contentRange(response.header("Content-Range"))?.total)
        let items = try taskItems(response)
        page.tasks.reserveCapacity(items.count)
        for item in items {
            guard let ticket = item["tickets_id"]?.int else { continue }
            do {
                page.tasks.append(try task(from: item, ticketID: ticket, timeZone: timeZone))
            } catch let error as HelpdeskError {
                page.failures.append(TicketReadFailure(ticketID: ticket, error: error))
            }
        }
        if page.total == nil, response.status == 200 { page.total = items.count }
        return page
    }

    /// Reads GLPI's task list newest change first (getItems TicketTask, sort=date_mod DESC) until a task older than
    /// `since`: one small page when little changed. A task whose technician or text alone changed is seen here, although
    /// the ticket search's summary cannot tell (it de-duplicates the technician column). Tasks keyed by ticket.
    public func changedTasks(since: String) async throws -> TaskReads {
        var reads = TaskReads()
        var start = 0
        // One small page when little changed; each full page of changes asks for four times as many next, up to the
        // task page size, so a mass edit costs a few requests rather than one per hundred tasks.
        var page = 100
        let timeZone = configuration.timeZone
        while true {
            defer { page = min(page * 4, max(100, configuration.taskPageSize)) }
            let response = try await call("TicketTask", query: [("range", "\(start)-\(start + page - 1)"), ("sort", "date_mod"), ("order", "DESC"),
                                                                ("expand_dropdowns", "false")], operation: "getItems TicketTask")
            if response.status == 400, Self.errorCode(response) == "ERROR_RANGE_EXCEED_TOTAL" { return reads }
            let items = try decode(response, operation: "getItems TicketTask").array ?? []
            for item in items {
                guard let changed = item["date_mod"]?.string, changed > since else { return reads }
                guard let ticket = item["tickets_id"]?.int else { continue }
                do {
                    reads.tasks[ticket, default: []].append(try Self.task(from: item, ticketID: ticket, timeZone: timeZone))
                } catch let error as HelpdeskError {
                    reads.failures.append(TicketReadFailure(ticketID: ticket, error: error))
                }
            }
            let total = Self.contentRange(response.header("Content-Range"))?.total ?? items.count
            start += items.count
            if items.isEmpty || start >= total || start >= 100_000 { return reads }
        }
    }

    public func tasks(ofTicket id: Int) async throws -> [TaskFacts] {
        let timeZone = configuration.timeZone
        return try await pages("Ticket/\(id)/TicketTask", query: [], operation: "getSubItems TicketTask") { body in
            try (body.array ?? []).map { try Self.task(from: $0, ticketID: id, timeZone: timeZone) }
        }.rows
    }

    /// The fields of a task that `task(from:)` reads.
    static let taskFields = ["id", "tickets_id", "actiontime", "date", "users_id_tech", "is_private", "content"]

    /// A task page's items with only `taskFields` built. An answer that is not a list of them (an error, a body
    /// that is not JSON) is read by `decode`, which says what is wrong with it.
    nonisolated static func taskItems(_ response: HTTPResponse) throws -> [JSONValue] {
        if (200..<300).contains(response.status), let lean = try? JSONValue.parseObjects(response.body, keeping: taskFields) { return lean }
        return try decode(response, operation: "getItems TicketTask").array ?? []
    }

    /// One TicketTask object (getItem or getSubItems) as task facts: seconds from `actiontime`, text without HTML.
    public nonisolated static func task(from row: JSONValue, ticketID: Int, timeZone: TimeZone) throws -> TaskFacts {
        guard let taskID = row["id"]?.int, let seconds = row["actiontime"]?.int,
              let dateText = row["date"]?.string, let date = GLPIDate.parse(dateText, timeZone: timeZone)
        else {
            throw HelpdeskError(.malformedResponse, operation: "getSubItems TicketTask",
                                detail: "ticket \(ticketID): a task without id, actiontime or a real date (1970-2199)")
        }
        guard Bounds.helpdeskTaskSeconds.contains(seconds) else {
            throw HelpdeskError(.malformedResponse, operation: "getSubItems TicketTask",
                                detail: "ticket \(ticketID): task \(taskID) has actiontime \(seconds) s, outside 0 to a year")
        }
        return TaskFacts(id: taskID, ticketID: row["tickets_id"]?.int ?? ticketID, date: date, seconds: seconds,
                         technician: row["users_id_tech"]?.int ?? 0, isPrivate: row["is_private"]?.int == 1,
                         content: TextRules.storable(HTMLEntities.plainText(row["content"]?.string ?? "")))
    }
}

extension GLPIConnector {
    // MARK: Write-back

    public func createTask(_ task: NewHelpdeskTask) async throws -> Int {
        var input: [String: Any] = [
            "tickets_id": task.ticketID, "is_private": 1, "actiontime": task.seconds, "content": HelpdeskMarkup.paragraph(task.note),
            "users_id_tech": task.technician, "state": 2, "date": GLPIDate.format(task.date, timeZone: configuration.timeZone),
        ]
        if let category = task.category ?? (configuration.taskCategory > 0 ? configuration.taskCategory : nil) {
            input["taskcategories_id"] = category
        }
        let body = try JSONSerialization.data(withJSONObject: ["input": input], options: [.sortedKeys])
        let response = try await call(method: "POST", "TicketTask", body: Array(body), operation: "addItems TicketTask")
        let value = try decode(response, operation: "addItems TicketTask")
        guard let id = value["id"]?.int ?? value.array?.first?["id"]?.int else {
            throw HelpdeskError(.malformedResponse, operation: "addItems TicketTask", detail: "no id in the answer")
        }
        return id
    }

    public func findTask(ticketID: Int, containing marker: String) async throws -> Int? {
        try await tasks(ofTicket: ticketID).first { $0.content.contains(marker) }?.id
    }

    public func updateTask(id: Int, seconds: Int, _ note: HelpdeskNote) async throws {
        let body = try JSONSerialization.data(withJSONObject: ["input": ["actiontime": seconds, "content": HelpdeskMarkup.paragraph(note)]],
                                              options: [.sortedKeys])
        _ = try decode(try await call(method: "PUT", "TicketTask/\(id)", body: Array(body), operation: "updateItem TicketTask"),
                       operation: "updateItem TicketTask")
    }

    public func createNote(ticketID: Int, _ note: HelpdeskNote) async throws -> Int? {
        let input: [String: Any] = ["itemtype": "Ticket", "items_id": ticketID, "is_private": 1, "content": HelpdeskMarkup.paragraph(note)]
        let body = try JSONSerialization.data(withJSONObject: ["input": input], options: [.sortedKeys])
        let response = try await call(method: "POST", "ITILFollowup", body: Array(body), operation: "addItems ITILFollowup")
        guard let id = try decode(response, operation: "addItems ITILFollowup")["id"]?.int else {
            throw HelpdeskError(.malformedResponse, operation: "addItems ITILFollowup", detail: "no id in the answer")
        }
        return id
    }

    public func findNote(ticketID: Int, containing marker: String) async throws -> Int? {
        try await pages("Ticket/\(ticketID)/ITILFollowup", query: [], operation: "getSubItems ITILFollowup") { body in
            (body.array ?? []).compactMap { row -> Int? in
                HTMLEntities.plainText(row["content"]?.string ?? "").contains(marker) ? row["id"]?.int : nil
            }
        }.rows.first
    }

    public func deleteTask(id: Int) async throws {
        let response = try await call(method: "DELETE", "TicketTask/\(id)", query: [("force_purge", "true")], operation: "deleteItem TicketTask")
        if response.status == 404 { return }
        _ = try decode(response, operation: "deleteItem TicketTask")
    }
}

/// Name-to-id tables for the dropdowns that the ticket search returns by name.
struct DropdownNames {
    enum Kind: CaseIterable {
        case entity, group, category
        var itemtype: String {
            switch self {
            case .entity: "Entity"
            case .group: "Group"
            case .category: "ITILCategory"
            }
        }
    }

    private var ids: [Kind: [String: Int]] = [:]
    private var ambiguous: [Kind: Set<String>] = [:]
    var entityTree = EntityTree()

    private var forbidden: Set<Kind> = []

    func hasLoaded(_ kind: Kind) -> Bool { ids[kind] != nil }

    func isForbidden(_ kind: Kind) -> Bool { forbidden.contains(kind) }

    /// The list may not be read: names are learned one by one from tickets.
    mutating func forbid(_ kind: Kind) {
        forbidden.insert(kind)
        if ids[kind] == nil { ids[kind] = [:] }
    }

    mutating func learn(_ kind: Kind, _ name: String, _ id: Int) {
        guard !name.isEmpty, ambiguous[kind]?.contains(name) != true else { return }
        ids[kind, default: [:]][name] = id
    }

    func id(_ kind: Kind, _ name: String) -> Int? {
        if ambiguous[kind]?.contains(name) == true { return nil }
        return ids[kind]?[name]
    }

    mutating func replace(_ kind: Kind, with items: [(id: Int, name: String, parent: Int?)]) {
        var table: [String: Int] = [:]
        var duplicates = Set<String>()
        for item in items {
            if table[item.name] != nil { duplicates.insert(item.name) }
            table[item.name] = item.id
        }
        ids[kind] = table
        ambiguous[kind] = duplicates
        if kind == .entity {
            var parents: [Int: Int] = [:]
            for item in items where item.id != 0 { parents[item.id] = item.parent ?? 0 }
            entityTree = EntityTree(parents: parents)
        }
    }
}
