import Foundation
import HourLedgerCore
import HourLedgerHTTPClient
import HourLedgerHelpdeskKit
import HourLedgerUseCases
import Logging

public struct ITopConfiguration: Sendable {
    /// The REST endpoint, `…/webservices/rest.php` (given the iTop root, the path is added).
    public var endpoint: String
    public var login: String
    public var password: String
    /// iTop's own time zone (its `timezone` setting): its datetimes carry no offset.
    public var timeZone: TimeZone
    /// Objects per `core/get` page.
    public var pageSize: Int
    /// The ticket classes polled and matched.
    public var classes: [String]
    /// How a dashboard sign-in learns the person behind a login.
    public var personLookup: ITopPersonLookup
    /// Pages of one `core/get` read at once, after the first has given the total.
    public var concurrency = 4

    public init(url: String, login: String, password: String, timeZone: TimeZone = TimeZone(identifier: "UTC")!, pageSize: Int = 500,
                classes: [String] = ["UserRequest", "Incident"], personLookup: ITopPersonLookup = .user) {
        self.personLookup = personLookup
        var root = url.hasSuffix("/") ? String(url.dropLast()) : url
        if !root.hasSuffix("rest.php") { root += "/webservices/rest.php" }
        endpoint = root
        self.login = login
        self.password = password
        self.timeZone = timeZone
        self.pageSize = pageSize
        self.classes = classes
    }
}

