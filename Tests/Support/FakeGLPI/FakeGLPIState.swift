import Foundation

/// The data and behaviour knobs of a fake GLPI 10. Mutations follow GLPI: writing a task bumps its ticket's date_mod.
public final class FakeGLPIState: @unchecked Sendable {
    public struct Ticket: Sendable {
        public var id: Int
        public var name: String
        public var entity: Int
        public var category: Int
        public var status: Int
        public var groups: [Int]
        public var dateMod: String
        /// 1 incident, 2 request.
        public var type = 1
        public var isDeleted = false
        /// A total duration typed on the ticket's form; GLPI puts the sum of the tasks back at the next task write.
        public var actiontimeTyped: Int?

        public init(id: Int, name: String, entity: Int, category: Int, status: Int, groups: [Int], dateMod: String, isDeleted: Bool = false) {
            self.id = id
            self.name = name
            self.entity = entity
            self.category = category
            self.status = status
            self.groups = groups
            self.dateMod = dateMod
            self.isDeleted = isDeleted
        }
    }

    public struct Task: Sendable {
        public var id: Int
        public var ticketID: Int
        public var date: String
        public var seconds: Int
        public var technician: Int
        public var isPrivate: Bool
        public var content: String
        public var category: Int
        public var state: Int
        public var dateMod: String

        public init(id: Int, ticketID: Int, date: String, seconds: Int, technician: Int, isPrivate: Bool, content: String,
                    category: Int, state: Int, dateMod: String) {
            self.id = id
            self.ticketID = ticketID
            self.date = date
            self.seconds = seconds
            self.technician = technician
            self.isPrivate = isPrivate
            self.content = content
            self.category = category
            self.state = state
            self.dateMod = dateMod
        }
    }

    /// A GLPI Contract: entity, begin date, duration and periodicity in months, renewal (0 none, 1 tacit, 2 express).
    public struct Contract: Sendable {
        public var id: Int
        public var entity: Int
        public var isRecursive = false
        public var name: String
        public var number: String
        public var type: Int
        public var begins: String?
        public var months: Int
        public var periodicity: Int
        public var renewal: Int
        public var comment = ""
        public var accountingNumber = ""
        public var isDeleted = false
        public var isTemplate = false
        public var dateMod = "2026-11-21 18:33:02"

        public init(id: Int, entity: Int, name: String, number: String = "", type: Int, begins: String?, months: Int, periodicity: Int,
                    renewal: Int, comment: String = "", accountingNumber: String = "") {
            self.id = id
            self.entity = entity
            self.name = name
            self.number = number
            self.type = type
            self.begins = begins
            self.months = months
            self.periodicity = periodicity
            self.renewal = renewal
            self.comment = comment
            self.accountingNumber = accountingNumber
        }
    }

    /// An ITILFollowup on a ticket.
    public struct Followup: Sendable, Equatable {
        public var id: Int
        public var ticketID: Int
        public var content: String
        public var isPrivate: Bool
        public var date: String
    }

    public struct LoggedRequest: Sendable, Equatable {
        public var method: String
        /// Path and query, percent-decoded, e.g. `/apirest.php/search/Ticket?criteria[0][field]=19&…`.
        public var target: String
        public var headers: [String: String]
        public var body: String
    }

    private let lock = NSLock()
    public let appToken: String
    public let userToken: String
    public let login: String
    public let password: String

