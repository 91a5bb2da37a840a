import CoreMetrics
import Foundation
import HourLedgerCore
import HourLedgerUseCases
import HTTPTypes
import Hummingbird
import Logging

/// `POST /webhooks/<helpdesk>` (and `GET` for a helpdesk that checks the endpoint first). The helpdesk's own
/// `WebhookVerifier` judges each delivery; this turns its verdict into the answer, stores the hint durably before any
/// 2xx, refuses replays, and counts every outcome.
struct WebhookEndpoint: Sendable {
    let verifier: any WebhookVerifier
    let api: LedgerAPIContext
    let settings: WebhookSettingsBox
    let recorder: DeliveryRecorder
    let counters: WebhookOutcomeCounters
    let logger: Logger

    init(verifier: any WebhookVerifier, api: LedgerAPIContext, settings: WebhookSettingsBox, recorder: DeliveryRecorder,
         metrics: any MetricsFactory, logger: Logger) {
        self.verifier = verifier
        self.api = api
        self.settings = settings
        self.recorder = recorder
        self.counters = WebhookOutcomeCounters(helpdesk: verifier.kind.rawValue, factory: metrics)
        self.logger = logger
    }

    private var name: String { verifier.kind.displayName }

    func deliver(_ request: Request) async throws -> Response {
        let settings = settings.current
        let secrets = settings.secrets(for: verifier.kind)
        guard !secrets.isEmpty else { return try notEnabled() }
        if let refusal = verifier.admit(Self.view(request), secrets: secrets) { return try answer(refusal) }
        // The body is read whatever its Content-Type: GLPI sends none.
        let limit = verifier.maxBodyBytes(configured: settings.maxBodyBytes)
        let body: [UInt8]
        do {
            body = Array(try await request.body.collect(upTo: limit).readableBytesView)
        } catch {
            return refuse(.tooLarge, .contentTooLarge, "the body is over \(limit) bytes")
        }
        let verdict = verifier.verify(Self.view(request, body: body), secrets: secrets, maxAgeSeconds: settings.maxAgeSeconds, now: api.clock())
        guard case .ticket(let ticketID, let signature, let detail) = verdict else { return try answer(verdict) }
        let fresh: Bool
        do {
            fresh = try await recorder.record(WebhookDelivery(ticketID: ticketID, signature: signature))
        } catch {
            // Not acknowledged: the 503 (FailureMiddleware) makes the helpdesk send it again.
            counters.count(.unavailable)
            throw error
        }
        guard fresh else { return refuse(.replayed, .conflict, "this delivery (same signature) was already received") }
        counters.count(.accepted)
        var metadata: Logger.Metadata = ["ticket": "\(ticketID)"]
        for (key, value) in detail { metadata[key] = "\(value)" }
        logger.debug("\(name) webhook: ticket changed", metadata: metadata)
        // Written by hand: this is the hot path, and the shape is fixed.
        return Response(status: HTTPResponse.Status(code: verifier.acceptedStatus), headers: [.contentType: "application/json; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(string: "{\n  \"accepted\" : true,\n  \"ticket_id\" : \(ticketID)\n}")))
    }

    func challenge(_ request: Request) throws -> Response {
        let secrets = settings.current.secrets(for: verifier.kind)
        guard !secrets.isEmpty else { return try notEnabled() }
        guard let verdict = verifier.challenge(Self.view(request), secrets: secrets) else { return try notEnabled() }
        return try answer(verdict)
    }

    /// Every verdict but a ticket, which `deliver` stores.
    private func answer(_ verdict: WebhookVerdict) throws -> Response {
        switch verdict {
        case .ticket:
            return try JSONBody.error(.internalServerError, "a ticket verdict must be stored, not answered")
        case .ignored(let reason):
            counters.count(.ignored)
            logger.info("\(name) webhook ignored: \(reason)")
            return try JSONBody.response(WebhookIgnored(reason: reason))
        case .challenge(let answer):
            counters.count(.challenge)
            // Exactly the answer, nothing around it.
            return Response(status: .ok, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: answer)))
        case .refused(let outcome, let reason):
            return refuse(outcome, Self.status(outcome), reason)
        }
    }

    static func status(_ outcome: WebhookOutcome) -> HTTPResponse.Status {
        switch outcome {
        case .badSignature, .challengeFailed: .unauthorized
        case .staleTimestamp: .forbidden
        case .tooLarge: .contentTooLarge
        case .replayed: .conflict
        case .unavailable: .serviceUnavailable
        case .malformed, .accepted, .ignored, .challenge: .badRequest
        }
    }

    private func notEnabled() throws -> Response {
        try JSONBody.error(.notFound, "the \(name) webhook is not enabled: set helpdesk.kind \(verifier.kind.rawValue) and helpdesk.webhook_secret")
    }

    private func refuse(_ outcome: WebhookOutcome, _ status: HTTPResponse.Status, _ message: String) -> Response {
        counters.count(outcome)
        logger.warning("\(name) webhook refused", metadata: ["outcome": "\(outcome.rawValue)", "status": "\(status.code)", "reason": "\(message)"])
        return (try? JSONBody.error(status, message)) ?? Response(status: status)
    }

    /// The request as the verifier reads it: headers by name, query items, the body.
    static func view(_ request: Request, body: [UInt8] = []) -> WebhookRequest {
        let headers = request.headers
        let query = request.uri.queryParameters
        let items = Dictionary(query.map { (String($0.key), String($0.value)) }, uniquingKeysWith: { first, _ in first })
        return WebhookRequest(headers: { name in HTTPField.Name(name).flatMap { headers[$0] } }, query: { items[$0] }, body: body)
    }
}

struct WebhookIgnored: Codable {
    var accepted = true
    var reason: String
}
