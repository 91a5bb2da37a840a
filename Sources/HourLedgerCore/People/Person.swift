/// A person signed in to the dashboard with their own helpdesk account, as the helpdesk described them at sign-in.
/// HourLedger keeps this for the session only; it never sees or stores the password after the helpdesk checked it.
public struct HelpdeskPerson: Sendable, Equatable, Codable {
    /// The login they typed, as the helpdesk knows it (GLPI `glpiname`, iTop `login`).
    public var login: String
    /// The helpdesk user id (GLPI `glpiID`); on iTop the Person id behind the login, which is what tickets name.
    public var userID: Int
    public var displayName: String
    /// The names of the helpdesk profiles the person holds (GLPI `glpiprofiles`, iTop `profile_list`).
    public var profiles: [String]
    /// GLPI: the entities of the active profile; iTop: the person's organisation.
    public var entities: [Int]
    /// GLPI groups; iTop has none at sign-in.
    public var groups: [Int]

    public init(login: String, userID: Int, displayName: String, profiles: [String], entities: [Int], groups: [Int] = []) {
        self.login = login
        self.userID = userID
        self.displayName = displayName
        self.profiles = profiles
        self.entities = entities
        self.groups = groups
    }
}

/// Which helpdesk profiles make a person staff; everyone else is a customer, who sees only contracts shown to them.
public struct StaffRoles: Sendable, Equatable {
    public var managerProfiles: [String]
    public var technicianProfiles: [String]
    /// Logins named outright, for helpdesks (or profiles) that do not say enough.
    public var managerLogins: [String]
    public var technicianLogins: [String]

    public init(managerProfiles: [String], technicianProfiles: [String], managerLogins: [String] = [], technicianLogins: [String] = []) {
        self.managerProfiles = managerProfiles
        self.technicianProfiles = technicianProfiles
        self.managerLogins = managerLogins
        self.technicianLogins = technicianLogins
    }

    /// The staff role a person holds, the higher when several apply; nil for a customer. Profile names compare
    /// without regard to case, as helpdesk admins type them differently.
    public func role(of person: HelpdeskPerson) -> Principal.Role? {
        let held = Set(person.profiles.map { $0.lowercased() })
        let login = person.login.lowercased()
        if managerLogins.contains(where: { $0.lowercased() == login }) || managerProfiles.contains(where: { held.contains($0.lowercased()) }) {
            return .manager
        }
        if technicianLogins.contains(where: { $0.lowercased() == login }) || technicianProfiles.contains(where: { held.contains($0.lowercased()) }) {
            return .technician
        }
        return nil
    }
}

/// Who may see a contract on the dashboard besides staff: named logins, profiles, groups, entities or organisations
/// (any one suffices). A contract without one is shown to the people of its own entity or organisation.
public struct Audience: Sendable, Equatable, Codable {
    public var users: [String]
    public var profiles: [String]
    public var groups: [Int]
    public var entities: [Int]

    public init(users: [String] = [], profiles: [String] = [], groups: [Int] = [], entities: [Int] = []) {
        self.users = users
        self.profiles = profiles
        self.groups = groups
        self.entities = entities
    }

    public func admits(_ person: HelpdeskPerson) -> Bool {
        let held = Set(person.profiles.map { $0.lowercased() })
        return users.contains { $0.lowercased() == person.login.lowercased() }
            || profiles.contains { held.contains($0.lowercased()) }
            || !Set(groups).isDisjoint(with: person.groups)
            || !Set(entities).isDisjoint(with: person.entities)
    }
}

extension Contract {
    /// Whether a customer may see this contract: its `visibleTo`, or else its own entity or organisation (and those
    /// its rule names). A contract that names neither is shown to staff only.
    public func isVisible(to person: HelpdeskPerson) -> Bool {
        if let visibleTo { return visibleTo.admits(person) }
        let own = Set([entity].compactMap { $0 } + (match.entities ?? []))
        return !own.isDisjoint(with: person.entities)
    }
}
