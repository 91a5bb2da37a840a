import Foundation

/// The data of a fake iTop 3.2.0: tickets (UserRequest, Incident) sharing one id sequence as in iTop, organizations,
/// the case logs and the change feed, and a clock in iTop's own time zone (Europe/Paris in the recordings).
public final class FakeITopState: @unchecked Sendable {
    private let lock = NSLock()

    public struct User: Sendable {
        public var password: String
        public var isAdmin: Bool
        public var hasRESTProfile: Bool
        public var friendlyName: String
        public var id: Int
        /// The Person behind the account (`contactid`), its profiles and status, as `User` reads give them (74).
        public var contactID: Int = 0
        public var profiles: [String] = []
        public var status = "enabled"
        /// May read class `User` (an administrator; the daemon only once granted a profile that may).
        public var readsUsers = false

        public init(password: String, isAdmin: Bool, hasRESTProfile: Bool, friendlyName: String, id: Int, contactID: Int = 0, profiles: [String] = [],
                    status: String = "enabled", readsUsers: Bool = false) {
            self.password = password
            self.isAdmin = isAdmin
            self.hasRESTProfile = hasRESTProfile
            self.friendlyName = friendlyName
            self.id = id
            self.contactID = contactID
            self.profiles = profiles
            self.status = status
            self.readsUsers = readsUsers
        }
    }

    public struct Person: Sendable {
        public var id: Int
        public var name: String
        public var firstName: String
        public var org: Int
        public var email: String

        public init(id: Int, name: String, firstName: String, org: Int, email: String) {
            self.id = id
            self.name = name
            self.firstName = firstName
            self.org = org
            self.email = email
        }
    }

    /// A CustomerContract as recorded (20, 22): dates 'Y-m-d' or empty, status implementation|production|obsolete.
    public struct CustomerContract: Sendable, Equatable {
        public var id: Int
        public var name: String
        public var org: Int
        public var typeName: String
        public var status: String
        public var start: String
        public var end: String
        public var billingFrequency: String
        public var services: [Int]

        public init(id: Int, name: String, org: Int, typeName: String = "Prepaid hours block", status: String = "production", start: String,
                    end: String, billingFrequency: String = "monthly", services: [Int]) {
            self.id = id
            self.name = name
            self.org = org
            self.typeName = typeName
            self.status = status
            self.start = start
            self.end = end
            self.billingFrequency = billingFrequency
            self.services = services
        }
    }

    public struct CaseLogEntry: Sendable, Equatable {
        public var date: String
        public var userLogin: String
        public var userID: Int
        public var message: String
        public var messageHTML: String
    }

    public struct Ticket: Sendable, Equatable {
        public var id: Int
        public var itemClass: String
        public var ref: String
        public var title: String
        public var status: String
        public var org: Int
        public var team: Int
        public var agent: Int
        public var service: Int
        public var subcategory: Int
        public var lastUpdate: String
        public var privateLog: [CaseLogEntry] = []
    }

    public struct ChangeOp: Sendable, Equatable {
        public var id: Int
        public var change: Int
        public var date: String
        public var userinfo: String
        public var userID: Int
        public var objclass: String
        public var objkey: Int
        public var attcode: String
        public var lastentry: Int
    }

    public struct LoggedRequest: Sendable {
        public var method: String
        public var target: String
        public var contentType: String?
        /// The form fields, password included: tests check it went where it belongs and nowhere else.
        public var form: [String: String]
        /// `json_data`, decoded.
        public var operation: [String: Any]? {
            form["json_data"].flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        }
    }

    public let timeZone: TimeZone
    var users: [String: User] = [
        "admin": User(password: "Admin-Passw0rd!", isAdmin: true, hasRESTProfile: true, friendlyName: "Ada Admin", id: 1, profiles: ["Administrator"],
                      readsUsers: true),
        "hours-daemon": User(password: "Daemon-Passw0rd!", isAdmin: false, hasRESTProfile: true, friendlyName: "hours-daemon", id: 2,
                             profiles: ["REST Services User", "Support Agent"]),
        "agent-no-rest": User(password: "Agent-Passw0rd!", isAdmin: false, hasRESTProfile: false, friendlyName: "Agent NoRest", id: 3,
                              profiles: ["Support Agent"]),
        // 70: a customer's portal account for Person 6 of org 2.
        "lena.fischer": User(password: "Portal-Passw0rd!", isAdmin: false, hasRESTProfile: false, friendlyName: "Lena Fischer", id: 4, contactID: 6,
                             profiles: ["Portal user"]),
    ]
    /// 75: Person 6 Lena Fischer of org 2 Globex.
    var persons: [Int: Person] = [6: Person(id: 6, name: "Fischer", firstName: "Lena", org: 2, email: "lena.fischer@globex.example")]
    var tickets: [Int: Ticket] = [:]
    var organizations: [Int: (name: String, code: String, parent: Int)] = [:]
    /// Service names by id; 1 as recorded (14, 10). A ticket's `service_name` is its service's, "" without one.
    var services: [Int: String] = [1: "Managed Workplace Support"]
    var changeOps: [ChangeOp] = []
    /// 1 and 2 as recorded (20).
    var customerContracts: [Int: CustomerContract] = [
        1: CustomerContract(id: 1, name: "Globex - Workplace support 2026", org: 2, start: "2026-01-01", end: "2026-12-31", services: [1]),
        2: CustomerContract(id: 2, name: "Initech - 100h support block", org: 3, start: "2026-06-01", end: "2027-05-31", billingFrequency: "yearly",
                            services: [1]),
    ]
    var nextTicketID = 1
    var nextChange = 1
    var clock: Date
    var log: [LoggedRequest] = []
    /// Off for long-running demos, whose request log would only grow.
    public var logRequests = true
    var failures: [(status: Int, delay: Duration)] = []
    var delayAfterWrite: Duration = .zero
    /// Called before a `core/get` page is answered (outside the lock), with the page number: lets a test change iTop
    /// while a poll pages through it, or hold a page back.
    public var beforePage: (@Sendable (FakeITopState, Int) -> Void)?

