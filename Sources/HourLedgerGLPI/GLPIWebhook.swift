import Crypto
import Foundation
import HourLedgerCore
import HourLedgerHelpdeskKit
import HourLedgerUseCases

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
        where ConstantTime.equal(sign(body: body, timestamp: timestamp, secret: secret).utf8, signature.utf8) {
            found = index
        }
        return found
    }

    /// GLPI's CRA challenge: the token is `hmac("validate_cra_challenge")`, and the answer `hmac(token)`, both with the
    /// webhook's secret. Returns the answer for the secret the token was made with, or nil for none of ours.
    public static func challengeAnswer(token: String, secrets: [String]) -> String? {
        var answer: String?
        for secret in secrets where ConstantTime.equal(hmac("validate_cra_challenge", secret: secret).utf8, token.utf8) {
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

/// GLPI 11's webhooks: an HMAC over the body and the timestamp, a freshness window, a JSON payload naming the item,
/// and the CRA challenge on `GET ?crc_token=`.
public struct GLPIWebhookVerifier: WebhookVerifier {
    public static let signatureHeader = "X-GLPI-signature"
    public static let timestampHeader = "X-GLPI-timestamp"

    public init() {}

    public var kind: HelpdeskKind { .glpi }

    /// GLPI counts a delivery as done on 200.
    public var acceptedStatus: Int { 200 }

    public func maxBodyBytes(configured: Int) -> Int { configured }

    /// GLPI signs the body, so everything is checked once it is read.
    public func admit(_ request: WebhookRequest, secrets: [String]) -> WebhookVerdict? { nil }

    public func verify(_ request: WebhookRequest, secrets: [String], maxAgeSeconds: Int, now: Date) -> WebhookVerdict {
        guard let signature = request.header(Self.signatureHeader), let timestamp = request.header(Self.timestampHeader) else {
            return .refused(.badSignature, reason: "missing X-GLPI-signature or X-GLPI-timestamp")
        }
        guard GLPISignature.matchingSecret(body: request.body, timestamp: timestamp, signature: signature, secrets: secrets) != nil else {
            return .refused(.badSignature, reason: "X-GLPI-signature does not match the body and timestamp for any configured secret")
        }
        guard timestamp.utf8.count <= 12, timestamp.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let seconds = Int(timestamp),
              abs(Int(now.timeIntervalSince1970) - seconds) <= maxAgeSeconds else {
            return .refused(.staleTimestamp,
                            reason: "X-GLPI-timestamp \(timestamp.prefix(20)) is more than \(maxAgeSeconds) s away from this server's clock")
        }
        switch GLPIWebhookPayload.parse(request.body) {
        case .failure(let error):
            return .refused(.malformed, reason: error.description)
        case .success(let payload):
            guard let ticketID = payload.ticketID else { return .ignored(reason: "not a Ticket or TicketTask webhook: nothing to re-read") }
            return .ticket(ticketID, signature: signature, detail: ["event": payload.event])
        }
    }

    public var makesChallenge: Bool { true }

    /// Answers with exactly the 64 hex characters GLPI compares.
    public func challenge(_ request: WebhookRequest, secrets: [String]) -> WebhookVerdict? {
        guard let token = request.query("crc_token") else {
            return .refused(.malformed, reason: "GET is only for GLPI's challenge: ?crc_token= is missing")
        }
        guard let answer = GLPISignature.challengeAnswer(token: token, secrets: secrets) else {
            return .refused(.challengeFailed, reason: "crc_token was not made with any configured secret")
        }
        return .challenge(answer: answer)
    }
}
