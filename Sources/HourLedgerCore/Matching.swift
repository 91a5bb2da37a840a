import Foundation

/// What the helpdesk says about a ticket, reduced to the ids the rules use.
public struct TicketFacts: Sendable, Equatable, Codable {
    public var id: Int
    public var name: String
    public var entity: Int
    public var groups: [Int]
    public var category: Int
    /// Lifecycle on GLPI's scale (1 new … 5 solved, 6 closed); iTop's statuses are mapped onto it.
    public var status: Int
    /// iTop only: the service, the assigned agent and its ref (R-000042).
    public var service: Int
    public var agent: Int
    /// The ticket's type in the helpdesk's words: iTop's class (UserRequest, Incident), GLPI's type (Incident, Request).
    public var ticketClass: String
    public var ref: String
    /// What the ticket is about, for reports: GLPI's category (its full name), iTop's service.
    public var categoryName: String
    /// Contracts whose query rule (iTop OQL) the helpdesk says this ticket satisfies.
    public var queryMatches: [String]
    /// Contracts whose query rule could not be asked this poll and had no earlier answer for this ticket.
    public var queryUnknown: [String] = []
    /// Contracts the ticket is linked to by hand in the helpdesk (GLPI's Ticket_Contract), by HourLedger contract id.
    /// An explicit link wins over every rule.
    public var linkedContracts: [String] = []

    public init(id: Int, name: String = "", entity: Int, groups: [Int], category: Int, status: Int = 1, service: Int = 0, agent: Int = 0,
                ticketClass: String = "", ref: String = "", categoryName: String = "", queryMatches: [String] = []) {
        self.id = id
        self.name = name
        self.entity = entity
        self.groups = groups
        self.category = category
        self.status = status
        self.service = service
        self.agent = agent
        self.ticketClass = ticketClass
        self.ref = ref
        self.categoryName = categoryName
        self.queryMatches = queryMatches
    }
}

/// The helpdesk's own words for the ticket attributes rules test, so a match reason reads as the admin configured it.
public struct HelpdeskTerms: Sendable, Equatable {
    public var entity: String
    public var group: String
    public var category: String
    public var query: String
    public var entities: String

    public init(entity: String, group: String, category: String, query: String, entities: String) {
        self.entity = entity
        self.group = group
        self.category = category
        self.query = query
        self.entities = entities
    }
}

/// A task's time as the helpdesk reports it.
public struct TaskFacts: Sendable, Equatable, Codable {
    public var id: Int
    public var ticketID: Int
    public var date: Date
    public var seconds: Int
    public var technician: Int
    public var isPrivate: Bool
    public var content: String

    public init(id: Int, ticketID: Int, date: Date, seconds: Int, technician: Int, isPrivate: Bool, content: String = "") {
        self.id = id
        self.ticketID = ticketID
        self.date = date
        self.seconds = seconds
        self.technician = technician
        self.isPrivate = isPrivate
        self.content = content
    }
}

/// Parent links of the helpdesk's entities, for `include_subentities`.
public struct EntityTree: Sendable, Equatable {
    public var parents: [Int: Int]

    public init(parents: [Int: Int] = [:]) { self.parents = parents }

    /// True when `entity` is `ancestor` or lies below it.
    public func isWithin(_ entity: Int, ancestor: Int) -> Bool {
        var current: Int? = entity
        var hops = 0
        while let id = current, hops <= parents.count {
            if id == ancestor { return true }
            current = parents[id].flatMap { $0 == id ? nil : $0 }
            hops += 1
        }
        return false
    }
}

/// The outcome of matching one ticket: the linked contract and why, or why each contract said no.
public struct MatchResult: Sendable, Equatable {
    public var contractID: String?
    public var reason: String
    public var rejections: [(contractID: String, reason: String)]

    public static func == (a: MatchResult, b: MatchResult) -> Bool {
        a.contractID == b.contractID && a.reason == b.reason
            && a.rejections.map(\.contractID) == b.rejections.map(\.contractID)
            && a.rejections.map(\.reason) == b.rejections.map(\.reason)
    }
}