    /// Adds a login (with its Person) or replaces one.
    public func addUser(_ login: String, _ user: User, person: Person? = nil) {
        withLock {
            users[login] = user
            if let person { persons[person.id] = person }
        }
    }

    /// Lets a login read class `User`: what the daemon account needs for `sign_in_lookup: user`.
    public func grantUserRead(_ login: String) { withLock { users[login]?.readsUsers = true } }

    public init(timeZone: TimeZone = TimeZone(identifier: "Europe/Paris")!, clock: Date = Date(timeIntervalSince1970: 1_795_285_983)) {
        self.timeZone = timeZone
        self.clock = clock
    }

    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// `Y-m-d H:i:s` in iTop's time zone, no offset.
    func format(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return String(format: "%04d-%02d-%02d %02d:%02d:%02d", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
    }

    public var now: String { withLock { format(clock) } }
    public func advance(seconds: Int) { withLock { clock = clock.addingTimeInterval(TimeInterval(seconds)) } }

    /// Adds, replaces (same id) or, with nil, deletes a CustomerContract.
    public func putCustomerContract(_ id: Int, _ contract: CustomerContract?) { withLock { customerContracts[id] = contract } }

    public func addService(_ id: Int, name: String) { withLock { services[id] = name } }

    public func addOrganization(_ id: Int, name: String, code: String, parent: Int = 0) {
        withLock { organizations[id] = (name, code, parent) }
    }

    /// Creates a ticket as `core/create` would: the next id of the shared Ticket sequence, a ref, last_update = now.
    @discardableResult
    public func addTicket(_ itemClass: String = "UserRequest", title: String, org: Int, team: Int = 0, agent: Int = 0, service: Int = 0,
                          subcategory: Int = 0, status: String = "assigned") -> Ticket {
        withLock {
            let id = nextTicketID
            nextTicketID += 1
            let prefix = itemClass == "Incident" ? "I" : "R"
            let ticket = Ticket(id: id, itemClass: itemClass, ref: String(format: "%@-%06d", prefix, id), title: title, status: status, org: org,
                                team: team, agent: agent, service: service, subcategory: subcategory, lastUpdate: format(clock))
            tickets[id] = ticket
            return ticket
        }
    }

    /// Puts a ticket exactly as recorded (id, ref, stamps), e.g. from a fixture's answer.
    public func insert(id: Int, itemClass: String, ref: String, title: String, status: String, org: Int, team: Int, agent: Int, service: Int,
                       subcategory: Int, lastUpdate: String) {
        withLock {
            tickets[id] = Ticket(id: id, itemClass: itemClass, ref: ref, title: title, status: status, org: org, team: team, agent: agent,
                                 service: service, subcategory: subcategory, lastUpdate: lastUpdate)
            nextTicketID = max(nextTicketID, id + 1)
        }
    }

    /// Sets iTop's clock.
    public func setClock(_ date: Date) { withLock { clock = date } }

    /// A change made in iTop's UI: the fields change and last_update moves to now. Some changes leave last_update
    /// alone (a linked WorkOrder, fixture 34): `bumping: false`.
    public func updateTicket(_ id: Int, bumping: Bool = true, _ change: (inout Ticket) -> Void) {
        withLock {
            guard var ticket = tickets[id] else { return }
            change(&ticket)
            if bumping { ticket.lastUpdate = format(clock) }
            tickets[id] = ticket
        }
    }

    /// Deletes a ticket as iTop's UI does: it is gone from every query (core/get answers "Found: 0"), and writes to
    /// it answer code 100 "Invalid object".
    public func deleteTicket(_ id: Int) { withLock { _ = tickets.removeValue(forKey: id) } }

    /// Puts a deleted ticket back with its old id (a restore from a backup).
    public func restoreTicket(_ ticket: Ticket) { withLock { tickets[ticket.id] = ticket } }

    public func ticket(_ id: Int) -> Ticket? { withLock { tickets[id] } }
    public func privateLog(of id: Int) -> [CaseLogEntry] { withLock { tickets[id]?.privateLog ?? [] } }
    public var changes: [ChangeOp] { withLock { changeOps } }
    public var requests: [LoggedRequest] { withLock { log } }
    public func clearRequests() { withLock { log.removeAll() } }

    /// The next `count` requests fail with `status` (a PHP fatal error page) after `delay`.
    public func fail(next count: Int = 1, status: Int = 500, delay: Duration = .zero) {
        withLock { failures += Array(repeating: (status, delay), count: count) }
    }

    /// Writes are applied, then the answer waits this long: iTop has the note, the client may never hear of it.
    public func setDelayAfterWrite(_ delay: Duration) { withLock { delayAfterWrite = delay } }

    /// Appends to a ticket's private log as `core/update` does: bumps last_update and records the change op.
    func appendPrivateLog(_ id: Int, message: String, html: String, user: User, login: String, comment: String) {
        let stamp = format(clock)
        tickets[id]!.privateLog.append(CaseLogEntry(date: stamp, userLogin: user.friendlyName, userID: user.id, message: message, messageHTML: html))
        tickets[id]!.lastUpdate = stamp
        changeOps.append(ChangeOp(id: 238 + changeOps.count + 1, change: nextChange, date: stamp, userinfo: comment, userID: user.id,
                                  objclass: tickets[id]!.itemClass, objkey: id, attcode: "private_log", lastentry: tickets[id]!.privateLog.count - 1))
        nextChange += 1
    }
}
