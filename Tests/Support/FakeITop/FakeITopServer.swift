import Foundation
import HTTPTypes
import Hummingbird
import Logging
import LoopbackServer
import NIOCore

/// An iTop 3.2.0 `rest.php` on loopback that answers as the recordings in shared/fixtures/itop do: HTTP 200 for every
/// outcome with the result in `code`, ids as strings, `objects` keyed `Class::id` (null when empty), "Found: N" totals,
/// limit/page paging in id-descending order, and a mandatory `comment` on writes.
public final class FakeITopServer: Sendable {
    public let state: FakeITopState
    private let server: LoopbackServer
    public var port: Int { server.port }

    /// The iTop root; the REST endpoint is below it.
    public var url: String { "http://127.0.0.1:\(port)" }
    public var endpoint: String { url + "/webservices/rest.php" }

    public init(state: FakeITopState = FakeITopState(), port: Int = 0) async throws {
        self.state = state
        let router = Router()
        let api = FakeITopAPI(state: state)
        for method in [HTTPRequest.Method.get, .post] {
            router.on("/webservices/rest.php", method: method) { request, _ in try await api.handle(request) }
        }
        server = try await LoopbackServer(router: router, label: "fake-itop", port: port)
    }

    public func stop() async { await server.stop() }
}


struct FakeITopAPI: Sendable {
    let state: FakeITopState

    static let ticketAttributes = [
        "finalclass", "friendlyname", "operational_status", "ref", "org_id", "org_id_friendlyname", "org_name", "caller_id",
        "caller_id_friendlyname", "caller_name", "team_id", "team_id_friendlyname", "team_name", "agent_id", "agent_id_friendlyname",
        "agent_name", "title", "description", "start_date", "end_date", "last_update", "close_date", "private_log",
    ]
    /// UserRequest's attributes in the order iTop 3.2.0 lists them for `output_fields: "*"` (fixture 14).
    static let requestAttributes = [
        "operational_status", "ref", "org_id", "org_name", "caller_id", "caller_name", "team_id", "team_name", "team_email", "agent_id",
        "agent_name", "title", "description", "start_date", "end_date", "last_update", "close_date", "private_log", "contacts_list",
        "functionalcis_list", "workorders_list", "status", "request_type", "impact", "priority", "urgency", "origin", "approver_id",
        "approver_email", "service_id", "service_name", "servicesubcategory_id", "servicesubcategory_name", "escalation_flag",
        "escalation_reason", "assignment_date", "resolution_date", "last_pending_date", "cumulatedpending", "tto", "ttr",
        "tto_escalation_deadline", "sla_tto_passed", "sla_tto_over", "ttr_escalation_deadline", "sla_ttr_passed", "sla_ttr_over",
        "time_spent", "resolution_code", "solution", "pending_reason", "parent_request_id", "parent_request_ref", "parent_incident_id",
        "parent_incident_ref", "parent_problem_id", "parent_problem_ref", "parent_change_id", "parent_change_ref", "related_request_list",
        "public_log", "user_satisfaction", "user_comment", "finalclass", "friendlyname", "org_id_friendlyname", "org_id_obsolescence_flag",
        "caller_id_friendlyname", "caller_id_obsolescence_flag", "team_id_friendlyname", "team_id_obsolescence_flag",
        "agent_id_friendlyname", "agent_id_obsolescence_flag", "approver_id_friendlyname", "approver_id_obsolescence_flag",
        "service_id_friendlyname", "servicesubcategory_id_friendlyname", "parent_request_id_friendlyname",
        "parent_incident_id_friendlyname", "parent_problem_id_friendlyname", "parent_change_id_friendlyname",
        "parent_change_id_finalclass_recall",
    ]
    static let classes: [String: [String]] = [
        "Ticket": ticketAttributes,
        "UserRequest": requestAttributes,
        "Incident": requestAttributes,
        "Organization": ["name", "code", "status", "parent_id", "parent_name", "deliverymodel_id", "friendlyname"],
        "User": ["login", "contactid", "org_id", "profile_list", "status", "friendlyname"],
        "Person": ["name", "first_name", "org_id", "org_name", "email", "friendlyname"],
        "CustomerContract": ["name", "org_id", "organization_name", "provider_id", "provider_name", "contracttype_id", "contracttype_name", "status",
                             "start_date", "end_date", "cost", "cost_currency", "cost_unit", "billing_frequency", "description", "services_list",
                             "contacts_list", "documents_list", "functionalcis_list", "providercontracts_list", "finalclass", "friendlyname",
                             "org_id_friendlyname", "org_id_obsolescence_flag", "contracttype_id_friendlyname", "provider_id_friendlyname",
                             "provider_id_obsolescence_flag"],
        "CMDBChangeOp": ["change", "date", "userinfo", "user_id", "objclass", "objkey", "finalclass", "friendlyname"],
        "CMDBChangeOpSetAttributeCaseLog": ["change", "date", "userinfo", "user_id", "objclass", "objkey", "attcode", "lastentry", "finalclass",
                                            "friendlyname"],
    ]

