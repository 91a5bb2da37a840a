import FakeGLPI
import FakeITop
import Foundation

/// A demo helpdesk on loopback for trying the dashboard and for the browser tests: the fake GLPI (or iTop) of the
/// tests, seeded with customers, staff, tickets and tasks dated today. Not a product: it lives under Tests/.
///
///   hourledger-demo-helpdesk [--kind glpi|itop] [--port 8091]
///
/// Demo accounts, all with the password `Demo-Pass-1`:
/// - GLPI: customer.carol (Customer A, entity 1), customer.bob (Customer B, entity 2), tech.alice (Technician),
///   manager.max (Supervisor). The daemon's tokens: App-Token `demo`, user_token `demo`.
/// - iTop: lena.fischer (portal user of Globex, org 2), agent.anna (Support Agent), manager.mia (Service Manager).
///   The daemon's account: hours-daemon / Daemon-Passw0rd!, allowed to read User.
@main
struct DemoHelpdesk {
    static let password = "Demo-Pass-1"

    static func main() async throws {
        var kind = "glpi"
        var port = 8091
        var arguments = CommandLine.arguments.dropFirst().makeIterator()
        while let argument = arguments.next() {
            switch argument {
            case "--kind": kind = arguments.next() ?? kind
            case "--port": port = arguments.next().flatMap { Int($0) } ?? port
            default:
                FileHandle.standardError.write(Data("usage: hourledger-demo-helpdesk [--kind glpi|itop] [--port N]\n".utf8))
                exit(2)
            }
        }
        let tick: @Sendable () -> Void
        var running: [Any] = []
        if kind == "itop" {
            let state = itop()
            let server = try await FakeITopServer(state: state, port: port)
            running.append(server)
            FileHandle.standardOutput.write(Data("demo iTop ready at \(server.url)/webservices/rest.php\n".utf8))
            tick = { state.setClock(Date()) }
        } else {
            let state = glpi()
            let server = try await FakeGLPIServer(state: state, port: port)
            running.append(server)
            FileHandle.standardOutput.write(Data("demo GLPI ready at \(server.url)\n".utf8))
            tick = { state.setClock(Date()) }
        }
        // The helpdesk's clock follows the wall clock, so new tasks and edits carry today's date.
        while !running.isEmpty {
            tick()
            try await Task.sleep(for: .seconds(1))
        }
    }

    static func glpi() -> FakeGLPIState {
        let state = FakeGLPIState(appToken: "demo", userToken: "demo", clock: Date())
        state.logRequests = false
        state.addEntity(1, name: "Customer A")
        state.addEntity(3, name: "Customer A Paris", parent: 1)
        state.addEntity(2, name: "Customer B")
        state.addEntity(4, name: "Gamma Ltd")
        state.addEntity(5, name: "Delta Corp")
        state.addGroup(1, name: "Support Team")
        state.addGroup(2, name: "Field Team")
        state.addCategory(1, name: "Hardware")
        state.addCategory(2, name: "Software")
        for person in [
            FakeGLPIState.Person(id: 10, login: "customer.carol", password: password, firstname: "Carol", realname: "Client", profileID: 1,
                                 profile: "Self-Service", interface: "helpdesk", entities: [1]),
            FakeGLPIState.Person(id: 11, login: "customer.bob", password: password, firstname: "Bob", realname: "Buyer", profileID: 1,
                                 profile: "Self-Service", interface: "helpdesk", entities: [2]),
            FakeGLPIState.Person(id: 7, login: "tech.alice", password: password, firstname: "Alice", realname: "Martin", profileID: 6,
                                 profile: "Technician", interface: "central", entities: [0, 1, 2, 3, 4, 5], groups: [1]),
            FakeGLPIState.Person(id: 8, login: "manager.max", password: password, firstname: "Max", realname: "Moreau", profileID: 7,
                                 profile: "Supervisor", interface: "central", entities: [0, 1, 2, 3, 4, 5]),
        ] { state.addPerson(person) }
        // ACME (acme-2026: entity 1, group 1, categories 1 and 2, 15-minute rounding up): 3600 + 1000 + 2700 s.
        state.addTicket(1, name: "Laptop & <dock> does not boot", entity: 1, category: 1, groups: [1])
        state.addTask(ticket: 1, seconds: 3600, technician: 7)
        state.addTask(ticket: 1, seconds: 1000, technician: 7)
        state.addTicket(2, name: "Mail client crashes", entity: 1, category: 2, groups: [1])
        state.addTask(ticket: 2, seconds: 2700, technician: 7)
        // Customer B (beta-2026): 5400 s. Gamma (pay as you go): 1800 s. Delta (unlimited): 3600 s.
        state.addTicket(3, name: "VPN disconnects", entity: 2, category: 2, groups: [2])
        state.addTask(ticket: 3, seconds: 5400, technician: 7)
        state.addTicket(4, name: "New starter account", entity: 4, category: 2, groups: [1])
        state.addTask(ticket: 4, seconds: 1800, technician: 7)
        state.addTicket(6, name: "Server room check", entity: 5, category: 1, groups: [1])
        state.addTask(ticket: 6, seconds: 3600, technician: 7)
        // Matches no contract: assigned to group 2, which ACME's rule does not take.
        state.addTicket(5, name: "Printer in lobby", entity: 1, category: 1, groups: [2])
        state.addTask(ticket: 5, seconds: 900, technician: 7)
        return state
    }

    static func itop() -> FakeITopState {
        let state = FakeITopState(clock: Date())
        state.logRequests = false
        state.addOrganization(1, name: "My Company/Department", code: "SOMECODE")
        state.addOrganization(2, name: "Globex Corporation", code: "GLOBEX")
        state.addOrganization(3, name: "Initech", code: "INITECH")
        state.grantUserRead("hours-daemon")
        state.addUser("lena.fischer", FakeITopState.User(password: password, isAdmin: false, hasRESTProfile: false, friendlyName: "Lena Fischer", id: 4,
                                                         contactID: 6, profiles: ["Portal user"]),
                      person: FakeITopState.Person(id: 6, name: "Fischer", firstName: "Lena", org: 2, email: "lena.fischer@globex.example"))
        state.addUser("agent.anna", FakeITopState.User(password: password, isAdmin: false, hasRESTProfile: false, friendlyName: "Anna Agent", id: 5,
                                                       contactID: 4, profiles: ["Support Agent"]),
                      person: FakeITopState.Person(id: 4, name: "Agent", firstName: "Anna", org: 1, email: "anna@example.com"))
        state.addUser("manager.mia", FakeITopState.User(password: password, isAdmin: false, hasRESTProfile: false, friendlyName: "Mia Manager", id: 6,
                                                        contactID: 5, profiles: ["Service Manager"]),
                      person: FakeITopState.Person(id: 5, name: "Manager", firstName: "Mia", org: 1, email: "mia@example.com"))
        state.addTicket("UserRequest", title: "Printer jam on the 3rd floor", org: 2, team: 10, agent: 4, service: 1, subcategory: 1)
        state.addTicket("UserRequest", title: "Badge reader offline", org: 3, team: 11, agent: 4, service: 1, subcategory: 2)
        state.addTicket("Incident", title: "Globex mail outage", org: 2, team: 11, agent: 4, service: 1, subcategory: 2)
        return state
    }
}