    var entities: [Int: (name: String, parent: Int?)] = [0: ("Root entity", nil)]
    var groups: [Int: String] = [:]
    var categories: [Int: String] = [:]
    /// Ticket id → the contracts it is linked to (Ticket_Contract).
    var contractLinks: [Int: Set<Int>] = [:]
    /// GLPI's Contract items, names stored encoded; 1 and 2 as recorded (getItems_Contract).
    var contracts: [Int: Contract] = [
        1: Contract(id: 1, entity: 1, name: "Support Hours 2026 - Customer A", number: "CT-A-2026", type: 1, begins: "2026-01-01", months: 12,
                    periodicity: 1, renewal: 1, comment: "hours_budget=40", accountingNumber: "ACC-A"),
        2: Contract(id: 2, entity: 2, name: "Support Hours 2026 - Customer B", number: "CT-B-2026", type: 1, begins: "2026-03-01", months: 6,
                    periodicity: 3, renewal: 2, comment: "hours_budget=20", accountingNumber: "ACC-B"),
    ]
    /// Contract types (ContractType 1 as recorded).
    var contractTypes: [Int: String] = [1: "Prepaid support hours"]
    var contractNames: [Int: String] { contracts.mapValues(\.name) }
    var tickets: [Int: Ticket] = [:]
    var tasks: [Int: Task] = [:] { didSet { taskOrder = [:] } }
    /// Every task sorted by a `getItems` sort key, kept until a task changes: GLPI sorts with an index.
    var taskOrder: [String: [Task]] = [:]
    var tasksByTicket: [Int: [Int]] = [:]
    var followups: [Int: Followup] = [:]
    var nextFollowupID = 1
    /// Each session, with the entities that existed when it logged in: as in GLPI, a session never sees an entity
    /// created after it (its tickets still come back from a search, but reading them answers 403).
    var sessions: [String: Set<Int>] = [:]
    /// People who sign in with their own login (users 7, 8 and 10 of the recordings have the password Fixture-Pass-1).
    var people: [Person] = []
    var nextTaskID = 1
    var clock: Date
    var log: [LoggedRequest] = []
    var failures: [(status: Int, delay: Duration)] = []
    var deniedItemtypes: Set<String> = []
    /// The rights of the API account's active profile, as getFullSession returns them (`glpiactiveprofile`).
    var profile: [String: Int] = FakeGLPIState.documentedProfile

    /// Profile 9 "Contract hours API" as recorded (session_03_getFullSession): GLPI's Technician plus Contract READ.
    /// It has no READ on ITIL categories, so `getItems ITILCategory` answers 403.
    public static let recordedProfile: [String: Int] = [
        "ticket": 166_919, "task": 13_329, "followup": 13_319, "entity": 33, "group": 1, "itilcategory": 0, "contract": 33, "user": 1055,
    ]
    /// The profile README tells operators to create: the recorded one plus READ on ITIL categories.
    public static let documentedProfile: [String: Int] = recordedProfile.merging(["itilcategory": 1]) { $1 }

    /// Gives the API account's profile these rights (GLPI's bit masks, e.g. READ = 1).
    public func setProfile(_ rights: [String: Int]) { withLock { profile = rights } }
    /// Tickets sorted by (date_mod, id), rebuilt lazily after writes; keeps big searches cheap.
    var sortedCache: [Ticket]?
    public var logRequests = true
    var delayBeforeWrite: Duration = .zero
    var delayAfterWrite: Duration = .zero

    /// Task writes (POST/PUT/DELETE TicketTask) wait `before` and are then applied; the answer then waits `after`
    /// (GLPI has the task, the client may never hear of it).
    public func setWriteDelays(before: Duration = .zero, after: Duration = .zero) {
        withLock {
            delayBeforeWrite = before
            delayAfterWrite = after
        }
    }
    /// Called (under the state's lock) before a ticket search page is answered, with the page's start row: lets a test
    /// change GLPI while a poll is paging through it.
    public var beforeSearchPage: (@Sendable (FakeGLPIState, Int) -> Void)?
    /// The same before a getItems TicketTask page, with its first row.
    public var beforeTaskPage: (@Sendable (FakeGLPIState, Int) -> Void)?

