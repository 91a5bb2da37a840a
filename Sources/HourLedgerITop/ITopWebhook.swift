import Foundation
import HourLedgerCore
import HourLedgerHelpdeskKit
import HourLedgerUseCases

/// What HourLedger takes from an iTop webhook: the ticket id, and the class for the log.
///
/// iTop pastes placeholders into the JSON template as raw text, so a title holding a quote yields invalid JSON. When
/// the body does not parse, the `"id"` member is found by scanning instead.
public struct ITopWebhookPayload: Sendable, Equatable {
    public var ticketID: Int
    public var itemClass: String?
    public var wasValidJSON: Bool

    public init(ticketID: Int, itemClass: String?, wasValidJSON: Bool) {
        self.ticketID = ticketID
        self.itemClass = itemClass
        self.wasValidJSON = wasValidJSON
    }

    public init?(_ bytes: [UInt8]) {
        if let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] {
            let id = (object["id"] as? String).flatMap { Int($0) } ?? (object["id"] as? Int)
            guard let id, id > 0 else { return nil }
            ticketID = id
            itemClass = object["class"] as? String
            wasValidJSON = true
            return
        }
        let text = String(decoding: bytes, as: UTF8.self)
        guard let id = Self.scan(text, member: "id").flatMap({ Int($0) }), id > 0 else { return nil }
        ticketID = id
        itemClass = Self.scan(text, member: "class")
        wasValidJSON = false
    }

    /// The value of `"member": "value"` or `"member": 123` at the start of a line or after `{`/`,`, found without a
    /// JSON parser. Only letters, digits and `_` are taken, so a broken neighbour cannot leak into it.
    static func scan(_ text: String, member: String) -> String? {
        // iTop's template has one member per line: a member opening a line wins over one that follows a comma,
        // which may sit inside a broken title.
        scan(text, member: member, after: "{\n\r") ?? scan(text, member: member, after: "{,\n\r")
    }

    private static func scan(_ text: String, member: String, after openers: String) -> String? {
        var search = text.startIndex
        let needle = "\"\(member)\""
        while let found = text.range(of: needle, range: search..<text.endIndex) {
            search = found.upperBound
            var before = found.lowerBound
            while before > text.startIndex {
                let previous = text.index(before: before)
                if text[previous] == " " || text[previous] == "\t" { before = previous } else { break }
            }
            guard before == text.startIndex || openers.contains(text[text.index(before: before)]) else { continue }
            var rest = text[found.upperBound...].drop { $0 == " " || $0 == "\t" }
            guard rest.first == ":" else { continue }
            rest = rest.dropFirst().drop { $0 == " " || $0 == "\t" }
            if rest.first == "\"" { rest = rest.dropFirst() }
            let value = rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" }
            if !value.isEmpty { return String(value) }
        }
        return nil
    }
}

extension HelpdeskTerms {
    /// iTop's words for what rules test.
    public static let itop = HelpdeskTerms(entity: "org", group: "team", category: "subcategory", query: "OQL rule", entities: "organizations")
}

/// iTop's webhooks, as its "Webhook" action sends them: a shared token in a header or the query (iTop cannot sign),
/// and a small JSON template naming the ticket.
public struct ITopWebhookVerifier: WebhookVerifier {
    public static let tokenHeader = "X-HourLedger-Token"
    /// iTop's payloads are a few hundred bytes; anything near this is not one.
    public static let maxBodyBytes = 64 * 1024

    public init() {}

    public var kind: HelpdeskKind { .itop }

    /// iTop's webhook action takes any 2xx; 202 says the change is queued for a re-read.
    public var acceptedStatus: Int { 202 }

    public func maxBodyBytes(configured: Int) -> Int { Self.maxBodyBytes }

    /// The token is checked before the body is read. Every token is compared, so timing does not tell which one is close.
    public func admit(_ request: WebhookRequest, secrets: [String]) -> WebhookVerdict? {
        let offered = request.header(Self.tokenHeader) ?? request.query("token") ?? ""
        guard secrets.map({ ConstantTime.equal(offered.utf8, $0.utf8) }).contains(true) else {
            return .refused(.badSignature, reason: "wrong or missing token (X-HourLedger-Token header or ?token=)")
        }
        return nil
    }

    public func verify(_ request: WebhookRequest, secrets: [String], maxAgeSeconds: Int, now: Date) -> WebhookVerdict {
        guard let hint = ITopWebhookPayload(request.body) else {
            return .refused(.malformed, reason: "no ticket id in the payload: the template needs \"id\": \"$this->id$\"")
        }
        return .ticket(hint.ticketID, signature: nil, detail: ["class": hint.itemClass ?? "-", "strict_json": "\(hint.wasValidJSON)"])
    }

    /// iTop makes no endpoint check.
    public var makesChallenge: Bool { false }

    public func challenge(_ request: WebhookRequest, secrets: [String]) -> WebhookVerdict? { nil }
}
