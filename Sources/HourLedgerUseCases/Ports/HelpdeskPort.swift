import Foundation
import HourLedgerCore

/// A ticket the helpdesk reports as changed, with the facts the contract rules need.
public struct ChangedTicket: Sendable, Equatable {
    public var facts: TicketFacts
    /// The helpdesk's own modification stamp, as it sent it (`Y-m-d H:i:s` in its time zone).
    public var dateMod: String
    /// How many tasks the ticket has, when the search tells; 0 means its task list is known to be empty.
    public var taskCount: Int?
    /// A summary of the tasks (count, durations, dates, privacy) from the search: unchanged means no need to re-read them.
    public var taskFingerprint: String?
    /// `dateMod` as an instant, read in the helpdesk's time zone: when a solved or closed ticket was solved or closed.
    public var changedAt: Date?

    public init(facts: TicketFacts, dateMod: String, taskCount: Int? = nil, taskFingerprint: String? = nil, changedAt: Date? = nil) {
        self.facts = facts
        self.dateMod = dateMod
        self.taskCount = taskCount
        self.taskFingerprint = taskFingerprint
        self.changedAt = changedAt
    }
}

/// A ticket the helpdesk would not let HourLedger read (a right, a session that does not see a new entity, data it
/// cannot parse): it is reported and read again on its own at the next poll, and never fails the whole poll.
public struct TicketReadFailure: Sendable, Equatable {
    public var ticketID: Int
    public var error: HelpdeskError

    public init(ticketID: Int, error: HelpdeskError) {
        self.ticketID = ticketID
        self.error = error
    }
}

/// One incremental read of the helpdesk.
public struct ChangeBatch: Sendable {
    public var tickets: [ChangedTicket]
    /// The largest modification stamp seen; the next poll starts from here minus the overlap window.
    public var highWater: String?
    /// False when the result set moved while it was paged; the caller should not advance past `since`.
    public var complete: Bool
    /// Tickets that appeared but could not be read.
    public var failures: [TicketReadFailure]

    public init(tickets: [ChangedTicket], highWater: String? = nil, complete: Bool = true, failures: [TicketReadFailure] = []) {
        self.tickets = tickets
        self.highWater = highWater
        self.complete = complete
        self.failures = failures
    }
}

/// The tasks of some tickets, and the tickets whose tasks could not be read.
public struct TaskReads: Sendable {
    public var tasks: [Int: [TaskFacts]]
    public var failures: [TicketReadFailure]

    public init(tasks: [Int: [TaskFacts]] = [:], failures: [TicketReadFailure] = []) {
        self.tasks = tasks
        self.failures = failures
    }

    var failedTickets: Set<Int> { Set(failures.map(\.ticketID)) }
}

/// The helpdesks HourLedger has an adapter for.
public enum HelpdeskKind: String, Sendable, CaseIterable, Codable {
    case glpi, itop
}

/// What the use cases need to know of a helpdesk besides its API: its words, its lifecycle, what deletion means.
public struct HelpdeskProfile: Sendable, Equatable {
    public var kind: HelpdeskKind
    /// The words its admins use for entity, group and category, for match reasons and lists.
    public var terms: HelpdeskTerms
    /// Ticket statuses after which changing logged time needs a reason (solved, closed).
    public var finishedStatuses: Set<Int>
    /// What a ticket that vanished from every read became: purged (GLPI, whose trash is found by `trashed`) or
    /// deleted (iTop, which has no trash).
    public var vanished: TicketRemoval
    /// How an invoice line names time read from one of its tasks, before the task id (`glpi_task` gives `glpi_task:42`).
    public var taskReference: String

    public init(kind: HelpdeskKind, terms: HelpdeskTerms, finishedStatuses: Set<Int>, vanished: TicketRemoval, taskReference: String) {
        self.kind = kind
        self.terms = terms
        self.finishedStatuses = finishedStatuses
        self.vanished = vanished
        self.taskReference = taskReference
    }
}

/// Text HourLedger writes into the helpdesk: the marker that lets it find the write again, then plain words. Each
/// adapter renders it in its helpdesk's markup.
public struct HelpdeskNote: Sendable, Equatable {
    public var marker: String
    public var text: String

