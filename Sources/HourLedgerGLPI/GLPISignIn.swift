import Foundation
import HourLedgerCore
import HourLedgerHTTPClient
import HourLedgerHelpdeskKit
import HourLedgerUseCases

/// A person's own login, checked by GLPI itself (fixtures login_01, login_02, login_05): `initSession` with their
/// login and password in Basic auth, the API client's App-Token and `get_full_session=true`, which names the user,
/// their profiles, active entities and groups in one answer; the session is then killed. The password goes to GLPI
/// and nowhere else.
extension GLPIConnector: HelpdeskSignIn {
    public func signIn(login: String, password: String) async throws -> HelpdeskPerson {
        var headers = baseHeaders()
        headers.append(("Authorization", "Basic " + Data("\(login):\(password)".utf8).base64EncodedString()))
        let response = try await transport(HTTPRequest(url: configuration.url + "/initSession?get_full_session=true", headers: headers,
                                                       timeout: .seconds(15)), operation: "sign-in")
        if response.status == 401, let code = Self.errorCode(response), code == "ERROR_GLPI_LOGIN" {
            throw SignInRefused("GLPI: \(code)")
        }
        let body = try decode(response, operation: "sign-in")
        guard let session = body["session"], let token = body["session_token"]?.string else {
            throw HelpdeskError(.malformedResponse, operation: "sign-in", detail: "initSession did not return the full session")
        }
        // Ended before the person is let in: no session of theirs outlives the sign-in, even if the daemon stops now.
        await dropSession(token)
        return try Self.person(fromSession: session, login: login)
    }

    /// The person a full session describes. `glpiactiveentities` is a map for a Self-Service profile and a list for a
    /// central one (login_01, login_05); names come HTML-encoded as GLPI stores them.
    public static func person(fromSession session: JSONValue, login: String) throws -> HelpdeskPerson {
        guard let id = session["glpiID"]?.int else {
            throw HelpdeskError(.malformedResponse, operation: "sign-in", detail: "the session has no glpiID")
        }
        let name = HTMLEntities.decode(session["glpiname"]?.string ?? login)
        let first = HTMLEntities.decode(session["glpifirstname"]?.string ?? "")
        let last = HTMLEntities.decode(session["glpirealname"]?.string ?? "")
        let display = [first, last].filter { !$0.isEmpty }.joined(separator: " ")
        var profiles = (session["glpiprofiles"]?.object ?? [:]).sorted { $0.key < $1.key }.compactMap { $0.value["name"]?.string }
        if let active = session["glpiactiveprofile"]?["name"]?.string, !profiles.contains(active) { profiles.insert(active, at: 0) }
        let entities: [Int]
        switch session["glpiactiveentities"] {
        case .some(.object(let map)): entities = map.keys.compactMap { Int($0) }
        case .some(let value): entities = value.list.compactMap(\.int)
        case .none: entities = []
        }
        let groups = (session["glpigroups"]?.list ?? []).compactMap(\.int)
        return HelpdeskPerson(login: name, userID: id, displayName: display.isEmpty ? name : display,
                              profiles: profiles.map(HTMLEntities.decode), entities: entities.sorted(), groups: groups.sorted())
    }
}