    func handle(_ request: Request) async throws -> Response {
        let body = String(buffer: try await request.body.collect(upTo: 16 * 1024 * 1024))
        let contentType = request.headers[.contentType]
        let query = Self.parseForm(request.uri.query ?? "")
        let form = request.method == .post && (contentType ?? "").contains("application/x-www-form-urlencoded") ? Self.parseForm(body) : [:]
        let fault: (status: Int, delay: Duration)? = state.withLock {
            if state.logRequests { state.log.append(.init(method: request.method.rawValue, target: request.uri.description, contentType: contentType, form: form)) }
            return state.failures.isEmpty ? nil : state.failures.removeFirst()
        }
        if let fault {
            if fault.delay > .zero { try await Task.sleep(for: fault.delay) }
            var headers = HTTPFields()
            headers.append(HTTPField(name: .contentType, value: "text/html; charset=UTF-8"))
            return Response(status: .init(code: fault.status), headers: headers,
                            body: .init(byteBuffer: ByteBuffer(string: "<br />\n<b>Fatal error</b>: simulated failure<br />\n")))
        }
        let parameters = query.merging(form) { _, posted in posted }
        guard let version = parameters["version"], !version.isEmpty else {
            return Self.answer(["code": 2, "message": "Error: Missing parameter 'version' (e.g. '1.0')"])
        }
        guard ["1.0", "1.1", "1.2", "1.3", "1.4"].contains(version) else {
            return Self.answer(["code": 10, "message": "Error: There is no service available for version '\(version)'"])
        }
        // Credentials come from the POSTed form or HTTP Basic, never from the query string.
        var login = form["auth_user"]
        var password = form["auth_pwd"]
        if login == nil, let basic = request.headers[.authorization], basic.hasPrefix("Basic "),
           let decoded = Data(base64Encoded: String(basic.dropFirst(6))).map({ String(decoding: $0, as: UTF8.self) }),
           let colon = decoded.firstIndex(of: ":") {
            login = String(decoded[..<colon])
            password = String(decoded[decoded.index(after: colon)...])
        }
        guard let login, let user = state.withLock({ state.users[login] }), user.password == password else {
            return Self.answer(["code": 1, "message": "Error: Invalid login"])
        }
        if user.profiles == ["Portal user"] {
            return Self.answer(["code": 1, "message": "Error: Portal user is not allowed"])  // 77
        }
        guard user.hasRESTProfile else {
            return Self.answer(["code": 1, "message": "Error: This user is not authorized to use the web services. (The profile REST Services User is required to access the REST web services)"])
        }
        guard let jsonText = parameters["json_data"], !jsonText.isEmpty else {
            return Self.answer(["code": 3, "message": "Error: Missing parameter 'json_data'"])
        }
        guard let operation = (try? JSONSerialization.jsonObject(with: Data(jsonText.utf8))) as? [String: Any] else {
            return Self.answer(["code": 4, "message": "Error: Parameter json_data is not a valid JSON structure"])
        }
        let verb = operation["operation"] as? String ?? ""
        switch verb {
        case "list_operations":
            return Self.answer(["code": 0, "message": "Operations: 7", "version": version, "operations": [
                ["verb": "core/create", "description": "Create an object", "extension": "CoreServices"],
                ["verb": "core/update", "description": "Update an object", "extension": "CoreServices"],
                ["verb": "core/apply_stimulus", "description": "Apply a stimulus to change the state of an object", "extension": "CoreServices"],
                ["verb": "core/get", "description": "Search for objects", "extension": "CoreServices"],
                ["verb": "core/delete", "description": "Delete objects", "extension": "CoreServices"],
                ["verb": "core/get_related", "description": "Get related objects through the specified relation", "extension": "CoreServices"],
                ["verb": "core/check_credentials", "description": "Check user credentials", "extension": "CoreServices"],
            ]])
        case "core/get":
            // 73: the daemon's usual profiles may not read User; 74: an administrator may.
            if operation["class"] as? String == "User", !user.readsUsers {
                return Self.answer(["code": 1, "message": "The current user does not have enough permissions for reading data of class User", "objects": NSNull()])
            }
            return get(operation)
        case "core/check_credentials":
            // 71, 72, 76: any login and password, checked for the caller; nothing about who it is.
            let checked = state.withLock { state.users[operation["user"] as? String ?? ""] }
            let authorized = checked.map { $0.password == operation["password"] as? String && $0.status == "enabled" } ?? false
            return Self.answer(["code": 0, "message": NSNull(), "authorized": authorized])
        case "core/update":
            let response = update(operation, user: user, login: login)
            let delay = state.withLock { state.delayAfterWrite }
            if delay > .zero { try? await Task.sleep(for: delay) }
            return response
        default:
            return Self.answer(["code": 11, "message": "Error: Unknown verb '\(verb)' in version '\(version)'"])
        }
    }

