import Crypto
import CoreMetrics
import Foundation
import HourLedgerHelpdesk
import HourLedgerStore
import HTTPTypes
import Hummingbird
import Logging

/// GLPI 11's webhook signature: lowercase hex HMAC-SHA256, keyed with the webhook's secret as shown in GLPI's UI.
public enum GLPISignature {
    /// The signature GLPI sends in `X-GLPI-signature`: over the raw body bytes followed by the `X-GLPI-timestamp` text.
    public static func sign(body: some Sequence<UInt8>, timestamp: String, secret: String) -> String {
        var hmac = HMAC<SHA256>(key: SymmetricKey(data: Array(secret.utf8)))
        hmac.update(data: Array(body))
        hmac.update(data: Array(timestamp.utf8))
        return hex(Array(hmac.finalize()))
    }

    /// `hex(HMAC(secret, message))`: GLPI's `hash_hmac('sha256', message, secret)`.
    public static func hmac(_ message: String, secret: String) -> String {
        hex(Array(HMAC<SHA256>.authenticationCode(for: Array(message.utf8), using: SymmetricKey(data: Array(secret.utf8)))))
    }

    /// The index of the secret that produced `signature`, or nil. Every secret is tried, so the time taken does not
    /// depend on which one matched.
    public static func matchingSecret(body: [UInt8], timestamp: String, signature: String, secrets: [String]) -> Int? {
        var found: Int?
        for (index, secret) in secrets.enumerated()
        where WebhookRoutes.constantTimeEqual(sign(body: body, timestamp: timestamp, secret: secret).utf8, signature.utf8) {
            found = index
        }
        return found
    }

    /// GLPI's CRA challenge: the token is `hmac("validate_cra_challenge")`, and the answer `hmac(token)`, both with the
    /// webhook's secret. Returns the answer for the secret the token was made with, or nil for none of ours.
    public static func challengeAnswer(token: String, secrets: [String]) -> String? {
        var answer: String?
        for secret in secrets where WebhookRoutes.constantTimeEqual(hmac("validate_cra_challenge", secret: secret).utf8, token.utf8) {
            answer = hmac(token, secret: secret)
        }
        return answer
    }

    private static let digits = Array("0123456789abcdef".utf8)

    public static func hex(_ bytes: [UInt8]) -> String {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// The ticket a GLPI 11 webhook is about. Only the ids are read: a Ticket's own id, or a TicketTask's `tickets_id`.
/// The rest of the payload is a snapshot GLPI may take before its own update finishes, so the ticket is re-read.
public struct GLPIWebhookPayload: Sendable, Equatable {
    public enum Item: Sendable, Equatable {
        case ticket(id: Int)
        case task(id: Int, ticketID: Int)
        /// Signed and well formed, but not a ticket or a ticket task (an asset, a contract...): nothing to re-read.
        case other(id: Int)
    }

    public var item: Item
    public var event: String

    public var ticketID: Int? {
        switch item {
        case .ticket(let id), .task(_, let id): id
        case .other: nil
        }
    }

    /// Parses the body, or says in one line what is wrong with it. Ids must be JSON integers, as GLPI sends them.
    public static func parse(_ bytes: [UInt8]) -> Result<GLPIWebhookPayload, PayloadError> {
        guard let root = try? JSONValue.parse(bytes), root.object != nil else {
            return .failure(PayloadError(description: "the body is not JSON (an object with item and event)"))
        }
        guard let fields = root["item"]?.object else { return .failure(PayloadError(description: "no item object in the payload")) }
        guard let id = integer(fields["id"]) else {
            return .failure(PayloadError(description: fields["id"] == nil ? "no item.id in the payload" : "item.id must be an integer"))
        }
        guard let event = root["event"]?.string else { return .failure(PayloadError(description: "no event in the payload")) }
        guard id > 0 else { return .failure(PayloadError(description: "item.id must be positive")) }
        let item: Item
        if let ticketField = fields["tickets_id"] {
            guard let ticketID = integer(ticketField), ticketID > 0 else {
                return .failure(PayloadError(description: "item.tickets_id must be a positive integer"))
            }
            item = .task(id: id, ticketID: ticketID)
        } else if integer(fields["type"]) != nil, fields["status"]?.object != nil, fields["entity"]?.object != nil {
            item = .ticket(id: id)
        } else {
            item = .other(id: id)
        }
        return .success(GLPIWebhookPayload(item: item, event: event))
    }

    private static func integer(_ value: JSONValue?) -> Int? {
        guard case .number(let number)? = value else { return nil }
        return number.rounded() == number ? Int(exactly: number) : nil
    }

    public struct PayloadError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }
}

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
        let secrets = settings.secrets(for: "glpi")
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
        let secrets = settings.current.secrets(for: "glpi")
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
