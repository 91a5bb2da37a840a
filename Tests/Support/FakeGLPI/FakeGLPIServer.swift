import Foundation
import Hummingbird
import Logging
import LoopbackServer
import HTTPTypes
import NIOCore

/// A GLPI 10.0.14 `apirest.php` on loopback that answers as the recordings in shared/fixtures/glpi do, errors included.
public final class FakeGLPIServer: Sendable {
    public let state: FakeGLPIState
    private let server: LoopbackServer
    public var port: Int { server.port }

    public var url: String { "http://127.0.0.1:\(port)/apirest.php" }

    /// Starts listening on 127.0.0.1 on a free port (or `port`).
    public init(state: FakeGLPIState = FakeGLPIState(), port: Int = 0) async throws {
        self.state = state
        let router = Router()
        let api = FakeGLPIAPI(state: state)
        for method in [HTTPRequest.Method.get, .post, .put, .delete] {
            router.on("/apirest.php/**", method: method) { request, _ in try await api.handle(request) }
        }
        server = try await LoopbackServer(router: router, label: "fake-glpi", port: port)
    }

    public func stop() async { await server.stop() }
}


/// The request handling, one GLPI behaviour per branch.
struct FakeGLPIAPI: Sendable {
    let state: FakeGLPIState

    static let searchOptions: Set<Int> = [1, 2, 3, 4, 5, 7, 8, 12, 14, 19, 26, 28, 33, 45, 80, 92, 96, 97, 173, 174, 193]
    static let itemDocs = "view documentation in your browser at http://127.0.0.1:8091/apirest.php/#"

