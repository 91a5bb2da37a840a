import Crypto
import Foundation
import HourLedgerHelpdeskKit

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
