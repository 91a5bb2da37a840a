import Foundation

/// A webhook delivery as a helpdesk adapter checks it: its headers, query and body, with no HTTP types.
public struct WebhookRequest: Sendable {
    private let headers: @Sendable (String) -> String?
    private let query: @Sendable (String) -> String?
    public let body: [UInt8]

    public init(headers: @escaping @Sendable (String) -> String?, query: @escaping @Sendable (String) -> String?, body: [UInt8] = []) {
        self.headers = headers
        self.query = query
        self.body = body
    }

    public func header(_ name: String) -> String? { headers(name) }
    public func query(_ name: String) -> String? { query(name) }
}

/// What became of a webhook delivery, as counted in `/metrics`.
public enum WebhookOutcome: String, Sendable, CaseIterable {
    case accepted, ignored, replayed, challenge
    case badSignature = "bad_signature", staleTimestamp = "stale_timestamp", malformed, tooLarge = "too_large"
    case challengeFailed = "challenge_failed"
    /// The ledger could not store it (a full disk): answered 503, so the helpdesk sends it again.
    case unavailable
}

/// A helpdesk adapter's judgement of one delivery. Only a ticket id is ever taken from it: the ticket is re-read.
public enum WebhookVerdict: Sendable, Equatable {
    /// The delivery names a ticket to re-read. `signature` (when the helpdesk signs) is remembered against replays;
    /// `detail` goes to the log.
    case ticket(Int, signature: String?, detail: [String: String])
    /// Authentic, but about nothing HourLedger keeps.
    case ignored(reason: String)
    /// The answer to the helpdesk's endpoint check, sent back as it is.
    case challenge(answer: String)
    /// Refused: `badSignature`, `staleTimestamp`, `malformed` or `challengeFailed`, with the reason in the helpdesk's terms.
    case refused(WebhookOutcome, reason: String)
}

/// How one helpdesk signs and shapes its webhooks. Each helpdesk module has one; the server turns verdicts into
/// answers, stores the hints and counts the outcomes.
public protocol WebhookVerifier: Sendable {
    var kind: HelpdeskKind { get }
    /// The HTTP status a stored hint is acknowledged with: what this helpdesk takes as delivered.
    var acceptedStatus: Int { get }
    /// The largest body this helpdesk's endpoint reads, given the configured limit.
    func maxBodyBytes(configured: Int) -> Int
    /// Checks made before the body is read (a shared token); nil when they pass.
    func admit(_ request: WebhookRequest, secrets: [String]) -> WebhookVerdict?
    /// Checks a delivery with its body.
    func verify(_ request: WebhookRequest, secrets: [String], maxAgeSeconds: Int, now: Date) -> WebhookVerdict
    /// Whether the helpdesk checks the endpoint with a `GET` before it sends anything.
    var makesChallenge: Bool { get }
    /// Answers that check; nil when the helpdesk makes none.
    func challenge(_ request: WebhookRequest, secrets: [String]) -> WebhookVerdict?
}

extension HelpdeskKind {
    /// The helpdesk's name as its users write it.
    public var displayName: String {
        switch self {
        case .glpi: "GLPI"
        case .itop: "iTop"
        }
    }
}
