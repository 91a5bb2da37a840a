import Crypto
import Foundation
import HourLedgerCore

extension Ledger {
    /// Creates an API token and returns it; only its SHA-256 is stored, so it is shown this once.
    public func createToken(user: String, helpdeskUserID: Int, role: Principal.Role, now: Date? = nil) throws -> String {
        let now = now ?? clock.now()
        let token = "hl_" + SecretToken.random()
        try writeNow { try $0.insertToken(hash: Self.hash(token), user: user, helpdeskUserID: helpdeskUserID, role: role, at: now) }
        return token
    }

    /// Revokes every token of `user`; returns how many were active.
    @discardableResult
    public func revokeTokens(user: String, now: Date? = nil) throws -> Int {
        let now = now ?? clock.now()
        return try writeNow { try $0.revokeTokens(user: user, at: now) }
    }

    /// The principal a bearer token stands for; nil for unknown or revoked tokens. The lookup is by hash, so timing
    /// reveals nothing about stored tokens.
    public func principal(forToken token: String) throws -> Principal? {
        try read { try $0.principal(tokenHash: Self.hash(token)) }
    }

    static func hash(_ token: String) -> String { SecretToken.digest(token) }
}

/// Bearer secrets (API tokens, dashboard sessions): 256 random bits, and the SHA-256 that is all a store keeps.
public enum SecretToken {
    /// 64 hex digits from the system's random source.
    public static func random() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: .min ... .max, using: &generator)) }.joined()
    }

    public static func digest(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}