    public init(marker: String, text: String) {
        self.marker = marker
        self.text = text
    }
}

/// What HourLedger needs from a helpdesk. GLPI and iTop each implement it.
public protocol HelpdeskPort: Sendable {
    var profile: HelpdeskProfile { get }
    /// The helpdesk's modification stamp `stamp` (as `ChangeBatch.highWater` gives it) moved back by `seconds`, in
    /// the same form; nil when it cannot be read. The poll re-reads this overlap so a change stamped in the same
    /// second as the last one seen is not missed.
    func stamp(_ stamp: String, movedBackBy seconds: Int) -> String?
    /// Tickets modified after `since` (nil: all of them), de-duplicated, with ids resolved.
    func changedTickets(since: String?) async throws -> ChangeBatch
    /// The same tickets handed over a page at a time as they are read, so a first sync stores one page while the next
    /// downloads. Each batch is de-duplicated within itself only (a ticket that moved while the list was paged may come
    /// again, newer); `complete` is false on a page read after the result set moved. Reading starts when this is
    /// called. The default hands over `changedTickets(since:)` whole.
    func changedTicketPages(since: String?) -> AsyncThrowingStream<ChangeBatch, any Error>
    /// Whether `changedTicketPages` reads the list by the page (iTop), so a first sync should store it that way. GLPI's
    /// first sync pages its tasks instead.
    var listsTicketsByPage: Bool { get }
    /// The current state of the given tickets, e.g. after a webhook said they changed; ids that no longer exist are left out.
    func tickets(ids: [Int]) async throws -> ChangeBatch
    /// Ids of the tickets a helpdesk-side query (iTop OQL) selects, narrowed to those modified after `since` and/or to
    /// `among`. A query the helpdesk refuses is an error, never an empty set.
    func ticketIDs(matching query: String, since: String?, among: [Int]?) async throws -> Set<Int>
    /// Every ticket linked by hand to the helpdesk's contract `id` (GLPI: Ticket_Contract), in full: whether adding or
    /// removing a link moves the ticket's date_mod is not recorded, so no poll window is trusted to see it.
    func ticketsLinked(toContract id: Int) async throws -> Set<Int>
    /// The helpdesk's own contracts (GLPI `Contract`, iTop `CustomerContract`), every one the daemon may see.
    func helpdeskContracts() async throws -> [HelpdeskContract]
    /// Every task of each ticket, keyed by ticket id; a ticket whose tasks cannot be read is a failure of its own.
    func tasks(ofTickets ids: [Int]) async throws -> TaskReads
    /// Tasks per page of `taskPage`, or nil where the helpdesk cannot list tasks across tickets (iTop has none).
    var taskPageSize: Int? { get }
    /// Page `number` (from 0) of every task the helpdesk holds, across tickets, in ticket order (GLPI: getItems
    /// TicketTask sorted by tickets_id): a first sync's tasks in a few hundred requests instead of one per ticket.
    func taskPage(_ number: Int) async throws -> TaskPage
    /// Tasks added or edited after `since` in any field (their technician or text included, which the ticket search
    /// cannot tell), newest first; empty for a helpdesk without tasks.
    func changedTasks(since: String) async throws -> TaskReads
    /// The summary the ticket search would give (`ChangedTicket.taskFingerprint`) of a ticket holding exactly `tasks`,
    /// or nil where the search gives none. An incremental poll rebuilds a changed ticket's task list from the ledger and
    /// the changed tasks, and keeps it without a read when this summary equals the search's.
    func taskFingerprint(of tasks: [TaskFacts]) -> String?
    /// The helpdesk's own count of time on every ticket, in one full ticket search, for reconciliation; nil where the
    /// helpdesk keeps no such total (iTop).
    func ticketTotals() async throws -> TicketTotals?
    /// The text of every private note of these tickets (iTop: private_log entries), keyed by ticket; tickets the
    /// helpdesk no longer has are left out. Nil where HourLedger writes its time as tasks rather than notes (GLPI,
    /// whose `ticketTotals` count them).
    func noteTexts(ofTickets ids: [Int]) async throws -> [Int: [String]]?
    /// Of these tickets, the ones in the helpdesk's trash; empty where deletion is final.
    func trashed(among ids: [Int]) async throws -> Set<Int>
    /// Tickets moved to the trash after `since` (nil: all of the trash).
    func trashed(since: String?) async throws -> Set<Int>
    /// How many tickets the helpdesk has outside any trash, in one cheap request per class.
    func ticketCount() async throws -> Int
    /// Every ticket id outside any trash, in as few requests as paging allows.
    func allTicketIDs() async throws -> Set<Int>
    /// The entity hierarchy, for contracts that include sub-entities.
    func entityTree() async throws -> EntityTree
    /// Writes a private note in the ticket's timeline (GLPI followup, iTop private_log entry) and returns its id if the
    /// helpdesk gives one.
    func createNote(ticketID: Int, _ note: HelpdeskNote) async throws -> Int?
    /// The id of a note of `ticketID` whose text contains `marker` (iTop: its position in the private log), if one exists.
    func findNote(ticketID: Int, containing marker: String) async throws -> Int?
    /// Logs in and checks each right the daemon needs, without writing anything: what `check-config` reports.
    /// `followups`: alert followups are configured, so their rights are needed too.
    func checkAccess(followups: Bool) async -> AccessReport
    /// How many HTTP requests this connector has sent.
    func requestCount() async -> Int
    /// Ends the helpdesk session, if any.
    func close() async
}

