import Foundation

/// What the helpdesk says about a ticket, reduced to the ids the rules use.
public struct TicketFacts: Sendable, Equatable, Codable {
    public var id: Int
    public var name: String
    public var entity: Int
    public var groups: [Int]
    public var category: Int
    public var status: Int

    public init(id: Int, name: String = "", entity: Int, groups: [Int], category: Int, status: Int = 1) {
        self.id = id
        self.name = name
        self.entity = entity
        self.groups = groups
        self.category = category
        self.status = status
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
    public static func match(_ ticket: TicketFacts, contracts: [Contract], entities: EntityTree) -> MatchResult {
        var candidates: [(index: Int, contract: Contract, reason: String)] = []
        var rejections: [(contractID: String, reason: String)] = []
        for (index, contract) in contracts.enumerated() {
            switch evaluate(ticket, contract, entities) {
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

    private static func evaluate(_ ticket: TicketFacts, _ contract: Contract, _ entities: EntityTree) -> Result<String, Rejection> {
        var parts: [String] = []
        if ticket.entity == contract.entity {
            parts.append("entity \(ticket.entity)")
        } else if contract.includeSubentities, entities.isWithin(ticket.entity, ancestor: contract.entity) {
            parts.append("entity \(ticket.entity) under \(contract.entity)")
        } else {
            let scope = contract.includeSubentities ? "entity \(contract.entity) or its sub-entities" : "entity \(contract.entity)"
            return .failure(Rejection(reason: "entity \(ticket.entity) is not \(scope)"))
        }
        if let groups = contract.match.groups {
            let hit = ticket.groups.filter(groups.contains)
            guard !hit.isEmpty else {
                let has = ticket.groups.isEmpty ? "no assigned group" : "assigned groups \(ticket.groups.map(String.init).joined(separator: ","))"
                return .failure(Rejection(reason: "\(has), rule wants one of \(groups.map(String.init).joined(separator: ","))"))
            }
            parts.append("group \(hit.map(String.init).joined(separator: ","))")
        }
        if let categories = contract.match.categories {
            guard categories.contains(ticket.category) else {
                return .failure(Rejection(reason: "category \(ticket.category), rule wants one of \(categories.map(String.init).joined(separator: ","))"))
            }
            parts.append("category \(ticket.category)")
        }
        return .success("contract \(contract.id): " + parts.joined(separator: " AND "))
    }
}
