import Foundation
import HourLedgerHelpdeskKit
import HourLedgerITop
import HourLedgerCore
import HourLedgerUseCases
import HTTPTypes
import Hummingbird
import Logging
import CoreMetrics
import Synchronization

/// What the webhook endpoints accept. Replaced as a whole when the config is reloaded, so a secret can be rotated
/// without a restart.
public struct WebhookSettings: Sendable, Equatable {
    /// Which helpdesk's endpoint is live (`glpi` or `itop`); the other answers 404.
    public var helpdesk: HelpdeskKind
    /// GLPI's signing secrets or iTop's shared tokens. During a rotation several are valid; none disables webhooks.
    public var secrets: [String]
    /// How far `X-GLPI-timestamp` may be from now, either way.
    public var maxAgeSeconds: Int
    public var maxBodyBytes: Int

    public init(helpdesk: HelpdeskKind, secrets: [String] = [], maxAgeSeconds: Int = 300, maxBodyBytes: Int = 256 * 1024) {
        self.helpdesk = helpdesk
        self.secrets = secrets
        self.maxAgeSeconds = maxAgeSeconds
        self.maxBodyBytes = maxBodyBytes
    }

    /// The secrets for `kind`'s endpoint: none when the daemon is set up for the other helpdesk.
    func secrets(for kind: HelpdeskKind) -> [String] { kind == helpdesk ? secrets : [] }
}

/// The webhook settings in force, shared by the routes and the reloader.
public final class WebhookSettingsBox: Sendable {
    private let state: Mutex<WebhookSettings>

    public init(_ settings: WebhookSettings) { state = Mutex(settings) }

    public var current: WebhookSettings {
        get { state.withLock { $0 } }
        set { state.withLock { $0 = newValue } }
    }
}

/// Webhooks from the helpdesk. Each is only a hint that a ticket changed: the ticket id is stored durably, and the
/// next sync re-reads the ticket through the API. Nothing else in the payload is trusted or applied.
public enum WebhookRoutes {
    /// iTop's webhook payloads are small (a few hundred bytes); anything near this is not one.
    public static let maxITopBodyBytes = 64 * 1024

    public static func register<Context: RequestContext>(on router: Router<Context>, context api: LedgerAPIContext,
                                                         settings: WebhookSettingsBox, recorder: DeliveryRecorder,
                                                         metrics: any MetricsFactory = NOOPMetricsHandler.instance,
                                                         logger: Logger = Logger(label: "hourledger.webhooks")) {
        let glpi = GLPIWebhookEndpoint(api: api, settings: settings, recorder: recorder, metrics: metrics, logger: logger)
        router.post("/webhooks/glpi") { request, _ in try await glpi.deliver(request) }
        router.get("/webhooks/glpi") { request, _ in try glpi.challenge(request) }
        let itop = WebhookOutcomeCounters(helpdesk: "itop", factory: metrics)
        router.post("/webhooks/itop") { request, _ -> Response in
            let tokens = settings.current.secrets(for: .itop)
            guard !tokens.isEmpty else {
                return try JSONBody.error(.notFound, "the iTop webhook is not enabled: set helpdesk.kind itop and helpdesk.webhook_secret")
            }
            let offered = request.headers[HTTPField.Name("X-HourLedger-Token")!] ?? request.uri.queryParameters.get("token") ?? ""
            // Every token is compared, so timing does not tell which one is close.
            guard tokens.map({ ConstantTime.equal(offered.utf8, $0.utf8) }).contains(true) else {
                itop.count(.badSignature)
                logger.warning("iTop webhook refused: wrong or missing token")
                return try JSONBody.error(.unauthorized, "wrong or missing token (X-HourLedger-Token header or ?token=)")
            }
            let body: ByteBuffer
            do {
                body = try await request.body.collect(upTo: maxITopBodyBytes)
            } catch {
                itop.count(.tooLarge)
                return try JSONBody.error(.contentTooLarge, "the body is over \(maxITopBodyBytes) bytes")
            }
            guard let hint = ITopWebhookPayload(Array(body.readableBytesView)) else {
                itop.count(.malformed)
                logger.warning("iTop webhook without a ticket id", metadata: ["bytes": "\(body.readableBytes)"])
                return try JSONBody.error(.badRequest, "no ticket id in the payload: the template needs \"id\": \"$this->id$\"")
            }
            do {
                _ = try await recorder.record(WebhookDelivery(ticketID: hint.ticketID))
            } catch {
                itop.count(.unavailable)
                throw error
            }
            itop.count(.accepted)
            logger.info("iTop webhook: ticket changed", metadata: ["ticket": "\(hint.ticketID)", "class": "\(hint.itemClass ?? "-")",
                                                                   "strict_json": "\(hint.wasValidJSON)"])
            return try JSONBody.response(WebhookAccepted(ticketID: hint.ticketID), status: .accepted)
        }
    }

}

/// What became of a webhook delivery, as counted in `/metrics`.
public enum WebhookOutcome: String, Sendable, CaseIterable {
    case accepted, ignored, replayed, challenge
    case badSignature = "bad_signature", staleTimestamp = "stale_timestamp", malformed, tooLarge = "too_large"
    case challengeFailed = "challenge_failed"
    /// The ledger could not store it (a full disk): answered 503, so the helpdesk sends it again.
    case unavailable
}

/// One counter per outcome, made once so a delivery only increments.
struct WebhookOutcomeCounters: Sendable {
    private let counters: [WebhookOutcome: Counter]

    init(helpdesk: String, factory: any MetricsFactory) {
        var counters: [WebhookOutcome: Counter] = [:]
        for outcome in WebhookOutcome.allCases {
            counters[outcome] = Counter(label: "hourledger_webhooks_total",
                                        dimensions: [("helpdesk", helpdesk), ("outcome", outcome.rawValue)], factory: factory)
        }
        self.counters = counters
    }

    func count(_ outcome: WebhookOutcome) { counters[outcome]?.increment() }
}

struct WebhookAccepted: Codable {
    var accepted = true
    var ticketID: Int

    enum CodingKeys: String, CodingKey {
        case accepted
        case ticketID = "ticket_id"
    }
}