/// A helpdesk with editable time records (GLPI tasks): entries are written back as tasks and kept in step by editing
/// them. A helpdesk without (iTop) gets append-only notes instead, one per create, change and deletion.
public protocol HelpdeskTaskWriter: HelpdeskPort {
    /// Writes a private task for an entry and returns its id.
    func createTask(_ task: NewHelpdeskTask) async throws -> Int
    /// The id of a task of `ticketID` whose text contains `marker`, if one exists: how a retry finds its own write.
    func findTask(ticketID: Int, containing marker: String) async throws -> Int?
    func updateTask(id: Int, seconds: Int, _ note: HelpdeskNote) async throws
    /// Deletes a task; one that is already gone counts as deleted.
    func deleteTask(id: Int) async throws
}

/// A private task HourLedger writes back for one of its entries.
public struct NewHelpdeskTask: Sendable, Equatable {
    public var ticketID: Int
    public var seconds: Int
    public var note: HelpdeskNote
    public var technician: Int
    public var date: Date
    /// The helpdesk's task category for this task; nil uses the configured default.
    public var category: Int?

    public init(ticketID: Int, seconds: Int, note: HelpdeskNote, technician: Int, date: Date, category: Int? = nil) {
        self.ticketID = ticketID
        self.seconds = seconds
        self.note = note
        self.technician = technician
        self.date = date
        self.category = category
    }
}

/// A helpdesk failure, named by what HourLedger was doing, never carrying a secret.
public struct HelpdeskError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        /// The helpdesk could not be reached (connection, DNS, TLS, timeout).
        case unreachable
        /// Credentials were refused (app token, user token, password).
        case authentication
        /// The account lacks a right.
        case permission
        case notFound
        /// The helpdesk refused the request as malformed.
        case rejected
        /// The helpdesk answered something HourLedger cannot read.
        case malformedResponse
        /// 5xx and other server-side failures.
        case serverError
    }

    public let kind: Kind
    public let operation: String
    /// The helpdesk's own error code, e.g. `ERROR_RIGHT_MISSING`.
    public let code: String?
    public let detail: String
    /// True when the request certainly never reached the helpdesk (no connection, no such host, no TLS session):
    /// a write that failed so cannot have landed.
    public let requestNeverSent: Bool

    public init(_ kind: Kind, operation: String, code: String? = nil, detail: String, requestNeverSent: Bool = false) {
        self.kind = kind
        self.operation = operation
        self.code = code
        self.detail = detail
        self.requestNeverSent = requestNeverSent
    }


    public var description: String {
        "\(operation): \(kind.rawValue)" + (code.map { " \($0)" } ?? "") + (detail.isEmpty ? "" : " - \(detail)")
    }

    /// Worth retrying later without operator action.
    public var isTransient: Bool { kind == .unreachable || kind == .serverError }

    /// The helpdesk refused this one request for good (the ticket is gone, the write or the value is not allowed):
    /// retrying it unchanged cannot help, but other requests are unaffected.
    public var isPermanentRefusal: Bool { kind == .notFound || kind == .rejected || kind == .permission }

    /// The helpdesk answered and did not apply the request: refused, or credentials refused before anything ran.
    public var certainlyNotApplied: Bool { requestNeverSent || isPermanentRefusal || kind == .authentication }

    /// A failure of reading one ticket (a right, a missing item, data beyond bounds), not of the helpdesk as a whole:
    /// that ticket is reported and retried on its own while the others are synced.
    public var concernsOneTicket: Bool { kind == .permission || kind == .notFound || kind == .malformedResponse || kind == .rejected }
}

