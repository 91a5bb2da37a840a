import HourLedgerCore
import Testing

/// Who sees a contract on the dashboard, and which staff role a helpdesk profile gives.
@Suite struct AudienceTests {
    let carol = HelpdeskPerson(login: "customer.carol", userID: 10, displayName: "Carol", profiles: ["Self-Service"], entities: [1])
    let bob = HelpdeskPerson(login: "customer.bob", userID: 11, displayName: "Bob", profiles: ["Self-Service"], entities: [2], groups: [7])

    func contract(entity: Int?, rule: MatchRule = .init(), visibleTo: Audience? = nil) -> Contract {
        var contract = Contract(id: "c", name: "C", entity: entity, match: rule, quotaSeconds: 3600, starts: CivilDate("2026-01-01")!)
        contract.visibleTo = visibleTo
        return contract
    }

    @Test func aContractIsShownToThePeopleOfItsOwnEntityByDefault() {
        #expect(contract(entity: 1).isVisible(to: carol))
        #expect(!contract(entity: 1).isVisible(to: bob))
        #expect(contract(entity: nil, rule: MatchRule(entities: [2, 3])).isVisible(to: bob))
        // A contract defined by a query alone names no customer: staff only.
        #expect(!contract(entity: nil, rule: MatchRule(query: "SELECT UserRequest")).isVisible(to: carol))
    }

    @Test func visibleToReplacesTheDefaultAndAnyOfItsListsSuffices() {
        let shared = Audience(users: ["Customer.Carol"], groups: [7])
        #expect(contract(entity: 5, visibleTo: shared).isVisible(to: carol))     // by login, whatever its case
        #expect(contract(entity: 5, visibleTo: shared).isVisible(to: bob))       // by group
        #expect(!contract(entity: 1, visibleTo: Audience(entities: [2])).isVisible(to: carol))  // not her entity any more
        #expect(contract(entity: 9, visibleTo: Audience(profiles: ["self-service"])).isVisible(to: bob))
        #expect(!contract(entity: 9, visibleTo: Audience()).isVisible(to: bob))
    }

    @Test func staffRolesComeFromProfilesOrLoginsAndTheHigherWins() {
        let roles = StaffRoles(managerProfiles: ["Supervisor"], technicianProfiles: ["Technician"], managerLogins: ["boss"])
        func person(_ login: String, _ profiles: [String]) -> HelpdeskPerson {
            HelpdeskPerson(login: login, userID: 1, displayName: login, profiles: profiles, entities: [0])
        }
        #expect(roles.role(of: person("a", ["Technician"])) == .technician)
        #expect(roles.role(of: person("a", ["technician", "SUPERVISOR"])) == .manager)
        #expect(roles.role(of: person("BOSS", ["Self-Service"])) == .manager)
        #expect(roles.role(of: carol) == nil)
    }
}
