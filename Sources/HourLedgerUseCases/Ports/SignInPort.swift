import HourLedgerCore

/// The helpdesk checks a person's own login and password and says who they are: HourLedger never stores a helpdesk
/// password, and a person's rights on the dashboard follow what the helpdesk says today.
public protocol HelpdeskSignIn: Sendable {
    /// Throws `SignInRefused` when the helpdesk says the login or password is wrong (or the account may not sign in);
    /// any other error means the helpdesk could not be asked.
    func signIn(login: String, password: String) async throws -> HelpdeskPerson
}

/// The helpdesk refused the login. `reason` is for the log only: the person is shown one generic message.
public struct SignInRefused: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// Limits on what a sign-in form may carry, checked before the helpdesk is asked.
public enum SignInBounds {
    public static let maxLoginLength = 255
    public static let maxPasswordLength = 1024

    /// A login the helpdesk could be asked about: not empty, bounded, no control characters, and no ':' (which
    /// HTTP Basic cannot carry in a user name).
    public static func acceptable(login: String, password: String) -> Bool {
        !login.isEmpty && login.count <= maxLoginLength && !password.isEmpty && password.count <= maxPasswordLength
            && !login.contains(":") && !login.unicodeScalars.contains { $0.properties.generalCategory == .control }
            && !password.unicodeScalars.contains { $0.value < 0x20 && $0 != "\t" }
    }
}