    public init(appToken: String = "fixture-app-token", userToken: String = "fixture-user-token", login: String = "svc-hours",
                password: String = "Fixture-Pass-1", clock: Date = Date(timeIntervalSince1970: 1_795_285_983)) {
        self.appToken = appToken
        self.userToken = userToken
        self.login = login
        self.password = password
        self.clock = clock
    }

    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    public static func format(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return String(format: "%04d-%02d-%02d %02d:%02d:%02d", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
    }

    public var now: String { withLock { Self.format(clock) } }

    /// Moves GLPI's clock; later writes get later date_mod stamps.
    public struct Person: Sendable {
        public var id: Int
        public var login: String
        public var password: String
        public var firstname: String
        public var realname: String
        public var profileID: Int
        public var profile: String
        /// `helpdesk` (Self-Service) or `central` (staff).
        public var interface: String
        public var entities: [Int]
        public var groups: [Int]

        public init(id: Int, login: String, password: String = "Fixture-Pass-1", firstname: String, realname: String, profileID: Int, profile: String,
                    interface: String, entities: [Int], groups: [Int] = []) {
            self.id = id
            self.login = login
            self.password = password
            self.firstname = firstname
            self.realname = realname
            self.profileID = profileID
            self.profile = profile
            self.interface = interface
            self.entities = entities
            self.groups = groups
        }

        /// login_01: customer.carol, Self-Service on entity 1 (Customer A).
        public static let carol = Person(id: 10, login: "customer.carol", firstname: "Carol", realname: "Client", profileID: 1, profile: "Self-Service",
                                         interface: "helpdesk", entities: [1])
        /// login_05: tech.alice, Technician on every entity, group 1.
        public static let alice = Person(id: 7, login: "tech.alice", firstname: "Alice", realname: "Martin", profileID: 6, profile: "Technician",
                                         interface: "central", entities: [0, 1, 2, 3, 4, 5, 6], groups: [1])
    }

    public func addPerson(_ person: Person) { withLock { people.append(person) } }

    public func setClock(_ date: Date) { withLock { clock = date } }

    public func advance(seconds: Int) { withLock { clock = clock.addingTimeInterval(TimeInterval(seconds)) } }

    // MARK: Setup

    // Names and contents are kept in GLPI's stored form: `&`, `<` and `>` HTML-encoded, as GLPI sanitizes its input.

    public func addEntity(_ id: Int, name: String, parent: Int = 0) {
        withLock { entities[id] = (JSON.htmlEncode(name), parent) }
    }

    public func addGroup(_ id: Int, name: String) { withLock { groups[id] = JSON.htmlEncode(name) } }
    public func addCategory(_ id: Int, name: String) { withLock { categories[id] = JSON.htmlEncode(name) } }

    func completename(entity id: Int) -> String {
        var names: [String] = []
        var current: Int? = id
        var hops = 0
        while let c = current, let e = entities[c], hops < 64 {
            names.insert(e.name, at: 0)
            current = e.parent
            hops += 1
        }
        return names.joined(separator: " > ")
    }

    @discardableResult
    public func addTicket(_ id: Int, name: String, entity: Int, category: Int, groups: [Int], status: Int = 2, type: Int = 1) -> Ticket {
        withLock {
            var ticket = Ticket(id: id, name: JSON.htmlEncode(name), entity: entity, category: category, status: status, groups: groups,
                                dateMod: Self.format(clock))
            ticket.type = type
            tickets[id] = ticket
            sortedCache = nil
            return ticket
        }
    }

    /// Moves a ticket to GLPI's trash: searches no longer return it.
    public func trashTicket(_ id: Int) {
        withLock { trashLocked(id) }
    }

    /// For use inside `beforeSearchPage`, which already holds the lock.
    public func trashLocked(_ id: Int) {
        tickets[id]?.isDeleted = true
        tickets[id]?.dateMod = Self.format(clock)
        sortedCache = nil
    }

    /// Takes a ticket out of GLPI's trash, as its "Restore" action does: date_mod moves to now.
    public func restoreTicket(_ id: Int) {
        withLock {
            tickets[id]?.isDeleted = false
            tickets[id]?.dateMod = Self.format(clock)
            sortedCache = nil
        }
    }

    /// Deletes a ticket for good ("Delete permanently", or a purge of the trash): it and its tasks are gone.
    public func purgeTicket(_ id: Int) {
        withLock {
            tickets[id] = nil
            for task in tasksByTicket[id] ?? [] { tasks[task] = nil }
            tasksByTicket[id] = nil
            sortedCache = nil
        }
    }

    /// Edits a ticket as a technician would in GLPI's UI; date_mod moves to now.
    /// Links a ticket to a GLPI contract (Ticket_Contract), or removes the link. The ticket's date_mod is left alone:
    /// the recordings do not say that a link moves it, so the daemon must not count on it.
    public func linkContract(_ contract: Int, ticket: Int, linked: Bool = true) {
        withLock {
            if linked { contractLinks[ticket, default: []].insert(contract) } else { contractLinks[ticket]?.remove(contract) }
        }
    }

    /// Adds or replaces a contract as GLPI's form would: its name stored encoded.
    public func putContract(_ contract: Contract) {
        withLock {
            var stored = contract
            stored.name = JSON.htmlEncode(contract.name)
            stored.number = JSON.htmlEncode(contract.number)
            stored.dateMod = Self.format(clock)
            contracts[contract.id] = stored
        }
    }

    /// Edits a contract (its name is re-encoded when it changes).
    public func updateContract(_ id: Int, _ change: (inout Contract) -> Void) {
        withLock {
            guard var contract = contracts[id] else { return }
            let before = contract.name
            change(&contract)
            if contract.name != before { contract.name = JSON.htmlEncode(contract.name) }
            contract.dateMod = Self.format(clock)
            contracts[id] = contract
        }
    }

    /// Deletes a contract for good, with its ticket links.
    public func purgeContract(_ id: Int) {
        withLock {
            contracts[id] = nil
            for ticket in contractLinks.keys { contractLinks[ticket]?.remove(id) }
        }
    }

    /// Adds a contract type.
    public func addContractType(_ id: Int, name: String) { withLock { contractTypes[id] = JSON.htmlEncode(name) } }

    public func updateTicket(_ id: Int, _ change: (inout Ticket) -> Void) {
        withLock {
            guard var ticket = tickets[id] else { return }
            let before = ticket.name
            change(&ticket)
            if ticket.name != before { ticket.name = JSON.htmlEncode(ticket.name) }
            ticket.dateMod = Self.format(clock)
            tickets[id] = ticket
            sortedCache = nil
        }
    }

    @discardableResult
    public func addTask(ticket: Int, seconds: Int, technician: Int = 7, isPrivate: Bool = false, content: String = "<p>work</p>",
                        date: String? = nil, category: Int = 0) -> Int {
        withLock { insertTask(ticket: ticket, seconds: seconds, technician: technician, isPrivate: isPrivate, content: content, date: date, category: category, state: 2) }
    }

    func insertTask(ticket: Int, seconds: Int, technician: Int, isPrivate: Bool, content: String, date: String?, category: Int, state: Int) -> Int {
        let id = nextTaskID
        nextTaskID += 1
        let stamp = Self.format(clock)
        tasks[id] = Task(id: id, ticketID: ticket, date: date ?? stamp, seconds: seconds, technician: technician, isPrivate: isPrivate,
                         content: JSON.htmlEncode(content), category: category, state: state, dateMod: stamp)
        tasksByTicket[ticket, default: []].append(id)
        touch(ticket)
        return id
    }

    func insertFollowup(ticket: Int, content: String, isPrivate: Bool) -> Int {
        let id = nextFollowupID
        nextFollowupID += 1
        followups[id] = Followup(id: id, ticketID: ticket, content: JSON.htmlEncode(content), isPrivate: isPrivate, date: Self.format(clock))
        touch(ticket)
        return id
    }

    public func followups(ofTicket id: Int) -> [Followup] {
        withLock { followups.values.filter { $0.ticketID == id }.sorted { $0.id < $1.id } }
    }

    public func editTask(_ id: Int, _ change: (inout Task) -> Void) {
        withLock {
            guard var task = tasks[id] else { return }
            let before = task.content
            change(&task)
            if task.content != before { task.content = JSON.htmlEncode(task.content) }
            task.dateMod = Self.format(clock)
            tasks[id] = task
            touch(task.ticketID)
        }
    }

    public func deleteTask(_ id: Int) {
        withLock { purgeTask(id) }
    }

    /// For use inside `beforeTaskPage` or `beforeSearchPage`, which already hold the lock.
    @discardableResult
    public func purgeTask(_ id: Int) -> Bool {
        guard let task = tasks.removeValue(forKey: id) else { return false }
        tasksByTicket[task.ticketID]?.removeAll { $0 == id }
        touch(task.ticketID)
        return true
    }

    /// The ticket's total duration (search option 45, getItem actiontime): the sum of its tasks, unless typed by hand.
    func actiontime(ofTicket id: Int) -> Int {
        tickets[id]?.actiontimeTyped ?? (tasksByTicket[id] ?? []).reduce(0) { $0 + (tasks[$1]?.seconds ?? 0) }
    }

    /// GLPI updates the parent ticket (actiontime, date_mod) whenever one of its tasks is written.
    func touch(_ ticketID: Int) {
        guard tickets[ticketID] != nil else { return }
        tickets[ticketID]!.dateMod = Self.format(clock)
        tickets[ticketID]!.actiontimeTyped = nil
        sortedCache = nil
    }

    /// Loads many tickets and tasks at once, for benchmarks: no per-item locking or re-sorting.
    public func bulkLoad(tickets newTickets: [Ticket], tasks newTasks: [Task]) {
        withLock {
            for ticket in newTickets { tickets[ticket.id] = ticket }
            for task in newTasks {
                tasks[task.id] = task
                tasksByTicket[task.ticketID, default: []].append(task.id)
                nextTaskID = max(nextTaskID, task.id + 1)
            }
            sortedCache = nil
        }
    }

    // MARK: Inspection and faults

    public var requests: [LoggedRequest] { withLock { log } }
    public func clearRequests() { withLock { log.removeAll() } }
    public func tasks(ofTicket id: Int) -> [Task] { withLock { (tasksByTicket[id] ?? []).compactMap { tasks[$0] } } }
    public func ticket(_ id: Int) -> Ticket? { withLock { tickets[id] } }

    /// Forgets every session, as GLPI does when its PHP sessions expire.
    public func expireSessions() { withLock { sessions.removeAll() } }

    /// The next `count` requests answer `status` (after `delay`), as a crashing or overloaded GLPI would.
    public func failNext(_ count: Int, status: Int = 500, delay: Duration = .zero) {
        withLock { failures.append(contentsOf: Array(repeating: (status, delay), count: count)) }
    }

    /// The API account loses its right on an itemtype: GLPI answers 403 ERROR_RIGHT_MISSING.
    public func denyRight(_ itemtype: String) { withLock { _ = deniedItemtypes.insert(itemtype) } }
    public func grantRight(_ itemtype: String) { withLock { _ = deniedItemtypes.remove(itemtype) } }

    /// The tickets a search sees, by (date_mod, id): those outside the trash, or with `trash`, only those in it
    /// (GLPI's `is_deleted=1` search parameter).
    /// Every task by `date_mod` (then id) or by id, oldest first.
    func sortedTasks(by sort: String) -> [Task] {
        let key = ["date_mod", "tickets_id"].contains(sort) ? sort : "id"
        if let cached = taskOrder[key] { return cached }
        let sorted = tasks.values.sorted {
            switch key {
            case "date_mod": ($0.dateMod, $0.id) < ($1.dateMod, $1.id)
            case "tickets_id": ($0.ticketID, $0.id) < ($1.ticketID, $1.id)   // MySQL's index order on tickets_id
            default: $0.id < $1.id
            }
        }
        taskOrder[key] = sorted
        return sorted
    }

    func sortedTickets(trash: Bool = false) -> [Ticket] {
        if trash { return tickets.values.filter(\.isDeleted).sorted { ($0.dateMod, $0.id) < ($1.dateMod, $1.id) } }
        if let sortedCache { return sortedCache }
        let sorted = tickets.values.filter { !$0.isDeleted }.sorted { ($0.dateMod, $0.id) < ($1.dateMod, $1.id) }
        sortedCache = sorted
        return sorted
    }
}
