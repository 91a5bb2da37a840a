import Foundation
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
/// next sync re-reads the ticket through the API. Nothing else in the payload is trusted or applied. Each helpdesk
/// module brings its `WebhookVerifier`; every verifier gets its endpoint, and only the configured helpdesk's answers.
public enum WebhookRoutes {
    public static func register<Context: RequestContext>(on router: Router<Context>, context api: LedgerAPIContext,
                                                         settings: WebhookSettingsBox, recorder: DeliveryRecorder,
                                                         verifiers: [any WebhookVerifier],
                                                         metrics: any MetricsFactory = NOOPMetricsHandler.instance,
                                                         logger: Logger = Logger(label: "hourledger.webhooks")) {
        for verifier in verifiers {
            let endpoint = WebhookEndpoint(verifier: verifier, api: api, settings: settings, recorder: recorder, metrics: metrics, logger: logger)
            router.post("/webhooks/\(verifier.kind.rawValue)") { request, _ in try await endpoint.deliver(request) }
            if verifier.makesChallenge {
                router.get("/webhooks/\(verifier.kind.rawValue)") { request, _ in try endpoint.challenge(request) }
            }
        }
    }
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