public enum ContractMatcher {
    /// Links a ticket to at most one contract. Contracts are tried in file order; priority then order decide ties.
    public static func match(_ ticket: TicketFacts, contracts: [Contract], entities: EntityTree, terms: HelpdeskTerms) -> MatchResult {
        let linked = contracts.enumerated().filter { ticket.linkedContracts.contains($0.element.id) && $0.element.match.linkedContract != nil }
        if let winner = linked.max(by: { a, b in
            a.element.priority != b.element.priority ? a.element.priority < b.element.priority : a.offset > b.offset
        }) {
            // Someone linked the ticket to this contract in the helpdesk: that says more than any rule can.
            var reason = "contract \(winner.element.id): the ticket is linked to contract \(winner.element.match.linkedContract!) in the helpdesk, "
                + "which wins over rules"
            let others = linked.filter { $0.element.id != winner.element.id }.map(\.element.id)
            if !others.isEmpty { reason += "; also linked to \(others.joined(separator: ", ")), won on priority then file order" }
            let rejections = contracts.filter { $0.id != winner.element.id }.map { ($0.id, "the ticket is linked to \(winner.element.id) in the helpdesk") }
            return MatchResult(contractID: winner.element.id, reason: reason, rejections: rejections)
        }
        var candidates: [(index: Int, contract: Contract, reason: String)] = []
        var rejections: [(contractID: String, reason: String)] = []
        for (index, contract) in contracts.enumerated() {
            switch evaluate(ticket, contract, entities, terms) {
            case .success(let reason): candidates.append((index, contract, reason))
            case .failure(let rejection): rejections.append((contract.id, rejection.reason))
            }
        }
        guard let winner = candidates.max(by: { a, b in
            a.contract.priority != b.contract.priority ? a.contract.priority < b.contract.priority : a.index > b.index
        }) else {
            let reason = contracts.isEmpty
                ? "no contracts configured"
                : "no contract matches: " + rejections.map { "\($0.contractID): \($0.reason)" }.joined(separator: "; ")
            return MatchResult(contractID: nil, reason: reason, rejections: rejections)
        }
        var reason = winner.reason
        let others = candidates.filter { $0.contract.id != winner.contract.id }
        if !others.isEmpty {
            let tied = others.contains { $0.contract.priority == winner.contract.priority }
            reason += "; also matched \(others.map(\.contract.id).joined(separator: ", ")), won on "
                + (tied ? "file order at priority \(winner.contract.priority)" : "priority \(winner.contract.priority)")
        }
        for other in candidates where other.contract.id != winner.contract.id {
            rejections.append((other.contract.id, "matched, but \(winner.contract.id) wins"))
        }
        return MatchResult(contractID: winner.contract.id, reason: reason, rejections: rejections)
    }

    private struct Rejection: Error { let reason: String }

    private static func list<T>(_ values: [T]) -> String { values.map { "\($0)" }.joined(separator: ",") }

    private static func evaluate(_ ticket: TicketFacts, _ contract: Contract, _ entities: EntityTree, _ t: HelpdeskTerms) -> Result<String, Rejection> {
        var parts: [String] = []
        let scopes = (contract.entity.map { [$0] } ?? []) + (contract.match.entities ?? [])
        if contract.entity != nil || contract.match.entities != nil {
            if scopes.contains(ticket.entity) {
                parts.append("\(t.entity) \(ticket.entity)")
            } else if contract.includeSubentities, let parent = scopes.first(where: { entities.isWithin(ticket.entity, ancestor: $0) }) {
                parts.append("\(t.entity) \(ticket.entity) under \(parent)")
            } else {
                let wanted = scopes.count == 1 ? "\(t.entity) \(scopes[0])" : "one of \(t.entity)s \(list(scopes))"
                let scope = contract.includeSubentities ? "\(wanted) or its sub-\(t.entities)" : wanted
                return .failure(Rejection(reason: "\(t.entity) \(ticket.entity) is not \(scope)"))
            }
        }
        if let groups = contract.match.groups {
            let hit = ticket.groups.filter(groups.contains)
            guard !hit.isEmpty else {
                let has = ticket.groups.isEmpty ? "no assigned \(t.group)" : "assigned \(t.group)s \(list(ticket.groups))"
                return .failure(Rejection(reason: "\(has), rule wants one of \(list(groups))"))
            }
            parts.append("\(t.group) \(list(hit))")
        }
        if let services = contract.match.services {
            guard services.contains(ticket.service) else {
                return .failure(Rejection(reason: "service \(ticket.service), rule wants one of \(list(services))"))
            }
            parts.append("service \(ticket.service)")
        }
        if let categories = contract.match.categories {
            guard categories.contains(ticket.category) else {
                return .failure(Rejection(reason: "\(t.category) \(ticket.category), rule wants one of \(list(categories))"))
            }
            parts.append("\(t.category) \(ticket.category)")
        }
        if let classes = contract.match.classes {
            guard classes.contains(ticket.ticketClass) else {
                return .failure(Rejection(reason: "class \(ticket.ticketClass.isEmpty ? "(none)" : ticket.ticketClass), rule wants one of \(list(classes))"))
            }
            parts.append("class \(ticket.ticketClass)")
        }
        if let query = contract.match.query {
            guard ticket.queryMatches.contains(contract.id) else {
                if ticket.queryUnknown.contains(contract.id) {
                    return .failure(Rejection(reason: "its \(t.query) could not be asked (the helpdesk refused it; see /status)"))
                }
                return .failure(Rejection(reason: "not selected by the \(t.query) \"\(query)\""))
            }
            parts.append("\(t.query) \"\(query)\"")
        }
        return .success("contract \(contract.id): " + parts.joined(separator: " AND "))
    }
}

/// How a ticket left the helpdesk. Its time leaves every balance, as a recorded move, and comes back if the ticket does.
public enum TicketRemoval: String, Sendable, Codable {
    /// In GLPI's trash: it can be restored.
    case trashed
    /// Gone from GLPI for good (purged), or no longer visible to the daemon's account.
    case purged
    /// Deleted in iTop (which has no trash), or no longer visible to the daemon's account.
    case deleted

    public var reason: String {
        switch self {
        case .trashed: "moved to the helpdesk's trash"
        case .purged: "purged from the helpdesk, or no longer visible to the daemon's account"
        case .deleted: "deleted in the helpdesk, or no longer visible to the daemon's account"
        }
    }
}