    // MARK: core/get

    func get(_ operation: [String: Any]) -> Response {
        let itemClass = operation["class"] as? String ?? ""
        guard let attributes = Self.classes[itemClass] else {
            return Self.answer(["code": 100, "message": "Error: class: '\(itemClass)' is not a valid class'"])
        }
        let fieldsText = operation["output_fields"] as? String ?? "*"
        let fields = fieldsText == "*" || fieldsText == "*+" ? attributes : fieldsText.split(separator: ",").map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        if let bad = fields.first(where: { $0 != "id" && !attributes.contains($0) }) {
            return Self.answer(["code": 100, "message": "Error: output_fields: invalid attribute code '\(bad)'"])
        }
        let page = operation["page"] as? Int
        let limit = operation["limit"] as? Int ?? 0
        if let page, page < 1 {
            return Self.answer(["code": 13, "message": "The request page number is not valid. It must be an integer greater than 0", "objects": NSNull()])
        }
        // Outside the lock, so the hook can change the fake through its public methods, or wait.
        state.withLock { state.beforePage }?(state, page ?? 1)
        return state.withLock { () -> Response in
            let rows: [(itemClass: String, id: Int, row: [String: String])]
            switch operation["key"] {
            case let oqlText as String:
                do {
                    let oql = try FakeOQL(oqlText, classes: Self.classes)
                    rows = select(oql)
                } catch let failure as FakeOQL.Failure {
                    return Self.answer(["code": 100, "message": "Error: Query failed to execute: query = \(oqlText), exception_class = \(failure.message)"])
                } catch {
                    return Self.answer(["code": 100, "message": "Error: \(error)"])
                }
            case let id as Int:
                rows = self.rows(of: itemClass).filter { $0.id == id }
            case let criteria as [String: Any]:
                rows = self.rows(of: itemClass).filter { row in criteria.allSatisfy { key, value in row.row[key] == "\(value)" } }
            default:
                return Self.answer(["code": 100, "message": "Error: Missing parameter 'key'"])
            }
            let ordered = rows.sorted { $0.id > $1.id }
            let pageRows = limit > 0 ? Array(ordered.dropFirst(((page ?? 1) - 1) * limit).prefix(limit)) : ordered
            var objects: [String: Any] = [:]
            for found in pageRows {
                var out: [String: Any] = [:]
                for field in fields { out[field] = output(field, of: found) }
                objects["\(found.itemClass)::\(found.id)"] = ["code": 0, "message": "", "class": found.itemClass, "key": "\(found.id)", "fields": out]
            }
            return Self.answer(["code": 0, "message": "Found: \(ordered.count)", "objects": objects.isEmpty ? NSNull() : objects])
        }
    }