/// iTop's REST/JSON API (`rest.php`, version 1.3), as recorded in shared/fixtures/itop.
///
/// iTop has no effort log (`time_spent` is elapsed time, overwritten at resolution), so it reports no tasks: time comes
/// from HourLedger's timers and entries, and goes back as private_log notes. Every answer is HTTP 200; the outcome is
/// in `code`.
public actor ITopConnector: HelpdeskPort {
    public nonisolated let profile = ITopConnector.itopProfile

    /// iTop's words, its resolved and closed statuses (on GLPI's scale, see `status`), its final deletion.
    public static let itopProfile = HelpdeskProfile(kind: .itop, terms: .itop, finishedStatuses: [5, 6], vanished: .deleted,
                                                    taskReference: "itop_task")
    let configuration: ITopConfiguration
    private let http: any HTTPSending
    private let logger: Logger
    private var requests = 0
    /// Ticket id → class (UserRequest, Incident): every write names the class.
    private var classes: [Int: String] = [:]

    public nonisolated func stamp(_ stamp: String, movedBackBy seconds: Int) -> String? {
        LocalStamp.movedBack(stamp, by: seconds, timeZone: configuration.timeZone)
    }

    /// What the rules and the ledger read of a ticket, and nothing else.
    public static let ticketFields = "id,ref,title,status,org_id,team_id,agent_id,service_id,service_name,servicesubcategory_id,last_update"

    public init(configuration: ITopConfiguration, http: any HTTPSending, logger: Logger = Logger(label: "hourledger.itop")) {
        self.configuration = configuration
        self.http = http
        self.logger = logger
    }

    public func requestCount() -> Int { requests }
    public func close() async {}

    // MARK: Requests

    /// One REST call: a form-encoded POST with the credentials and `json_data`. The password never leaves this function.
    func call(_ operation: [String: Any], what: String) async throws -> JSONValue {
        let json = try JSONSerialization.data(withJSONObject: operation, options: [.sortedKeys, .withoutEscapingSlashes])
        let form = [("auth_user", configuration.login), ("auth_pwd", configuration.password), ("json_data", String(decoding: json, as: UTF8.self))]
        let request = HTTPRequest(method: "POST", url: configuration.endpoint + "?version=1.3",
                                  headers: [("Content-Type", "application/x-www-form-urlencoded")], body: Array(FormEncoding.encode(form).utf8))
        requests += 1
        let response: HTTPResponse
        do {
            response = try await http.send(request)
        } catch let error as HTTPClientError {
            throw HelpdeskError(transport: error, operation: what)
        }
        return try Self.decode(response, operation: what)
    }

    /// The answer's body, or its `code` as a typed error: 1 credentials or rights, 13 a bad page, 100 a bad query,
    /// class, field or value; 2, 3, 4, 10 and 11 mean HourLedger spoke the protocol wrong.
    public static func decode(_ response: HTTPResponse, operation: String) throws -> JSONValue {
        guard (200..<300).contains(response.status) else {
            throw HelpdeskError(response.status >= 500 ? .serverError : response.status == 404 ? .notFound : .rejected, operation: operation,
                                detail: "HTTP \(response.status): is the URL the iTop REST endpoint (…/webservices/rest.php)?")
        }
        guard let body = try? JSONValue.parse(response.body), let code = body["code"]?.int else {
            throw HelpdeskError(.malformedResponse, operation: operation, detail: "HTTP \(response.status) with a body that is not an iTop REST answer")
        }
        if code == 0 { return body }
        var message = body["message"]?.string ?? ""
        if message.hasPrefix("Error: ") { message.removeFirst(7) }
        // Some messages list every attribute of the class; the head says what went wrong.
        if message.count > 400 { message = String(message.prefix(400)) + "…" }
        let kind: HelpdeskError.Kind = code == 1 ? (message.contains("Invalid login") ? .authentication : .permission) : .rejected
        throw HelpdeskError(kind, operation: operation, code: "\(code)", detail: message)
    }

    /// One object of an answer's `objects` map (keyed `Class::id`, ids as strings).
    public struct Object: Sendable, Equatable {
        public var itemClass: String
        public var id: Int
        public var fields: JSONValue

        public init(itemClass: String, id: Int, fields: JSONValue) {
            self.itemClass = itemClass
            self.id = id
            self.fields = fields
        }
    }

    public static func objects(_ body: JSONValue, operation: String) throws -> [Object] {
        guard let map = body["objects"]?.object else { return [] }  // null when nothing is found
        return try map.map { name, value in
            guard let id = value["key"]?.int ?? name.split(separator: ":").last.flatMap({ Int($0) }) else {
                throw HelpdeskError(.malformedResponse, operation: operation, detail: "object \(name) without a numeric key")
            }
            return Object(itemClass: value["class"]?.string ?? String(name.split(separator: ":").first ?? ""), id: id,
                          fields: value["fields"] ?? .null)
        }
    }

    /// `Found: N`, the total of the whole query, not of the page.
    public static func total(_ body: JSONValue) -> Int? {
        guard let message = body["message"]?.string, message.hasPrefix("Found: ") else { return nil }
        return Int(message.dropFirst(7))
    }

    /// Every page of a `core/get`, collected (see `pages`). `stable` is false when the total moved while paging: the
    /// caller should not trust that it saw everything.
    func get(_ itemClass: String, key: any Sendable, fields: String, what: String, pageSize: Int? = nil) async throws -> (objects: [Object], stable: Bool) {
        var all: [Object] = []
        var stable = true
        for try await page in pages(itemClass, key: key, fields: fields, what: what, pageSize: pageSize) {
            all += page.objects
            stable = stable && page.stable
        }
        return (all, stable)
    }

    /// The pages of a `core/get` in order, each handed over as soon as it and those before it are parsed. The first
    /// gives the total (`Found: N`); then `concurrency` pages are in flight at once, also while the caller works on the
    /// last one handed over. A page is not `stable` when its total differs from the first page's.
    nonisolated func pages(_ itemClass: String, key: any Sendable, fields: String, what: String,
                           pageSize: Int? = nil) -> AsyncThrowingStream<(objects: [Object], stable: Bool), any Error> {
        let limit = pageSize ?? configuration.pageSize
        let concurrency = max(1, configuration.concurrency)
        @Sendable func page(_ number: Int) async throws -> (objects: [Object], total: Int) {
            let body = try await call(["operation": "core/get", "class": itemClass, "key": key, "output_fields": fields,
                                       "limit": limit, "page": number], what: what)
            let found = try Self.objects(body, operation: what)
            return (found, Self.total(body) ?? found.count)
        }
        return .produced { continuation in
            var window: [Task<(objects: [Object], total: Int), any Error>] = []
            defer { for task in window { task.cancel() } }
            let first = try await page(1)
            continuation.yield((first.objects, true))
            guard first.objects.count == limit, first.total > limit else { return }
            let count = (first.total + limit - 1) / limit
            var next = 2
            while next <= count, window.count < concurrency {
                window.append(Task { [next] in try await page(next) })
                next += 1
            }
            while !window.isEmpty {
                let result = try await window.removeFirst().value
                if next <= count {
                    window.append(Task { [next] in try await page(next) })
                    next += 1
                }
                continuation.yield((result.objects, result.total == first.total))
            }
        }
    }

    // MARK: Tickets

    public func changedTickets(since: String?) async throws -> ChangeBatch {
        var found: [Object] = []
        var complete = true
        for itemClass in configuration.classes {
            let result = try await get(itemClass, key: Self.changed(itemClass, since: since), fields: Self.ticketFields, what: "core/get \(itemClass)")
            found += result.objects
            complete = complete && result.stable
        }
        let (tickets, failures) = deduplicated(found)
        return ChangeBatch(tickets: tickets, highWater: tickets.map(\.dateMod).max(), complete: complete, failures: failures)
    }

    /// A first sync stores each page while the next ones download.
    public nonisolated var listsTicketsByPage: Bool { true }

    public nonisolated func changedTicketPages(since: String?) -> AsyncThrowingStream<ChangeBatch, any Error> {
        .produced { [self] continuation in
            for itemClass in configuration.classes {
                for try await page in pages(itemClass, key: Self.changed(itemClass, since: since), fields: Self.ticketFields,
                                            what: "core/get \(itemClass)") {
                    let (tickets, failures) = await deduplicated(page.objects)
                    continuation.yield(ChangeBatch(tickets: tickets, highWater: tickets.map(\.dateMod).max(), complete: page.stable,
                                                   failures: failures))
                }
            }
        }
    }

    /// The OQL of one class's tickets modified after `since` (nil: all of them).
    static func changed(_ itemClass: String, since: String?) -> String {
        "SELECT \(itemClass)" + (since.map { " WHERE last_update > \(OQL.quote($0))" } ?? "")
    }

    public func tickets(ids: [Int]) async throws -> ChangeBatch {
        let unique = Array(Set(ids)).sorted()
        var found: [Object] = []
        for start in stride(from: 0, to: unique.count, by: 200) {
            let list = unique[start..<min(start + 200, unique.count)].map(String.init).joined(separator: ",")
            for itemClass in configuration.classes {
                found += try await get(itemClass, key: "SELECT \(itemClass) WHERE id IN (\(list))", fields: Self.ticketFields,
                                       what: "core/get \(itemClass)").objects
            }
        }
        let (tickets, failures) = deduplicated(found)
        return ChangeBatch(tickets: tickets, failures: failures)
    }

    /// A ticket seen twice (it moved between pages) keeps its newest state; the list is in modification order. A
    /// ticket that cannot be read as facts is a failure of its own.
    private func deduplicated(_ objects: [Object]) -> ([ChangedTicket], [TicketReadFailure]) {
        var newest: [Int: ChangedTicket] = [:]
        var failures: [TicketReadFailure] = []
        for object in objects {
            let ticket: ChangedTicket
            do {
                ticket = try Self.ticket(object, timeZone: configuration.timeZone)
            } catch let error as HelpdeskError {
                failures.append(TicketReadFailure(ticketID: object.id, error: error))
                continue
            } catch {
                continue
            }
            classes[ticket.facts.id] = ticket.facts.ticketClass
            if let seen = newest[ticket.facts.id], seen.dateMod > ticket.dateMod { continue }
            newest[ticket.facts.id] = ticket
        }
        return (newest.values.sorted { ($0.dateMod, $0.facts.id) < ($1.dateMod, $1.facts.id) }, failures)
    }

    /// A polled ticket as facts: org → entity, team → group, service subcategory → category. An empty link is "0".
    public static func ticket(_ object: Object, timeZone: TimeZone = TimeZone(identifier: "UTC")!) throws -> ChangedTicket {
        let f = object.fields
        guard let dateMod = f["last_update"]?.string else {
            throw HelpdeskError(.malformedResponse, operation: "core/get \(object.itemClass)", detail: "ticket \(object.id) without last_update")
        }
        let team = f["team_id"]?.int ?? 0
        let facts = TicketFacts(id: object.id, name: TextRules.storable(f["title"]?.string ?? ""), entity: f["org_id"]?.int ?? 0, groups: team == 0 ? [] : [team],
                                category: f["servicesubcategory_id"]?.int ?? 0, status: status(f["status"]?.string ?? ""),
                                service: f["service_id"]?.int ?? 0, agent: f["agent_id"]?.int ?? 0, ticketClass: object.itemClass,
                                ref: f["ref"]?.string ?? "", categoryName: TextRules.storable(f["service_name"]?.string ?? ""))
        // No effort log: a ticket never has helpdesk tasks to read.
        return ChangedTicket(facts: facts, dateMod: dateMod, taskCount: 0, changedAt: LocalStamp.parse(dateMod, timeZone: timeZone))
    }

    /// iTop's lifecycle on GLPI's scale, so "solved or closed" means the same to the ledger on both.
    public static func status(_ text: String) -> Int {
        switch text {
        case "new": 1
        case "pending", "waiting_for_approval": 4
        case "resolved": 5
        case "closed", "rejected": 6
        default: 2  // assigned, escalated_tto, escalated_ttr, approved, dispatched, redispatched
        }
    }

    public func ticketIDs(matching query: String, since: String?, among: [Int]?) async throws -> Set<Int> {
        let rule = try OQL(query)
        let oql = rule.narrowed(since: since, among: among)
        let result = try await get(rule.selectedClass, key: oql, fields: "id", what: "core/get \(rule.selectedClass) (OQL rule)")
        return Set(result.objects.map(\.id))
    }

    /// Every CustomerContract with its organisation, dates, status, type and services (20, 22). iTop keeps
    /// `obsolete` contracts: they are listed as not in force.
    public func helpdeskContracts() async throws -> [HelpdeskContract] {
        let operation = "core/get CustomerContract"
        let result = try await get("CustomerContract", key: "SELECT CustomerContract",
                                   fields: "id,name,org_id,contracttype_name,status,start_date,end_date,billing_frequency,services_list", what: operation)
        // A contract missing from the list is taken as ended: a list that moved while it was paged says nothing.
        guard result.stable else {
            throw HelpdeskError(.serverError, operation: operation, detail: "the contract list changed while it was read; it is read again at the next poll")
        }
        return try result.objects.sorted { $0.id < $1.id }.map { try Self.contract($0, operation: operation) }
    }

    public static func contract(_ object: Object, operation: String) throws -> HelpdeskContract {
        let fields = object.fields
        guard let org = fields["org_id"]?.int, (0...Int(Int32.max)).contains(org) else {
            throw HelpdeskError(.malformedResponse, operation: operation, detail: "contract \(object.id) without a numeric org_id")
        }
        // AttributeDate 'Y-m-d'; an empty date is none.
        func day(_ key: String) -> CivilDate? { fields[key]?.string.flatMap { CivilDate(String($0.prefix(10))) } }
        let months = ["monthly": 1, "quarterly": 3, "yearly": 12, "annually": 12, "annual": 12][fields["billing_frequency"]?.string?.lowercased() ?? ""]
        let services = (fields["services_list"]?.list ?? []).compactMap { $0["service_id"]?.int }.filter { $0 > 0 }
        return HelpdeskContract(id: object.id, name: TextRules.storable(fields["name"]?.string ?? ""),
                                typeName: TextRules.storable(fields["contracttype_name"]?.string ?? ""), scope: org,
                                services: Array(Set(services)).sorted(), begins: day("start_date"), ends: day("end_date"), periodMonths: months,
                                inForce: fields["status"]?.string != "obsolete")
    }

    /// Organizations and their parents, for contracts that include sub-organizations.
    public func entityTree() async throws -> EntityTree {
        let result = try await get("Organization", key: "SELECT Organization", fields: "id,parent_id", what: "core/get Organization")
        var parents: [Int: Int] = [:]
        for org in result.objects { parents[org.id] = org.fields["parent_id"]?.int ?? 0 }
        return EntityTree(parents: parents)
    }

    public func changedTasks(since: String) async throws -> TaskReads { TaskReads() }

    // MARK: Rights

    public func checkAccess(followups: Bool) async -> AccessReport {
        var report = AccessReport()
        do {
            _ = try await call(["operation": "list_operations"], what: "list_operations")
            report.account = configuration.login
        } catch let error as HelpdeskError {
            switch error.kind {
            case .unreachable: report.loginFailure = "cannot reach iTop at \(configuration.endpoint): \(error.detail)"
            case .authentication: report.loginFailure = "iTop refused the username or password (Invalid login)"
            case .permission: report.loginFailure = "iTop refused the account: \(error.detail); give it the profile REST Services User"
            default: report.loginFailure = "\(configuration.endpoint) does not answer as iTop's REST API (\(error.detail)); the url is the iTop root or "
                + "…/webservices/rest.php"
            }
            return report
        } catch {
            report.loginFailure = "\(error)"
            return report
        }
        for itemClass in configuration.classes + ["Organization"] {
            do {
                _ = try await call(["operation": "core/get", "class": itemClass, "key": "SELECT \(itemClass) WHERE id = 0", "output_fields": "id",
                                    "limit": 1, "page": 1], what: "core/get \(itemClass)")
                report.checks.append(AccessCheck("read \(itemClass)", .ok))
            } catch let error as HelpdeskError where error.kind == .permission {
                report.checks.append(AccessCheck("read \(itemClass)", .missing, "\(error.detail); the account needs the Support Agent profile"))
            } catch {
                report.checks.append(AccessCheck("read \(itemClass)", .missing, "\(error)"))
            }
        }
        report.checks.append(AccessCheck("append to private logs", .unchecked,
                                         "iTop cannot be asked without writing one; the account needs the Support Agent profile"))
        return report
    }

    // MARK: Deletions

    public func trashed(among ids: [Int]) async throws -> Set<Int> { [] }
    public func trashed(since: String?) async throws -> Set<Int> { [] }

    /// "Found: N" of a one-object page, per class.
    public func ticketCount() async throws -> Int {
        var total = 0
        for itemClass in configuration.classes {
            let body = try await call(["operation": "core/get", "class": itemClass, "key": "SELECT \(itemClass)", "output_fields": "id",
                                       "limit": 1, "page": 1], what: "core/get \(itemClass) (count)")
            total += Self.total(body) ?? 0
        }
        return total
    }

    public func allTicketIDs() async throws -> Set<Int> {
        var ids = Set<Int>()
        for itemClass in configuration.classes {
            let result = try await get(itemClass, key: "SELECT \(itemClass)", fields: "id", what: "core/get \(itemClass) (ids)", pageSize: 10_000)
            ids.formUnion(result.objects.map(\.id))
        }
        return ids
    }

    public func tasks(ofTickets ids: [Int]) async throws -> TaskReads {
        TaskReads(tasks: Dictionary(ids.map { ($0, []) }, uniquingKeysWith: { first, _ in first }))
    }

    // MARK: Notes (private_log)

    /// The ticket's class, from the last poll or, after a restart, from the abstract class Ticket.
    func ticketClass(_ id: Int) async throws -> String {
        if let known = classes[id] { return known }
        let result = try await get("Ticket", key: "SELECT Ticket WHERE id = \(id)", fields: "finalclass", what: "core/get Ticket")
        guard let object = result.objects.first else {
            throw HelpdeskError(.notFound, operation: "core/get Ticket", detail: "no ticket \(id) in iTop")
        }
        let name = object.fields["finalclass"]?.string ?? object.itemClass
        classes[id] = name
        return name
    }

    /// Appends an HTML entry to the private log. The change's `comment` (kept in iTop's history as `userinfo`) names
    /// HourLedger and the marker of the write, so the change feed shows which entry each write was.
    public func createNote(ticketID: Int, _ note: HelpdeskNote) async throws -> Int? {
        let itemClass = try await ticketClass(ticketID)
        let content = HelpdeskMarkup.paragraph(note)
        let comment = "HourLedger write-back" + (Self.marker(in: content).map { " " + $0 } ?? "")
        _ = try await call(["operation": "core/update", "class": itemClass, "key": ticketID, "comment": comment, "output_fields": "id,last_update",
                            "fields": ["private_log": ["add_item": ["message": content, "format": "html"]]]],
                           what: "core/update \(itemClass) private_log")
        return nil
    }

    /// Looks the marker up in the ticket's private log; returns the entry's position (0 is the oldest).
    public func findNote(ticketID: Int, containing marker: String) async throws -> Int? {
        let itemClass = try await ticketClass(ticketID)
        let result = try await get(itemClass, key: ticketID, fields: "private_log", what: "core/get \(itemClass) private_log")
        let entries = result.objects.first?.fields["private_log"]?["entries"]?.list ?? []
        return entries.firstIndex { entry in
            (entry["message"]?.string ?? "").contains(marker) || (entry["message_html"]?.string ?? "").contains(marker)
        }
    }

    /// Every private_log entry of these tickets, by ticket: one `core/get` per class and 200 tickets, for
    /// reconciliation against the notes HourLedger wrote.
    public func noteTexts(ofTickets ids: [Int]) async throws -> [Int: [String]]? {
        let unique = Array(Set(ids)).sorted()
        var texts: [Int: [String]] = [:]
        for start in stride(from: 0, to: unique.count, by: 200) {
            let list = unique[start..<min(start + 200, unique.count)].map(String.init).joined(separator: ",")
            for itemClass in configuration.classes {
                for object in try await get(itemClass, key: "SELECT \(itemClass) WHERE id IN (\(list))", fields: "private_log",
                                            what: "core/get \(itemClass) private_log").objects {
                    texts[object.id, default: []] += (object.fields["private_log"]?["entries"]?.list ?? []).map { entry in
                        (entry["message"]?.string ?? "") + "\n" + (entry["message_html"]?.string ?? "")
                    }
                }
            }
        }
        return texts
    }

    /// The first `[hourledger:…]` tag in a note.
    static func marker(in text: String) -> String? {
        guard let start = text.range(of: "[hourledger:"), let end = text[start.upperBound...].firstIndex(of: "]") else { return nil }
        return String(text[start.lowerBound...end])
    }
}

