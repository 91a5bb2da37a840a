import Foundation
import HourLedgerCore
import HourLedgerUseCases
import Synchronization

/// How the dashboard signs people in and keeps them signed in.
public struct DashboardSettings: Sendable, Equatable {
    public enum SecureCookie: String, Sendable, CaseIterable {
        /// Secure when the request came over TLS or a trusted proxy says it did (`X-Forwarded-Proto: https`).
        case auto, always, never
    }

    public var enabled = true
    /// A session unused this long ends.
    public var idleSeconds = 30 * 60
    /// A session ends this long after sign-in, used or not.
    public var maxSeconds = 12 * 3600
    public var secureCookie: SecureCookie = .auto
    /// Trust `X-Forwarded-For` and `X-Forwarded-Proto` (set when a reverse proxy on this host terminates TLS).
    public var behindProxy = false
    /// Failed sign-ins per login, and per client address, within `lockoutSeconds` before further attempts are refused.
    public var maxFailuresPerLogin = 5
    public var maxFailuresPerAddress = 20
    public var lockoutSeconds = 15 * 60
    /// Where a technician's week starts and a typed day and time are read when no contract says (the helpdesk's zone).
    public var timeZone = TimeZone(identifier: "UTC")!

    public init() {}
}

/// The person behind a dashboard request, with the session's anti-forgery token.
public struct Viewer: Sendable {
    public var person: HelpdeskPerson
    /// nil for a customer.
    public var role: Principal.Role?
    /// Every form of the session carries it; a post without it is refused.
    public var csrfToken: String

    public var isStaff: Bool { role != nil }
    public var isManager: Bool { (role ?? .technician) >= .manager }
    /// Who the use cases are told acts: the helpdesk login and user id, with the staff role.
    public var principal: Principal? { role.map { Principal(user: person.login, helpdeskUserID: person.userID, role: $0) } }
}

/// Signed-in sessions, kept in memory: a restart signs everyone out, which costs a sign-in and leaks nothing. Only a
/// hash of each session id is kept, so a heap dump holds no usable cookie.
public final class SessionStore: Sendable {
    private struct Session {
        var viewer: Viewer
        var created: Date
        var lastSeen: Date
    }

    private let sessions = Mutex<[String: Session]>([:])
    private let idle: TimeInterval
    private let lifetime: TimeInterval
    /// A bound on memory: past it the least recently used session is dropped.
    static let maxSessions = 10_000

    public init(idleSeconds: Int, maxSeconds: Int) {
        idle = TimeInterval(idleSeconds)
        lifetime = TimeInterval(maxSeconds)
    }

    /// A new session; returns the cookie value, which is shown once and never stored.
    public func start(person: HelpdeskPerson, role: Principal.Role?, now: Date) -> (token: String, viewer: Viewer) {
        let token = Self.randomToken()
        let viewer = Viewer(person: person, role: role, csrfToken: Self.randomToken())
        sessions.withLock { sessions in
            if sessions.count >= Self.maxSessions {
                sessions = sessions.filter { now.timeIntervalSince($0.value.lastSeen) < idle && now.timeIntervalSince($0.value.created) < lifetime }
                if sessions.count >= Self.maxSessions, let oldest = sessions.min(by: { $0.value.lastSeen < $1.value.lastSeen })?.key {
                    sessions.removeValue(forKey: oldest)
                }
            }
            sessions[Self.hash(token)] = Session(viewer: viewer, created: now, lastSeen: now)
        }
        return (token, viewer)
    }

    /// The viewer of a live session, which counts as use; nil (and the session forgotten) once it expired.
    public func viewer(token: String, now: Date) -> Viewer? {
        let key = Self.hash(token)
        return sessions.withLock { sessions in
            guard var session = sessions[key] else { return nil }
            guard now.timeIntervalSince(session.lastSeen) < idle, now.timeIntervalSince(session.created) < lifetime else {
                sessions.removeValue(forKey: key)
                return nil
            }
            session.lastSeen = now
            sessions[key] = session
            return session.viewer
        }
    }

    public func end(token: String) { _ = sessions.withLock { $0.removeValue(forKey: Self.hash(token)) } }

    public var count: Int { sessions.withLock { $0.count } }

    static func hash(_ token: String) -> String { SecretToken.digest(token) }

    static func randomToken() -> String { SecretToken.random() }
}

/// Failed sign-ins per login and per client address: past either limit, attempts are refused without asking the
/// helpdesk until the window has passed, so the dashboard cannot be used to guess helpdesk passwords.
public final class SignInLimiter: Sendable {
    private let failures = Mutex<[String: [Date]]>([:])
    private let perLogin: Int
    private let perAddress: Int
    private let window: TimeInterval

    public init(perLogin: Int, perAddress: Int, windowSeconds: Int) {
        self.perLogin = perLogin
        self.perAddress = perAddress
        window = TimeInterval(windowSeconds)
    }

    public func allows(login: String, address: String, now: Date) -> Bool {
        failures.withLock { failures in
            recent(&failures, "login:" + login.lowercased(), now) < perLogin && recent(&failures, "address:" + address, now) < perAddress
        }
    }

    public func failed(login: String, address: String, now: Date) {
        failures.withLock { failures in
            if failures.count > 100_000 { failures = failures.filter { $0.value.contains { now.timeIntervalSince($0) < window } } }
            failures["login:" + login.lowercased(), default: []].append(now)
            failures["address:" + address, default: []].append(now)
        }
    }

    /// A good sign-in clears its login's failures (not its address's: one address may try many logins).
    public func succeeded(login: String) { _ = failures.withLock { $0.removeValue(forKey: "login:" + login.lowercased()) } }

    private func recent(_ failures: inout [String: [Date]], _ key: String, _ now: Date) -> Int {
        guard let list = failures[key] else { return 0 }
        let kept = list.filter { now.timeIntervalSince($0) < window }
        failures[key] = kept.isEmpty ? nil : kept
        return kept.count
    }
}
