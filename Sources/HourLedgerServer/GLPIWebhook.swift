import CoreMetrics
import Foundation
import HourLedgerGLPI
import HourLedgerCore
import HourLedgerUseCases
import HTTPTypes
import Hummingbird
import Logging

/// `POST /webhooks/glpi` and its CRA challenge `GET /webhooks/glpi?crc_token=`.
struct GLPIWebhookEndpoint: Sendable {
    let api: LedgerAPIContext
    let settings: WebhookSettingsBox
    let recorder: DeliveryRecorder
    let counters: WebhookOutcomeCounters
    let logger: Logger

    init(api: LedgerAPIContext, settings: WebhookSettingsBox, recorder: DeliveryRecorder, metrics: any MetricsFactory, logger: Logger) {
        self.api = api
        self.settings = settings
        self.recorder = recorder
        self.counters = WebhookOutcomeCounters(helpdesk: "glpi", factory: metrics)
        self.logger = logger
    }

    static let signatureHeader = HTTPField.Name("X-GLPI-signature")!
    static let timestampHeader = HTTPField.Name("X-GLPI-timestamp")!

    func deliver(_ request: Request) async throws -> Response {
        let settings = settings.current
        let secrets = settings.secrets(for: .glpi)
        guard !secrets.isEmpty else { return try Self.notEnabled() }
        // The body is read whatever its Content-Type: GLPI sends none.
        let body: [UInt8]
        do {
            body = Array(try await request.body.collect(upTo: settings.maxBodyBytes).readableBytesView)
        } catch {
            return refuse(.tooLarge, .contentTooLarge, "the body is over \(settings.maxBodyBytes) bytes")
        }
        guard let signature = request.headers[Self.signatureHeader], let timestamp = request.headers[Self.timestampHeader] else {
            return refuse(.badSignature, .unauthorized, "missing X-GLPI-signature or X-GLPI-timestamp")
        }
        guard GLPISignature.matchingSecret(body: body, timestamp: timestamp, signature: signature, secrets: secrets) != nil else {
            return refuse(.badSignature, .unauthorized, "X-GLPI-signature does not match the body and timestamp for any configured secret")
        }
        let now = api.clock()
        guard timestamp.utf8.count <= 12, timestamp.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let seconds = Int(timestamp),
              abs(Int(now.timeIntervalSince1970) - seconds) <= settings.maxAgeSeconds else {
            return refuse(.staleTimestamp, .forbidden,
                          "X-GLPI-timestamp \(timestamp.prefix(20)) is more than \(settings.maxAgeSeconds) s away from this server's clock")
        }
        let payload: GLPIWebhookPayload
        switch GLPIWebhookPayload.parse(body) {
        case .success(let parsed): payload = parsed
        case .failure(let error): return refuse(.malformed, .badRequest, error.description)
        }
        guard let ticketID = payload.ticketID else {
            counters.count(.ignored)
            logger.info("GLPI webhook ignored: not a ticket or a ticket task", metadata: ["event": "\(payload.event)"])
            return try JSONBody.response(WebhookIgnored(reason: "not a Ticket or TicketTask webhook: nothing to re-read"))
        }
        let fresh: Bool
        do {
            fresh = try await recorder.record(WebhookDelivery(ticketID: ticketID, signature: signature))
        } catch {
            // Not acknowledged: the 503 (FailureMiddleware) makes GLPI send it again.
            counters.count(.unavailable)
            throw error
        }
        guard fresh else {
            return refuse(.replayed, .conflict, "this delivery (same signature) was already received")
        }
        counters.count(.accepted)
        logger.debug("GLPI webhook: ticket changed", metadata: ["ticket": "\(ticketID)", "event": "\(payload.event)"])
        // Written by hand: this is the hot path, and the shape is fixed.
        return Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(string: "{\n  \"accepted\" : true,\n  \"ticket_id\" : \(ticketID)\n}")))
    }

    /// Answers with exactly the 64 hex characters GLPI compares, nothing around them.
    func challenge(_ request: Request) throws -> Response {
        let secrets = settings.current.secrets(for: .glpi)
        guard !secrets.isEmpty else { return try Self.notEnabled() }
        guard let token = request.uri.queryParameters.get("crc_token") else {
            return try JSONBody.error(.badRequest, "GET is only for GLPI's challenge: ?crc_token= is missing")
        }
        guard let answer = GLPISignature.challengeAnswer(token: token, secrets: secrets) else {
            return refuse(.challengeFailed, .unauthorized, "crc_token was not made with any configured secret")
        }
        counters.count(.challenge)
        return Response(status: .ok, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: answer)))
    }

    static func notEnabled() throws -> Response {
        try JSONBody.error(.notFound, "the GLPI webhook is not enabled: set helpdesk.kind glpi and helpdesk.webhook_secret")
    }

    private func refuse(_ outcome: WebhookOutcome, _ status: HTTPResponse.Status, _ message: String) -> Response {
        counters.count(outcome)
        logger.warning("GLPI webhook refused", metadata: ["outcome": "\(outcome.rawValue)", "status": "\(status.code)", "reason": "\(message)"])
        return (try? JSONBody.error(status, message)) ?? Response(status: status)
    }
}

struct WebhookIgnored: Codable {
    var accepted = true
    var reason: String
}
