import Crypto
import Foundation
import GRDB

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
}

extension LedgerStore {
    /// Creates an API token and returns it; only its SHA-256 is stored, so it is shown this once.
    public func createToken(user: String, helpdeskUserID: Int, role: Principal.Role, now: Date = Date()) throws -> String {
        var bytes = [UInt8](repeating: 0, count: 32)
        var generator = SystemRandomNumberGenerator()
        for index in bytes.indices { bytes[index] = UInt8.random(in: .min ... .max, using: &generator) }
        let token = "hl_" + bytes.map { String(format: "%02x", $0) }.joined()
        try writer.write { db in
            try db.execute(sql: "INSERT INTO api_token(hash, user, helpdesk_user_id, role, created_at) VALUES (?, ?, ?, ?, ?)",
                           arguments: [Self.hash(token), user, helpdeskUserID, role.rawValue, Int(now.timeIntervalSince1970)])
        }
        return token
    }

    /// Revokes every token of `user`; returns how many were active.
    @discardableResult
    public func revokeTokens(user: String, now: Date = Date()) throws -> Int {
        try writer.write { db in
            try db.execute(sql: "UPDATE api_token SET revoked_at = ? WHERE user = ? AND revoked_at IS NULL",
                           arguments: [Int(now.timeIntervalSince1970), user])
            return db.changesCount
        }
    }

    /// The principal a bearer token stands for; nil for unknown or revoked tokens.
    public func principal(forToken token: String) throws -> Principal? {
        try writer.read { db in
            // The lookup is by hash, so timing reveals nothing about stored tokens.
            guard let row = try Row.fetchOne(db, sql: "SELECT user, helpdesk_user_id, role FROM api_token WHERE hash = ? AND revoked_at IS NULL",
                                             arguments: [Self.hash(token)]),
                  let role = Principal.Role(rawValue: row["role"])
            else { return nil }
            return Principal(user: row["user"], helpdeskUserID: row["helpdesk_user_id"], role: role)
        }
    }

    static func hash(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}