    /// The objects of a class (a parent class includes its subclasses), each as attribute → text.
    func rows(of itemClass: String) -> [(itemClass: String, id: Int, row: [String: String])] {
        switch itemClass {
        case "Ticket", "UserRequest", "Incident":
            return state.tickets.values.filter { itemClass == "Ticket" || $0.itemClass == itemClass }.map { t in
                let row = [
                    "id": "\(t.id)", "finalclass": t.itemClass, "friendlyname": t.ref, "ref": t.ref, "title": t.title, "status": t.status,
                    "operational_status": ["resolved": "resolved", "closed": "closed"][t.status] ?? "ongoing",
                    "org_id": "\(t.org)", "org_name": state.organizations[t.org]?.name ?? "", "team_id": "\(t.team)", "agent_id": "\(t.agent)",
                    "service_id": "\(t.service)", "service_name": state.services[t.service] ?? "", "servicesubcategory_id": "\(t.subcategory)",
                    "last_update": t.lastUpdate,
                    "request_type": "service_request", "time_spent": "0",
                ]
                return (t.itemClass, t.id, row)
            }
        case "User":
            return state.users.map { login, user in
                let org = state.persons[user.contactID]?.org ?? 0
                return ("UserLocal", user.id, ["id": "\(user.id)", "login": login, "contactid": "\(user.contactID)", "org_id": "\(org)",
                                              "status": user.status, "friendlyname": login, "profile_list": user.profiles.joined(separator: "|")])
            }
        case "Person":
            return state.persons.values.map { person in
                ("Person", person.id, ["id": "\(person.id)", "name": person.name, "first_name": person.firstName, "org_id": "\(person.org)",
                                       "org_name": state.organizations[person.org]?.name ?? "", "email": person.email,
                                       "friendlyname": "\(person.firstName) \(person.name)"])
            }
        case "CustomerContract":
            return state.customerContracts.values.map { c in
                ("CustomerContract", c.id, ["id": "\(c.id)", "name": c.name, "org_id": "\(c.org)", "organization_name": state.organizations[c.org]?.name ?? "",
                                            "provider_id": "1", "provider_name": "Acme Managed Services", "contracttype_id": "43",
                                            "contracttype_name": c.typeName, "status": c.status, "start_date": c.start, "end_date": c.end,
                                            "billing_frequency": c.billingFrequency, "finalclass": "CustomerContract", "friendlyname": c.name,
                                            "org_id_friendlyname": state.organizations[c.org]?.name ?? "", "contracttype_id_friendlyname": c.typeName,
                                            "provider_id_friendlyname": "Acme Managed Services"])
            }
        case "Organization":
            return state.organizations.map { id, org in
                (itemClass, id, ["id": "\(id)", "name": org.name, "code": org.code, "status": "active", "parent_id": "\(org.parent)",
                                 "friendlyname": org.name])
            }
        case "CMDBChangeOp", "CMDBChangeOpSetAttributeCaseLog":
            return state.changeOps.map { op in
                ("CMDBChangeOpSetAttributeCaseLog", op.id, [
                    "id": "\(op.id)", "change": "\(op.change)", "date": op.date, "userinfo": op.userinfo, "user_id": "\(op.userID)",
                    "objclass": op.objclass, "objkey": "\(op.objkey)", "attcode": op.attcode, "lastentry": "\(op.lastentry)",
                    "finalclass": "CMDBChangeOpSetAttributeCaseLog", "friendlyname": "\(op.change)",
                ])
            }
        default: return []
        }
    }

    func select(_ oql: FakeOQL) -> [(itemClass: String, id: Int, row: [String: String])] {
        rows(of: oql.selectedClass).filter { base in
            var combinations: [[String: [String: String]]] = [[oql.alias: base.row]]
            for join in oql.joins {
                combinations = combinations.flatMap { combination in
                    rows(of: join.itemClass).compactMap { other -> [String: [String: String]]? in
                        var next = combination
                        next[join.alias] = other.row
                        let left = next[join.left.alias]?[join.left.field], right = next[join.right.alias]?[join.right.field]
                        return left != nil && left == right ? next : nil
                    }
                }
            }
            return combinations.contains { oql.matches($0) }
        }
    }

