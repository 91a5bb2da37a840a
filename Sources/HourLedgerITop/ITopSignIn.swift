import Foundation
import HourLedgerCore
import HourLedgerHTTPClient
import HourLedgerHelpdeskKit
import HourLedgerUseCases

/// How the daemon learns who is behind a login that iTop accepted. `core/check_credentials` only says yes or no
/// (fixtures 71, 72, 76), and the daemon's usual profiles may not read `User` (73).
public enum ITopPersonLookup: String, Sendable, CaseIterable {
    /// Read `User` by login (contactid, profiles, status): the daemon account needs a profile that may read User
    /// (README, "Dashboard sign-in"). Gives staff roles from iTop profiles.
    case user
    /// Read `Person` by e-mail, for portals whose logins are e-mail addresses: the daemon may read Person (75).
    /// iTop profiles stay unknown, so staff are named in `roles.manager_logins` and `roles.technician_logins`.
    case email
}

extension ITopConnector: HelpdeskSignIn {
    public func signIn(login: String, password: String) async throws -> HelpdeskPerson {
        let check = try await call(["operation": "core/check_credentials", "user": login, "password": password], what: "sign-in")
        guard case .bool(true)? = check["authorized"] else { throw SignInRefused("iTop: check_credentials answered authorized false") }
        switch configuration.personLookup {
        case .user: return try await personByUser(login)
        case .email: return try await personByEmail(login)
        }
    }

    private func personByUser(_ login: String) async throws -> HelpdeskPerson {
        let answer: JSONValue
        do {
            answer = try await call(["operation": "core/get", "class": "User", "key": "SELECT User WHERE login = \(OQL.quote(login))",
                                     "output_fields": "id,login,contactid,org_id,profile_list,status"], what: "sign-in: read User")
        } catch let error as HelpdeskError where error.kind == .permission {
            throw HelpdeskError(.permission, operation: "sign-in: read User", code: error.code,
                                detail: "the daemon account may not read class User: grant it the profile README names (Dashboard sign-in), or set helpdesk.sign_in_lookup: email")
        }
        guard let user = try Self.objects(answer, operation: "sign-in").first else { throw SignInRefused("iTop: no User with this login") }
        if let status = user.fields["status"]?.string, status != "enabled" { throw SignInRefused("iTop: the account is \(status)") }
        guard let contact = user.fields["contactid"]?.int, contact > 0 else { throw SignInRefused("iTop: the account has no person") }
        let profiles = user.fields["profile_list"]?.list.compactMap { $0["profile"]?.string ?? $0["profileid_friendlyname"]?.string } ?? []
        let person = try await readPerson(key: contact)
        guard let person else { throw SignInRefused("iTop: person \(contact) of the account is not readable") }
        return Self.person(person, login: user.fields["login"]?.string ?? login, profiles: profiles)
    }

    private func personByEmail(_ login: String) async throws -> HelpdeskPerson {
        let answer = try await call(["operation": "core/get", "class": "Person", "key": "SELECT Person WHERE email = \(OQL.quote(login))",
                                     "output_fields": "id,name,first_name,org_id,org_name,email"], what: "sign-in: read Person")
        let found = try Self.objects(answer, operation: "sign-in")
        guard found.count == 1, let person = found.first else { throw SignInRefused("iTop: \(found.count) persons have this e-mail") }
        return Self.person(person, login: login, profiles: [])
    }

    private func readPerson(key: Int) async throws -> Object? {
        let answer = try await call(["operation": "core/get", "class": "Person", "key": key, "output_fields": "id,name,first_name,org_id,org_name,email"],
                                    what: "sign-in: read Person")
        return try Self.objects(answer, operation: "sign-in").first
    }

    static func person(_ person: Object, login: String, profiles: [String]) -> HelpdeskPerson {
        let name = [person.fields["first_name"]?.string, person.fields["name"]?.string].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: " ")
        let org = person.fields["org_id"]?.int
        return HelpdeskPerson(login: login, userID: person.id, displayName: name.isEmpty ? login : name, profiles: profiles,
                              entities: org.map { [$0] } ?? [])
    }
}
