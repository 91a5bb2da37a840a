/// Who is calling the API, from their bearer token.
public struct Principal: Sendable, Equatable {
    public enum Role: String, Sendable, CaseIterable, Comparable {
        case technician, manager, admin
        private var rank: Int { Role.allCases.firstIndex(of: self)! }
        public static func < (a: Role, b: Role) -> Bool { a.rank < b.rank }
    }

    public var user: String
    /// The helpdesk user id the principal logs time as (GLPI `users_id_tech`).
    public var helpdeskUserID: Int
    public var role: Role

    public init(user: String, helpdeskUserID: Int, role: Role) {
        self.user = user
        self.helpdeskUserID = helpdeskUserID
        self.role = role
    }
}