    func output(_ field: String, of found: (itemClass: String, id: Int, row: [String: String])) -> Any {
        if field == "private_log" {
            let entries = (state.tickets[found.id]?.privateLog ?? []).map {
                ["date": $0.date, "user_login": $0.userLogin, "user_id": "\($0.userID)", "message": $0.message, "message_html": $0.messageHTML]
            }
            return ["entries": entries]
        }
        if field == "services_list", found.itemClass == "CustomerContract" {
            // 20: one lnkCustomerContractToService per service, ids as strings.
            let contract = state.customerContracts[found.id]
            return (contract?.services ?? []).map { service -> [String: Any] in
                let name = state.services[service] ?? ""
                return ["service_id": "\(service)", "service_name": name, "sla_id": "0", "sla_name": "",
                        "friendlyname": "\(contract?.name ?? "") / \(name)", "service_id_friendlyname": name, "sla_id_friendlyname": ""]
            }
        }
        if ["contacts_list", "documents_list", "functionalcis_list", "providercontracts_list"].contains(field) { return [Any]() }
        if field == "profile_list", found.itemClass == "UserLocal" {
            // 74: each link as iTop lists it, ids as strings.
            let ids = ["Administrator": 1, "Portal user": 2, "Configuration Manager": 3, "Service Desk Agent": 4, "Support Agent": 5,
                       "Problem Manager": 6, "Change Implementor": 7, "Service Manager": 8, "REST Services User": 1024]
            let login = found.row["login"] ?? ""
            return (found.row[field] ?? "").split(separator: "|").map(String.init).map { name -> [String: Any] in
                ["profileid": "\(ids[name] ?? 99)", "profile": name, "reason": "", "friendlyname": "Link between \(login) and \(name)",
                 "profileid_friendlyname": name]
            }
        }
        return found.row[field] ?? ""
    }

    // MARK: core/update

    func update(_ operation: [String: Any], user: FakeITopState.User, login: String) -> Response {
        let itemClass = operation["class"] as? String ?? ""
        guard Self.classes[itemClass] != nil else {
            return Self.answer(["code": 100, "message": "Error: class: '\(itemClass)' is not a valid class'"])
        }
        guard let comment = operation["comment"] as? String, !comment.isEmpty else {
            return Self.answer(["code": 100, "message": "Error: Missing parameter 'comment'"])
        }
        let id = operation["key"] as? Int ?? (operation["key"] as? String).flatMap { Int($0) } ?? 0
        return state.withLock { () -> Response in
            guard let ticket = state.tickets[id], itemClass == "Ticket" || ticket.itemClass == itemClass else {
                return Self.answer(["code": 100, "message": "Error: Invalid object \(itemClass)::\(id)"])
            }
            let fields = operation["fields"] as? [String: Any] ?? [:]
            for key in fields.keys where key != "private_log" {
                return Self.answer(["code": 100, "message": "Error: Unexpected value for attribute '\(key)' (\(key)) : not writable by this fake"])
            }
            if let log = fields["private_log"] as? [String: Any], let item = log["add_item"] as? [String: Any] {
                guard let message = item["message"] as? String else {
                    return Self.answer(["code": 100, "message": "Error: private_log: Missing mandatory entry: 'message'"])
                }
                if item["user_id"] != nil, !user.isAdmin {
                    return Self.answer(["code": 1, "message": "Error: private_log: Only administrators can set the user id"])
                }
                let html = (item["format"] as? String ?? "html") == "html"
                state.appendPrivateLog(id, message: html ? Self.plainText(message) : message, html: message, user: user, login: login, comment: comment)
            }
            let updated = state.tickets[id]!
            let fieldsText = operation["output_fields"] as? String ?? "id"
            var out: [String: Any] = [:]
            let found = rows(of: updated.itemClass).first { $0.id == id }!
            for field in fieldsText.split(separator: ",").map(String.init) { out[field] = output(field, of: found) }
            return Self.answer(["code": 0, "message": NSNull(), "objects": [
                "\(updated.itemClass)::\(id)": ["code": 0, "message": "updated", "class": updated.itemClass, "key": "\(id)", "fields": out],
            ]])
        }
    }

    /// iTop's plain-text rendering of an HTML case log entry: paragraphs become blank-line separated text.
    static func plainText(_ html: String) -> String {
        var text = html.replacingOccurrences(of: "</p><p>", with: "\n\n")
        while let open = text.range(of: "<"), let close = text[open.lowerBound...].range(of: ">") {
            text.removeSubrange(open.lowerBound..<close.upperBound)
        }
        return text.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&amp;", with: "&")
    }

    // MARK: Encoding

    static func answer(_ body: [String: Any]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: body, options: [.withoutEscapingSlashes])) ?? Data("{}".utf8)
        var headers = HTTPFields()
        headers.append(HTTPField(name: .contentType, value: "application/json"))
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func parseForm(_ text: String) -> [String: String] {
        Dictionary(LoopbackServer.parseForm(text), uniquingKeysWith: { _, last in last })
    }
}