/// One thing the daemon needs from the helpdesk, as checked by `check-config`.
public struct AccessCheck: Sendable, Equatable {
    public enum Outcome: String, Sendable { case ok, missing, unchecked }
    public var need: String
    public var outcome: Outcome
    /// What the helpdesk answered, and how to grant it when it is missing.
    public var detail: String

    public init(_ need: String, _ outcome: Outcome, _ detail: String = "") {
        self.need = need
        self.outcome = outcome
        self.detail = detail
    }
}

/// The login and the rights, checked.
public struct AccessReport: Sendable, Equatable {
    /// Who the daemon is logged in as (and with which profile, where the helpdesk says); nil when the login failed.
    public var account: String?
    /// Why the login failed, in the operator's terms.
    public var loginFailure: String?
    public var checks: [AccessCheck] = []

    public init(account: String? = nil, loginFailure: String? = nil, checks: [AccessCheck] = []) {
        self.account = account
        self.loginFailure = loginFailure
        self.checks = checks
    }

    public var missing: [AccessCheck] { checks.filter { $0.outcome == .missing } }
}

extension HelpdeskPort {
    public func changedTicketPages(since: String?) -> AsyncThrowingStream<ChangeBatch, any Error> {
        .produced { $0.yield(try await changedTickets(since: since)) }
    }
    public var listsTicketsByPage: Bool { false }
    public func ticketsLinked(toContract id: Int) async throws -> Set<Int> {
        throw HelpdeskError(.rejected, operation: "tickets linked to contract \(id)", detail: "this helpdesk has no explicit ticket-contract links")
    }
    public func helpdeskContracts() async throws -> [HelpdeskContract] {
        throw HelpdeskError(.rejected, operation: "list contracts", detail: "this helpdesk adapter does not read contracts")
    }
    public var taskPageSize: Int? { nil }
    public func taskPage(_ number: Int) async throws -> TaskPage { TaskPage(tasks: [], failures: [], total: 0) }
    public func taskFingerprint(of tasks: [TaskFacts]) -> String? { nil }
    public func ticketTotals() async throws -> TicketTotals? { nil }
    public func noteTexts(ofTickets ids: [Int]) async throws -> [Int: [String]]? { nil }
}

/// One page of the task list across tickets.
public struct TaskPage: Sendable {
    /// In ticket order, as the helpdesk listed them.
    public var tasks: [TaskFacts]
    /// Tickets with a task the adapter could not read.
    public var failures: [TicketReadFailure]
    /// Tasks in the whole list, when the helpdesk says.
    public var total: Int?

    public init(tasks: [TaskFacts], failures: [TicketReadFailure], total: Int?) {
        self.tasks = tasks
        self.failures = failures
        self.total = total
    }
}

extension AsyncThrowingStream where Element: Sendable, Failure == any Error {
    /// A stream fed by `produce` in a task of its own, finished when `produce` returns or throws; a consumer that
    /// stops early cancels it. How the adapters hand over pages while they read the next ones.
    public static func produced(by produce: @escaping @Sendable (Continuation) async throws -> Void) -> Self {
        AsyncThrowingStream { continuation in
            let producer = Task {
                do {
                    try await produce(continuation)
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in producer.cancel() }
        }
    }
}