/// A contract's OQL rule, understood just enough to narrow it: the selected class and alias, and its top-level WHERE.
public struct OQL: Sendable, Equatable {
    public let text: String
    public let selectedClass: String
    /// The alias to qualify added conditions with: the `AS` name, else the class name itself.
    public let alias: String
    /// Where the top-level `WHERE` keyword starts, if there is one.
    let whereRange: Range<String.Index>?

    public struct SyntaxError: Error, CustomStringConvertible {
        public let description: String
    }

    public init(_ text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        self.text = trimmed
        let words = trimmed.split(whereSeparator: \.isWhitespace)
        guard words.count >= 2, words[0].uppercased() == "SELECT", words[1].allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
            throw SyntaxError(description: "an OQL rule starts with SELECT <Class>, got '\(text)'")
        }
        selectedClass = String(words[1])
        alias = words.count >= 4 && words[2].uppercased() == "AS" ? String(words[3]) : selectedClass
        whereRange = Self.topLevelWhere(trimmed)
    }

    /// The WHERE keyword outside quotes and parentheses.
    static func topLevelWhere(_ text: String) -> Range<String.Index>? {
        var depth = 0
        var quote: Character?
        var index = text.startIndex
        while index < text.endIndex {
            let c = text[index]
            if let q = quote {
                if c == "\\" { index = text.index(after: index) } else if c == q { quote = nil }
            } else if c == "'" || c == "\"" {
                quote = c
            } else if c == "(" {
                depth += 1
            } else if c == ")" {
                depth -= 1
            } else if depth == 0, c == "W" || c == "w", let end = text.index(index, offsetBy: 5, limitedBy: text.endIndex),
                      text[index..<end].uppercased() == "WHERE",
                      index == text.startIndex || text[text.index(before: index)].isWhitespace,
                      end == text.endIndex || text[end].isWhitespace || text[end] == "(" {
                return index..<end
            }
            if index < text.endIndex { index = text.index(after: index) }
        }
        return nil
    }

    /// The rule restricted to tickets modified after `since` and/or to the given ids, as one query.
    public func narrowed(since: String?, among ids: [Int]?) -> String {
        var extra: [String] = []
        if let since { extra.append("\(alias).last_update > \(Self.quote(since))") }
        if let ids { extra.append("\(alias).id IN (\(ids.isEmpty ? "0" : ids.map(String.init).joined(separator: ",")))") }
        guard !extra.isEmpty else { return text }
        if let whereRange {
            let condition = text[whereRange.upperBound...].trimmingCharacters(in: .whitespaces)
            return text[..<whereRange.lowerBound] + "WHERE (" + condition + ") AND " + extra.joined(separator: " AND ")
        }
        return text + " WHERE " + extra.joined(separator: " AND ")
    }

    /// An OQL string literal.
    public static func quote(_ value: String) -> String {
        "'" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
    }
}