    func handle(_ request: Request) async throws -> Response {
        let path = String(request.uri.path.dropFirst("/apirest.php".count))
        let query = Self.parseQuery(request.uri.query ?? "")
        let body = try await request.body.collect(upTo: 16 * 1024 * 1024)
        let bodyText = String(buffer: body)
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.canonicalName] = field.value }
        let method = request.method.rawValue

        let fault: (status: Int, delay: Duration)? = state.withLock {
            if state.logRequests {
                let decoded = (request.uri.path + (request.uri.query.map { "?" + $0 } ?? "")).removingPercentEncoding ?? request.uri.description
                state.log.append(.init(method: method, target: decoded, headers: headers, body: bodyText))
            }
            return state.failures.isEmpty ? nil : state.failures.removeFirst()
        }
        if let fault {
            if fault.delay > .zero { try await Task.sleep(for: fault.delay) }
            return Self.raw(fault.status, "<br />\n<b>Fatal error</b>: simulated failure<br />\n")
        }

        let appToken = headers["app-token"] ?? query.first { $0.0 == "app_token" }?.1
        guard let appToken else {
            return Self.error(400, "ERROR_APP_TOKEN_PARAMETERS_MISSING", "missing parameter app_token; \(Self.itemDocs)ERROR_APP_TOKEN_PARAMETERS_MISSING")
        }
        guard appToken == state.appToken else {
            return Self.error(400, "ERROR_WRONG_APP_TOKEN_PARAMETER", "parameter app_token seems wrong; \(Self.itemDocs)ERROR_WRONG_APP_TOKEN_PARAMETER")
        }
        if path == "/initSession" { return initSession(headers, fullSession: query.contains { $0.0 == "get_full_session" && $0.1 == "true" }) }

        guard let token = headers["session-token"] ?? query.first(where: { $0.0 == "session_token" })?.1, !token.isEmpty else {
            return Self.error(400, "ERROR_SESSION_TOKEN_MISSING", "parameter session_token is missing or empty; \(Self.itemDocs)ERROR_SESSION_TOKEN_MISSING")
        }
        guard let visible = state.withLock({ state.sessions[token] }) else {
            return Self.error(401, "ERROR_SESSION_TOKEN_INVALID", "session_token seems invalid")
        }
        if path == "/killSession" {
            state.withLock { _ = state.sessions.removeValue(forKey: token) }
            return Self.json(200, "true")
        }
        if path == "/getFullSession" { return fullSession(visible: visible) }

        let parts = path.split(separator: "/").map(String.init)
        if method != "GET", parts.first == "ITILFollowup" || (parts.count == 3 && parts[0] == "Ticket" && parts[2] == "ITILFollowup") {
            let (before, after) = state.withLock { (state.delayBeforeWrite, state.delayAfterWrite) }
            if before > .zero { try? await Task.sleep(for: before) }
            let response = method == "POST" ? addFollowup(bodyText, ticketFromPath: parts.count == 3 ? Int(parts[1]) : nil)
                : Self.error(400, "ERROR_RESOURCE_NOT_FOUND_NOR_COMMONDBTM", "resource not found or not an instance of CommonDBTM; \(Self.itemDocs)ERROR_RESOURCE_NOT_FOUND_NOR_COMMONDBTM")
            if after > .zero { try? await Task.sleep(for: after) }
            return response
        }
        if method != "GET", parts.first == "TicketTask" {
            let (before, after) = state.withLock { (state.delayBeforeWrite, state.delayAfterWrite) }
            if before > .zero { try? await Task.sleep(for: before) }
            let response = write(method: method, parts: parts, bodyText, visible: visible)
            if after > .zero { try? await Task.sleep(for: after) }
            return response
        }
        switch (method, parts.count) {
        case ("GET", 2) where parts[0] == "search":
            return search(itemtype: parts[1], query)
        case ("GET", 1):
            return getItems(itemtype: parts[0], query, visible: visible)
        case ("GET", 2):
            return getItem(itemtype: parts[0], id: Int(parts[1]), visible: visible)
        case ("GET", 3):
            return getSubItems(itemtype: parts[0], id: Int(parts[1]), sub: parts[2], query, visible: visible)
        default:
            return Self.error(400, "ERROR_RESOURCE_NOT_FOUND_NOR_COMMONDBTM", "resource not found or not an instance of CommonDBTM; \(Self.itemDocs)ERROR_RESOURCE_NOT_FOUND_NOR_COMMONDBTM")
        }
    }

    // MARK: Session

    func initSession(_ headers: [String: String], fullSession: Bool = false) -> Response {
        guard let authorization = headers["authorization"] else {
            return Self.error(400, "ERROR_LOGIN_PARAMETERS_MISSING", "parameter(s) login, password or user_token are missing; \(Self.itemDocs)ERROR_LOGIN_PARAMETERS_MISSING")
        }
        if authorization.hasPrefix("user_token ") {
            guard authorization.dropFirst("user_token ".count) == state.userToken else {
                return Self.error(401, "ERROR_GLPI_LOGIN_USER_TOKEN", "parameter user_token seems invalid")
            }
        } else if authorization.hasPrefix("Basic ") {
            let decoded = Data(base64Encoded: String(authorization.dropFirst(6))).map { String(decoding: $0, as: UTF8.self) } ?? ""
            if let person = state.withLock({ state.people.first { "\($0.login):\($0.password)" == decoded } }) {
                return personSession(person, full: fullSession)
            }
            guard decoded == "\(state.login):\(state.password)" else {
                return Self.error(401, "ERROR_GLPI_LOGIN", "Incorrect username or password")
            }
        } else {
            return Self.error(400, "ERROR_LOGIN_PARAMETERS_MISSING", "parameter(s) login, password or user_token are missing; \(Self.itemDocs)ERROR_LOGIN_PARAMETERS_MISSING")
        }
        let token = String((0..<26).map { _ in "abcdefghijklmnopqrstuvwxyz0123456789".randomElement()! })
        state.withLock { state.sessions[token] = Set(state.entities.keys) }
        return Self.json(200, "{\"session_token\":\(JSON.string(token))}")
    }

    /// A person's own session (login_01, login_05): with `get_full_session=true` the answer carries the session, whose
    /// `glpiactiveentities` is a map for a Self-Service profile and a list for a central one. The session sees only
    /// the person's entities (login_06: another entity's ticket answers 403).
    func personSession(_ person: FakeGLPIState.Person, full: Bool) -> Response {
        let token = String((0..<26).map { _ in "abcdefghijklmnopqrstuvwxyz0123456789".randomElement()! })
        state.withLock { state.sessions[token] = Set(person.entities) }
        guard full else { return Self.json(200, "{\"session_token\":\(JSON.string(token))}") }
        let central = person.interface == "central"
        let entityNames = state.withLock { person.entities.map { ($0, state.entities[$0]?.name ?? "Entity \($0)") } }
        let profileEntities = central
            ? "[" + entityNames.prefix(1).map { "{\"id\":\($0.0),\"name\":\(JSON.string($0.1)),\"is_recursive\":1}" }.joined(separator: ",") + "]"
            : "{" + entityNames.map { "\"\($0.0)\":{\"id\":\($0.0),\"name\":\(JSON.string($0.1)),\"is_recursive\":0}" }.joined(separator: ",") + "}"
        let active = central ? "[" + person.entities.map(String.init).joined(separator: ",") + "]"
            : "{" + person.entities.map { "\"\($0)\":\($0)" }.joined(separator: ",") + "}"
        let body = "{\"session_token\":\(JSON.string(token)),\"session\":{\"glpi_plugins\":[],\"glpiID\":\(person.id),"
            + "\"glpiname\":\(JSON.string(JSON.htmlEncode(person.login))),\"glpirealname\":\(JSON.string(JSON.htmlEncode(person.realname))),"
            + "\"glpifirstname\":\(JSON.string(JSON.htmlEncode(person.firstname))),\"glpidefault_entity\":\(person.entities.first ?? 0),"
            + "\"glpiprofiles\":{\"\(person.profileID)\":{\"name\":\(JSON.string(JSON.htmlEncode(person.profile))),\"entities\":\(profileEntities)}},"
            + "\"glpiactiveprofile\":{\"id\":\(person.profileID),\"name\":\(JSON.string(JSON.htmlEncode(person.profile))),\"interface\":\(JSON.string(person.interface)),"
            + "\"is_default\":1,\"ticket\":\(central ? 166_919 : 5),\"task\":\(central ? 13_329 : 1)},"
            + "\"glpiactiveentities\":\(active),\"glpiactive_entity\":\(person.entities.first ?? 0),"
            + "\"glpigroups\":[" + person.groups.map(String.init).joined(separator: ",") + "]}}"
        return Self.json(200, body)
    }

    /// The session of the API account (session_03_getFullSession, the parts HourLedger reads): who, the active
    /// profile with its rights, the active entities.
    func fullSession(visible: Set<Int>) -> Response {
        let (profile, login) = state.withLock { (state.profile, state.login) }
        let rights = profile.keys.sorted().map { "\(JSON.string($0)):\(profile[$0]!)" }.joined(separator: ",")
        let entities = visible.sorted().map { "\"\($0)\":{\"id\":\($0)}" }.joined(separator: ",")
        return Self.json(200, "{\"session\":{\"glpiID\":9,\"glpiname\":\(JSON.string(login)),\"glpifriendlyname\":\(JSON.string(login)),"
                         + "\"glpiactiveprofile\":{\"id\":9,\"name\":\"Contract hours API\",\"interface\":\"central\",\(rights)},"
                         + "\"glpiactiveentities\":{\(entities)},\"glpiactive_entity\":0}}")
    }

    /// GLPI's dropdown lists need READ (bit 1) on their right; without it getItems answers 403 (the recorded
    /// Technician + Contract READ profile has none on ITIL categories).
    static let listRights = ["Entity": "entity", "Group": "group", "ITILCategory": "itilcategory", "Contract": "contract"]

    // MARK: Search

    struct Criterion {
        var field: Int?
        var searchtype: String
        var value: String
        var link: String
        /// A nested group (`criteria[0][criteria][1][field]=…`), as GLPI's search engine takes them.
        var children: [Int: Criterion] = [:]

        init(field: Int? = nil, searchtype: String = "contains", value: String = "", link: String = "AND") {
            self.field = field
            self.searchtype = searchtype
            self.value = value
            self.link = link
        }

        /// Sets `key` of the criterion at `path` (indices down the nesting).
        static func set(_ criteria: inout [Int: Criterion], path: ArraySlice<Int>, key: String, value: String) {
            guard let index = path.first else { return }
            var criterion = criteria[index] ?? Criterion()
            if path.count > 1 {
                set(&criterion.children, path: path.dropFirst(), key: key, value: value)
            } else {
                switch key {
                case "field": criterion.field = Int(value)
                case "searchtype": criterion.searchtype = value
                case "value": criterion.value = value
                case "link": criterion.link = value
                default: break
                }
            }
            criteria[index] = criterion
        }

        /// Every criterion that tests a field, nested ones included.
        static func leaves(_ criteria: [Int: Criterion]) -> [Criterion] {
            criteria.values.flatMap { $0.children.isEmpty ? [$0] : leaves($0.children) }
        }

        /// As GLPI's SQL reads the links: AND binds before OR, `NOT` negates its own criterion (the first one's link
        /// counts only for its NOT).
        static func evaluate(_ criteria: [Int: Criterion], _ test: (Criterion) -> Bool) -> Bool {
            var any = false
            var all = true
            for (position, criterion) in criteria.keys.sorted().map({ criteria[$0]! }).enumerated() {
                var hit = criterion.children.isEmpty ? test(criterion) : evaluate(criterion.children, test)
                if criterion.link.hasSuffix("NOT") { hit = !hit }
                if position > 0, criterion.link.hasPrefix("OR") {
                    any = any || all
                    all = hit
                } else {
                    all = all && hit
                }
            }
            return any || all
        }
    }

    func search(itemtype: String, _ query: [(String, String)]) -> Response {
        if state.withLock({ state.deniedItemtypes.contains(itemtype) }) { return Self.rightMissing() }
        guard itemtype == "Ticket" else {
            return Self.error(400, "ERROR", "Bad field ID in search criteria; \(Self.itemDocs)ERROR")
        }
        var criteria: [Int: Criterion] = [:]
        var forced: [Int] = []
        var sort = "1", order = "ASC", rangeText = "0-50"
        var trash = false
        for (key, value) in query {
            if key.hasPrefix("criteria[") {
                // criteria[0][field], or nested: criteria[0][criteria][1][field].
                let pieces = key.split(whereSeparator: { $0 == "[" || $0 == "]" }).map(String.init)
                var path: [Int] = []
                var position = 0
                while position + 1 < pieces.count, pieces[position] == "criteria", let index = Int(pieces[position + 1]) {
                    path.append(index)
                    position += 2
                }
                guard !path.isEmpty, position == pieces.count - 1 else { continue }
                Criterion.set(&criteria, path: path[...], key: pieces[position], value: value)
            } else if key.hasPrefix("forcedisplay["), let column = Int(value) {
                forced.append(column)
            } else if key == "sort" { sort = value }
            else if key == "order" { order = value }
            else if key == "range" { rangeText = value }
            else if key == "is_deleted" { trash = value == "1" || value == "true" }
        }
        // Without READ on contracts the Ticket search has no contract option (193): GLPI adds it only for those who
        // may see contracts, so asking for it is a bad field.
        let contractsHidden = state.withLock { state.deniedItemtypes.contains("Contract") }
        for criterion in Criterion.leaves(criteria)
        where criterion.field.map({ !Self.searchOptions.contains($0) || ($0 == 193 && contractsHidden) }) ?? true {
            return Self.error(400, "ERROR", "Bad field ID in search criteria; \(Self.itemDocs)ERROR")
        }
        let pageStart = rangeText.split(separator: "-").first.flatMap { Int($0) } ?? 0
        let (rows, entityNames) = state.withLock { () -> ([FakeGLPIState.Ticket], [Int: String]) in
            state.beforeSearchPage?(state, pageStart)
            var candidates = state.sortedTickets(trash: trash)
            // date_mod > value is the common poll: binary search instead of a scan.
            if !criteria.values.contains(where: { $0.link.hasPrefix("OR") }),
               let since = criteria.values.first(where: { $0.field == 19 && $0.searchtype == "morethan" && $0.link == "AND" })?.value {
                var low = 0, high = candidates.count
                while low < high {
                    let mid = (low + high) / 2
                    if candidates[mid].dateMod > since { high = mid } else { low = mid + 1 }
                }
                candidates = Array(candidates[low...])
            }
            let matched = criteria.isEmpty ? candidates : candidates.filter { ticket in Criterion.evaluate(criteria) { matches(ticket, $0) } }
            var names: [Int: String] = [:]
            for id in Set(matched.map(\.entity)) { names[id] = state.completename(entity: id) }
            return (matched, names)
        }
        var sorted = rows
        switch sort {
        case "19": break
        case "2": sorted.sort { $0.id < $1.id }
        default: sorted.sort { ($0.name, $0.id) < ($1.name, $1.id) }
        }
        if order == "DESC" { sorted.reverse() }

        let total = sorted.count
        let bounds = rangeText.split(separator: "-").compactMap { Int($0) }
        let start = bounds.first ?? 0
        let end = bounds.count > 1 ? bounds[1] : start + 50
        if total > 0 && start >= total {
            return Self.error(400, "ERROR_RANGE_EXCEED_TOTAL", "Provided range exceed total count of data: \(total); \(Self.itemDocs)ERROR_RANGE_EXCEED_TOTAL")
        }
        let page = total == 0 ? [] : Array(sorted[start...min(end, total - 1)])
        // Like GLPI: the default display columns (name, entity) come along with the forced ones.
        var columns = [1, 80]
        for column in forced where !columns.contains(column) { columns.append(column) }
        let (contractLinks, contractNames) = state.withLock { (state.contractLinks, state.contractNames) }
        let (groupNames, categoryNames, taskLists) = state.withLock { () -> ([Int: String], [Int: String], [Int: [FakeGLPIState.Task]]) in
            var lists: [Int: [FakeGLPIState.Task]] = [:]
            if !Set(columns).isDisjoint(with: [28, 45, 92, 96, 97]) {
                for ticket in page { lists[ticket.id] = (state.tasksByTicket[ticket.id] ?? []).compactMap { state.tasks[$0] } }
            }
            return (state.groups, state.categories, lists)
        }
        /// A task column: null without tasks, a string for one, a list of strings for several (as column 8 does).
        func multi(_ values: [String]) -> String {
            values.isEmpty ? "null" : values.count == 1 ? JSON.string(values[0]) : "[" + values.map(JSON.string).joined(separator: ",") + "]"
        }
        var out = JSON()
        out.raw("{\"totalcount\":\(total),\"count\":\(page.count),\"sort\":[\(Int(sort) ?? 1)],\"order\":[\(JSON.string(order))],\"data\":[")
        for (index, ticket) in page.enumerated() {
            if index > 0 { out.raw(",") }
            out.raw("{")
            for (position, column) in columns.enumerated() {
                if position > 0 { out.raw(",") }
                out.raw("\"\(column)\":")
                switch column {
                case 1: out.raw(JSON.string(ticket.name))
                case 2: out.raw("\(ticket.id)")
                case 7: out.raw(categoryNames[ticket.category].map(JSON.string) ?? "null")
                case 8:
                    let names = ticket.groups.compactMap { groupNames[$0] }
                    out.raw(names.isEmpty ? "null" : names.count == 1 ? JSON.string(names[0]) : "[" + names.map(JSON.string).joined(separator: ",") + "]")
                case 12: out.raw("\(ticket.status)")
                case 14: out.raw("\(ticket.type)")
                // The linked contracts' names, stored encoded (search_Ticket_10): null without one, a list for several.
                case 193: out.raw(multi((contractLinks[ticket.id] ?? []).sorted().map { contractNames[$0] ?? "" }))
                case 19: out.raw(JSON.string(ticket.dateMod))
                case 28: out.raw("\(taskLists[ticket.id]?.count ?? 0)")
                case 45: out.raw("\(ticket.actiontimeTyped ?? (taskLists[ticket.id] ?? []).reduce(0) { $0 + $1.seconds })")
                case 92: out.raw(multi((taskLists[ticket.id] ?? []).map { $0.isPrivate ? "1" : "0" }))
                case 96: out.raw(multi((taskLists[ticket.id] ?? []).map { "\($0.seconds)" }))
                case 97: out.raw(multi((taskLists[ticket.id] ?? []).map(\.date)))
                case 80: out.raw(JSON.string(entityNames[ticket.entity] ?? ""))
                default: out.raw("null")
                }
            }
            out.raw("}")
        }
        let contentRange = page.isEmpty ? nil : "\(start)-\(start + page.count - 1)/\(total)"
        out.raw("]" + (contentRange.map { ",\"content-range\":\(JSON.string($0))" } ?? "") + "}")
        var extra = [("Accept-Range", "Ticket 1000")]
        if let contentRange { extra.append(("Content-Range", contentRange)) }
        return Self.json(page.count < total ? 206 : 200, out.bytes, extra: extra)
    }

    func matches(_ ticket: FakeGLPIState.Ticket, _ criterion: Criterion) -> Bool {
        let value = criterion.value
        switch (criterion.field, criterion.searchtype) {
        case (19, "morethan"): return ticket.dateMod > value
        case (19, "lessthan"): return ticket.dateMod < value
        case (2, "equals"): return Int(value) == ticket.id
        case (80, "equals"): return Int(value) == ticket.entity
        case (7, "equals"): return Int(value) == ticket.category
        case (14, "equals"): return Int(value) == ticket.type
        case (193, "equals"): return Int(value).map { state.contractLinks[ticket.id]?.contains($0) ?? false } ?? false
        case (8, "equals"): return Int(value).map(ticket.groups.contains) ?? false
        case (12, "equals"):
            switch value {
            case "notold": return ticket.status < 5
            case "old": return ticket.status >= 5
            case "all": return true
            default: return Int(value) == ticket.status
            }
        // LIKE '%value%' on what GLPI stores: the name HTML-encoded, and GLPI encodes the search value the same way.
        case (1, "contains"), (1, "notcontains"):
            let hit = ticket.name.lowercased().contains(JSON.htmlEncode(value).lowercased())
            return criterion.searchtype == "contains" ? hit : !hit
        case (7, "contains"), (7, "notcontains"):
            let hit = (state.categories[ticket.category] ?? "").lowercased().contains(JSON.htmlEncode(value).lowercased())
            return criterion.searchtype == "contains" ? hit : !hit
        case (_, "contains"): return true
        default:
            // GLPI answers an unknown search type with 200 and no rows.
            return false
        }
    }

    // MARK: Items

    func getItems(itemtype: String, _ query: [(String, String)], visible: Set<Int>) -> Response {
        if state.withLock({ state.deniedItemtypes.contains(itemtype) }) { return Self.rightMissing() }
        if let right = Self.listRights[itemtype], state.withLock({ (state.profile[right] ?? 0) & 1 }) == 0 { return Self.rightMissing() }
        if itemtype == "TicketTask" {
            // Every task the session may see, across tickets (getItems_TicketTask_paged); sort=date_mod&order=DESC
            // puts the newest changes first (getItems_TicketTask_sort_date_mod_desc). Only the page asked for is
            // encoded, as GLPI's SQL LIMIT does: a million tasks are not turned into JSON for every page.
            let sort = query.first { $0.0 == "sort" }?.1 ?? "id"
            let descending = query.first { $0.0 == "order" }?.1 == "DESC"
            let start = query.first { $0.0 == "range" }.flatMap { Int($0.1.split(separator: "-").first ?? "") } ?? 0
            let end = query.first { $0.0 == "range" }.flatMap { $0.1.split(separator: "-").last.flatMap { Int($0) } } ?? start + 50
            let (page, total): ([FakeGLPIState.Task], Int) = state.withLock {
                state.beforeTaskPage?(state, start)
                let sorted = state.sortedTasks(by: sort)
                // A session that sees every entity sees every task: the page is cut from the sorted list directly, as
                // SQL's LIMIT would, instead of filtering a million tasks for every page.
                let all: [FakeGLPIState.Task]
                if state.tickets.values.allSatisfy({ visible.contains($0.entity) }),
                   state.tasksByTicket.allSatisfy({ state.tickets[$0.key] != nil || $0.value.isEmpty }) {
                    all = sorted
                } else {
                    all = sorted.filter { task in state.tickets[task.ticketID].map { visible.contains($0.entity) } ?? false }
                }
                guard start < all.count, start <= end else { return ([], all.count) }
                let last = min(end, all.count - 1)
                let page = descending ? Array(all[(all.count - 1 - last)...(all.count - 1 - start)].reversed()) : Array(all[start...last])
                return (page, all.count)
            }
            return Self.page(page, start: start, total: total, itemtype: itemtype, encode: Self.taskJSON)
        }
        let items: [String] = state.withLock {
            switch itemtype {
            case "Entity":
                return state.entities.keys.filter(visible.contains).sorted().map { id in
                    let e = state.entities[id]!
                    return "{\"id\":\(id),\"name\":\(JSON.string(e.name)),\"entities_id\":\(e.parent.map(String.init) ?? "null"),\"completename\":\(JSON.string(state.completename(entity: id))),\"level\":1}"
                }
            case "Group":
                return state.groups.keys.sorted().map { id in
                    "{\"id\":\(id),\"entities_id\":0,\"is_recursive\":1,\"name\":\(JSON.string(state.groups[id]!)),\"completename\":\(JSON.string(state.groups[id]!)),\"is_assign\":1}"
                }
            case "ITILCategory":
                return state.categories.keys.sorted().map { id in
                    "{\"id\":\(id),\"entities_id\":0,\"is_recursive\":1,\"name\":\(JSON.string(state.categories[id]!)),\"completename\":\(JSON.string(state.categories[id]!))}"
                }
            case "Contract":
                // getItems_Contract: trashed contracts are left out unless is_deleted=true (apirest.md), templates are
                // listed. expand_dropdowns gives names instead of ids, the entity's completename with `&#62;` too.
                let expand = query.contains { $0 == ("expand_dropdowns", "true") }
                let deleted = query.contains { $0 == ("is_deleted", "true") }
                return state.contracts.values.filter { $0.isDeleted == deleted && visible.contains($0.entity) }.sorted { $0.id < $1.id }.map { c in
                    let entity = expand ? JSON.string(state.completename(entity: c.entity).replacingOccurrences(of: " > ", with: " &#62; ")) : "\(c.entity)"
                    let type = expand ? JSON.string(state.contractTypes[c.type] ?? "") : "\(c.type)"
                    return "{\"id\":\(c.id),\"entities_id\":\(entity),\"is_recursive\":\(c.isRecursive ? 1 : 0),\"name\":\(JSON.string(c.name)),"
                        + "\"num\":\(JSON.string(c.number)),\"contracttypes_id\":\(type),\"locations_id\":0,\"begin_date\":\(c.begins.map(JSON.string) ?? "null"),"
                        + "\"duration\":\(c.months),\"notice\":0,\"periodicity\":\(c.periodicity),\"billing\":\(c.periodicity),\"comment\":\(JSON.string(c.comment)),"
                        + "\"accounting_number\":\(JSON.string(c.accountingNumber)),\"is_deleted\":\(c.isDeleted ? 1 : 0),\"max_links_allowed\":0,\"alert\":0,"
                        + "\"renewal\":\(c.renewal),\"template_name\":null,\"is_template\":\(c.isTemplate ? 1 : 0),\"states_id\":0,"
                        + "\"date_mod\":\(JSON.string(c.dateMod)),\"date_creation\":\(JSON.string(c.dateMod))}"
                }
            default:
                return []
            }
        }
        return Self.list(items, itemtype: itemtype, query)
    }

    func getItem(itemtype: String, id: Int?, visible: Set<Int>) -> Response {
        if state.withLock({ state.deniedItemtypes.contains(itemtype) }) { return Self.rightMissing() }
        // A ticket of an entity the session cannot see (error_19_rights_getItem_other_entity_ticket).
        if itemtype == "Ticket", let id, let entity = state.ticket(id)?.entity, !visible.contains(entity) { return Self.rightMissing() }
        let body: String? = state.withLock {
            guard let id else { return nil }
            switch itemtype {
            case "Ticket":
                guard let t = state.tickets[id] else { return nil }
                let actiontime = state.actiontime(ofTicket: id)
                return "{\"id\":\(t.id),\"entities_id\":\(t.entity),\"name\":\(JSON.string(t.name)),\"date_mod\":\(JSON.string(t.dateMod)),\"status\":\(t.status),\"type\":\(t.type),\"itilcategories_id\":\(t.category),\"actiontime\":\(actiontime),\"is_deleted\":\(t.isDeleted ? 1 : 0)}"
            case "TicketTask":
                return state.tasks[id].map(Self.taskJSON)
            default:
                return nil
            }
        }
        guard let body else { return Self.error(404, "ERROR_ITEM_NOT_FOUND", "Item not found") }
        return Self.json(200, body)
    }

    func getSubItems(itemtype: String, id: Int?, sub: String, _ query: [(String, String)], visible: Set<Int>) -> Response {
        if state.withLock({ state.deniedItemtypes.contains(itemtype) || state.deniedItemtypes.contains(sub) }) { return Self.rightMissing() }
        if itemtype == "Ticket", let id, let entity = state.ticket(id)?.entity, !visible.contains(entity) { return Self.rightMissing() }
        let items: [String]? = state.withLock {
            guard itemtype == "Ticket", let id, let ticket = state.tickets[id] else { return nil }
            switch sub {
            case "TicketTask":
                return (state.tasksByTicket[id] ?? []).compactMap { state.tasks[$0] }.map(Self.taskJSON)
            case "ITILFollowup":
                return state.followups.values.filter { $0.ticketID == id }.sorted { $0.id < $1.id }.map(Self.followupJSON)
            case "Group_Ticket":
                return ticket.groups.enumerated().map { index, group in
                    "{\"id\":\(id * 100 + index),\"tickets_id\":\(id),\"groups_id\":\(group),\"type\":2}"
                }
            default:
                return []
            }
        }
        guard let items else { return Self.error(404, "ERROR_ITEM_NOT_FOUND", "Item not found") }
        return Self.list(items, itemtype: sub, query)
    }

    /// A task as GLPI 10 returns it (getItems_TicketTask_paged.json, getSubItems_Ticket_TicketTask.json,
    /// task_02_getItem_TicketTask.json): every column in its order, a uuid, and the HATEOAS links to the ticket, the
    /// category, the author, the technician (twice the same user when they are one, as in task_02) and the documents,
    /// at the recording's address. A foreign key of 0 has no link, as users_id_editor and groups_id_tech show there.
    static func taskJSON(_ t: FakeGLPIState.Task) -> String {
        let base = "http://127.0.0.1:8091/apirest.php"
        var links = ["{\"rel\":\"Ticket\",\"href\":\"\(base)/Ticket/\(t.ticketID)\"}"]
        if t.category != 0 { links.append("{\"rel\":\"TaskCategory\",\"href\":\"\(base)/TaskCategory/\(t.category)\"}") }
        links.append("{\"rel\":\"User\",\"href\":\"\(base)/User/9\"}")
        if t.technician != 0 { links.append("{\"rel\":\"User\",\"href\":\"\(base)/User/\(t.technician)\"}") }
        links.append("{\"rel\":\"Document_Item\",\"href\":\"\(base)/TicketTask/\(t.id)/Document_Item/\"}")
        let uuid = String(format: "%08x-0000-4000-8000-%012x", t.id & 0xFFFF_FFFF, t.ticketID)
        return "{\"id\":\(t.id),\"uuid\":\"\(uuid)\",\"tickets_id\":\(t.ticketID),\"taskcategories_id\":\(t.category),\"date\":\(JSON.string(t.date)),\"users_id\":9,\"users_id_editor\":0,\"content\":\(JSON.string(t.content)),\"is_private\":\(t.isPrivate ? 1 : 0),\"actiontime\":\(t.seconds),\"begin\":null,\"end\":null,\"state\":\(t.state),\"users_id_tech\":\(t.technician),\"groups_id_tech\":0,\"date_mod\":\(JSON.string(t.dateMod)),\"date_creation\":\(JSON.string(t.dateMod)),\"tasktemplates_id\":0,\"timeline_position\":1,\"sourceitems_id\":0,\"sourceof_items_id\":0,\"links\":[\(links.joined(separator: ","))]}"
    }

    static func followupJSON(_ f: FakeGLPIState.Followup) -> String {
        "{\"id\":\(f.id),\"itemtype\":\"Ticket\",\"items_id\":\(f.ticketID),\"date\":\(JSON.string(f.date)),\"users_id\":9,\"users_id_editor\":0,\"content\":\(JSON.string(f.content)),\"is_private\":\(f.isPrivate ? 1 : 0),\"requesttypes_id\":1,\"date_mod\":\(JSON.string(f.date)),\"date_creation\":\(JSON.string(f.date)),\"timeline_position\":1,\"sourceitems_id\":0,\"sourceof_items_id\":0}"
    }

    /// getItems / getSubItems paging: default range 0-50, 206 when partial, Content-Range on every non-empty page.
    static func list(_ items: [String], itemtype: String, _ query: [(String, String)]) -> Response {
        list(items, itemtype: itemtype, query) { $0 }
    }

    /// One page of `items`, as GLPI pages a list: `range`, `Content-Range`, 206 when partial, 400 past the end.
    static func list<Item>(_ items: [Item], itemtype: String, _ query: [(String, String)], encode: (Item) -> String) -> Response {
        let rangeText = query.first { $0.0 == "range" }?.1 ?? "0-50"
        let bounds = rangeText.split(separator: "-").compactMap { Int($0) }
        let start = bounds.first ?? 0
        let end = bounds.count > 1 ? bounds[1] : start + 50
        let total = items.count
        guard total == 0 || start < total else { return page([Item](), start: start, total: total, itemtype: itemtype, encode: encode) }
        return page(total == 0 ? [] : Array(items[start...min(end, total - 1)]), start: start, total: total, itemtype: itemtype, encode: encode)
    }

    /// A page already cut from a list of `total` items.
    static func page<Item>(_ page: [Item], start: Int, total: Int, itemtype: String, encode: (Item) -> String) -> Response {
        if total > 0 && start >= total {
            return error(400, "ERROR_RANGE_EXCEED_TOTAL", "Provided range exceed total count of data: \(total); \(itemDocs)ERROR_RANGE_EXCEED_TOTAL")
        }
        var extra = [("Accept-Range", "\(itemtype) 1000")]
        if !page.isEmpty { extra.append(("Content-Range", "\(start)-\(start + page.count - 1)/\(total)")) }
        return json(page.count < total ? 206 : 200, "[" + page.map(encode).joined(separator: ",") + "]", extra: extra)
    }

    // MARK: Writes

    func write(method: String, parts: [String], _ bodyText: String, visible: Set<Int>) -> Response {
        switch (method, parts.count) {
        case ("POST", 1): return addTasks(bodyText, visible: visible)
        case ("PUT", 2): return updateTask(id: Int(parts[1]), bodyText)
        case ("DELETE", 2): return deleteTasks([Int(parts[1]) ?? -1])
        default:
            return Self.error(400, "ERROR_RESOURCE_NOT_FOUND_NOR_COMMONDBTM", "resource not found or not an instance of CommonDBTM; \(Self.itemDocs)ERROR_RESOURCE_NOT_FOUND_NOR_COMMONDBTM")
        }
    }

    func addTasks(_ body: String, visible: Set<Int>) -> Response {
        if state.withLock({ state.deniedItemtypes.contains("TicketTask") }) {
            return Self.error(400, "ERROR_GLPI_ADD", "You don't have permission to perform this action.")
        }
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] else {
            return Self.error(400, "ERROR_JSON_PAYLOAD_INVALID", "JSON payload seems not valid")
        }
        guard let input = object["input"] else {
            return Self.error(400, "ERROR_BAD_ARRAY", "input parameter must be an array of objects; \(Self.itemDocs)ERROR_BAD_ARRAY")
        }
        let list = (input as? [[String: Any]]) ?? ((input as? [String: Any]).map { [$0] } ?? [])
        var created: [Int] = []
        for fields in list {
            let ticket = (fields["tickets_id"] as? Int) ?? 0
            guard ticket > 0, let parent = state.ticket(ticket) else {
                return Self.error(400, "ERROR_GLPI_ADD", "")
            }
            // GLPI answers a refused add with ERROR_GLPI_ADD and status 400, whatever the cause (error_18): a ticket
            // the session cannot see, or a profile without "Add to all tickets" (4096) on tasks.
            guard visible.contains(parent.entity), state.withLock({ (state.profile["task"] ?? 0) & 4096 }) != 0 else {
                return Self.error(400, "ERROR_GLPI_ADD", "You don't have permission to perform this action.")
            }
            let id = state.withLock {
                state.insertTask(ticket: ticket, seconds: fields["actiontime"] as? Int ?? 0, technician: fields["users_id_tech"] as? Int ?? 0,
                                 isPrivate: (fields["is_private"] as? Int ?? 0) == 1, content: fields["content"] as? String ?? "",
                                 date: fields["date"] as? String, category: fields["taskcategories_id"] as? Int ?? 0, state: fields["state"] as? Int ?? 1)
            }
            created.append(id)
        }
        if input is [String: Any], let id = created.first {
            return Self.json(201, "{\"id\":\(id),\"message\":\"\"}", extra: [("location", "http://127.0.0.1:8091/apirest.php/TicketTask/\(id)")])
        }
        return Self.json(201, "[" + created.map { "{\"id\":\($0),\"message\":\"\"}" }.joined(separator: ",") + "]")
    }

    /// addItems ITILFollowup: like a task, it needs an existing ticket, and writing it bumps the ticket's date_mod.
    func addFollowup(_ body: String, ticketFromPath: Int?) -> Response {
        if state.withLock({ state.deniedItemtypes.contains("ITILFollowup") }) {
            return Self.error(400, "ERROR_GLPI_ADD", "You don't have permission to perform this action.")
        }
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] else {
            return Self.error(400, "ERROR_JSON_PAYLOAD_INVALID", "JSON payload seems not valid")
        }
        guard let fields = object["input"] as? [String: Any] else {
            return Self.error(400, "ERROR_BAD_ARRAY", "input parameter must be an array of objects; \(Self.itemDocs)ERROR_BAD_ARRAY")
        }
        let ticket = ticketFromPath ?? (fields["items_id"] as? Int) ?? 0
        guard (fields["itemtype"] as? String ?? "Ticket") == "Ticket", ticket > 0, state.ticket(ticket) != nil else {
            return Self.error(400, "ERROR_GLPI_ADD", "")
        }
        let id = state.withLock {
            state.insertFollowup(ticket: ticket, content: fields["content"] as? String ?? "", isPrivate: (fields["is_private"] as? Int ?? 0) == 1)
        }
        return Self.json(201, "{\"id\":\(id),\"message\":\"\"}", extra: [("location", "http://127.0.0.1:8091/apirest.php/ITILFollowup/\(id)")])
    }

    func updateTask(id: Int?, _ body: String) -> Response {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] else {
            return Self.error(400, "ERROR_JSON_PAYLOAD_INVALID", "JSON payload seems not valid")
        }
        guard let id, let fields = object["input"] as? [String: Any], state.withLock({ state.tasks[id] != nil }) else {
            return Self.json(400, "[\"ERROR_GLPI_UPDATE\",null]")
        }
        state.editTask(id) { task in
            if let seconds = fields["actiontime"] as? Int { task.seconds = seconds }
            if let content = fields["content"] as? String { task.content = content }
            if let date = fields["date"] as? String { task.date = date }
            if let isPrivate = fields["is_private"] as? Int { task.isPrivate = isPrivate == 1 }
        }
        return Self.json(200, "[{\"\(id)\":true,\"message\":\"\"}]")
    }

    func deleteTasks(_ ids: [Int]) -> Response {
        let results = ids.map { id in state.withLock { state.purgeTask(id) } ? "{\"\(id)\":true,\"message\":\"\"}" : "{\"\(id)\":false,\"message\":\"Item not found\"}" }
        return Self.json(200, "[" + results.joined(separator: ",") + "]")
    }

    // MARK: Responses

    static let commonHeaders: [(String, String)] = [
        ("X-Powered-By", "PHP/8.2.36"),
        ("Access-Control-Expose-Headers", "content-type, content-range, accept-range"),
        ("Pragma", "no-cache"),
        ("Cache-Control", "no-store, no-cache, must-revalidate"),
        ("Expires", "Mon, 26 Jul 1997 05:00:00 GMT"),
    ]

    static func json(_ status: Int, _ body: String, extra: [(String, String)] = []) -> Response {
        json(status, Array(body.utf8), extra: extra)
    }

    static func json(_ status: Int, _ body: [UInt8], extra: [(String, String)] = []) -> Response {
        var headers = HTTPFields()
        for (name, value) in commonHeaders + [("Content-Type", "application/json; charset=UTF-8")] + extra {
            headers.append(HTTPField(name: HTTPField.Name(name)!, value: value))
        }
        return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    static func raw(_ status: Int, _ body: String) -> Response {
        var headers = HTTPFields()
        headers.append(HTTPField(name: .contentType, value: "text/html; charset=UTF-8"))
        return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    static func error(_ status: Int, _ code: String, _ message: String) -> Response {
        json(status, "[\(JSON.string(code)),\(JSON.string(message))]")
    }

    static func rightMissing() -> Response {
        error(403, "ERROR_RIGHT_MISSING", "You don't have permission to perform this action.")
    }

    static func parseQuery(_ query: String) -> [(String, String)] { LoopbackServer.parseForm(query) }
}

/// A small JSON writer: the fake serves 100,000-ticket searches, where JSONSerialization would dominate the benchmark.
public struct JSON {
    var bytes: [UInt8] = []

    mutating func raw(_ text: String) { bytes.append(contentsOf: text.utf8) }

    static func string(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "/": out += "\\/"
            default:
                if scalar.value < 0x20 { out += String(format: "\\u%04x", scalar.value) } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out + "\""
    }

    /// GLPI 10's input cleaning (shared/fixtures/glpi/README.md, search_Ticket_11): `&`, `<` and `>` are stored as
    /// `&#38;`, `&#60;` and `&#62;`; quotes and accents stay as they are. Every answer returns the stored form.
    public static func htmlEncode(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "<": out += "&#60;"
            case ">": out += "&#62;"
            case "&": out += "&#38;"
            default: out.append(character)
            }
        }
        return out
    }
}
