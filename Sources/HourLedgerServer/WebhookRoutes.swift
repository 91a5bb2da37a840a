import Foundation
import HourLedgerStore
import HourLedgerSync
import HTTPTypes
import Hummingbird
import Logging

/// Webhooks from the helpdesk. Each is only a hint that a ticket changed: the ticket id is stored durably, and the
/// next sync re-reads the ticket through the API. Nothing in the payload is trusted or applied.
public enum WebhookRoutes {
    /// iTop's webhook payloads are small (a few hundred bytes); anything near this is not one.
    public static let maxBodyBytes = 64 * 1024

    public static func register<Context: RequestContext>(on router: Router<Context>, context api: LedgerAPIContext, itopSecret: String?,
                                                         logger: Logger = Logger(label: "hourledger.webhooks")) {
        router.post("/webhooks/itop") { request, _ -> Response in
            guard let itopSecret else {
                return try JSONBody.error(.notFound, "the iTop webhook is not enabled: set helpdesk.webhook_secret")
            }
            let offered = request.headers[HTTPField.Name("X-HourLedger-Token")!] ?? request.uri.queryParameters.get("token") ?? ""
            guard constantTimeEqual(Array(offered.utf8), Array(itopSecret.utf8)) else {
                logger.warning("iTop webhook refused: wrong or missing token")
                return try JSONBody.error(.unauthorized, "wrong or missing token (X-HourLedger-Token header or ?token=)")
            }
            let body: ByteBuffer
            do {
                body = try await request.body.collect(upTo: maxBodyBytes)
            } catch {
                return try JSONBody.error(.contentTooLarge, "the body is over \(maxBodyBytes) bytes")
            }
            guard let hint = ITopWebhookPayload(Array(body.readableBytesView)) else {
                logger.warning("iTop webhook without a ticket id", metadata: ["bytes": "\(body.readableBytes)"])
                return try JSONBody.error(.badRequest, "no ticket id in the payload: the template needs \"id\": \"$this->id$\"")
            }
            try await api.store.addHints([hint.ticketID], now: api.clock())
            await api.engine.hintArrived()
            logger.info("iTop webhook: ticket changed", metadata: ["ticket": "\(hint.ticketID)", "class": "\(hint.itemClass ?? "-")",
                                                                   "strict_json": "\(hint.wasValidJSON)"])
            return try JSONBody.response(WebhookAccepted(ticketID: hint.ticketID), status: .accepted)
        }
    }

    /// Compares every byte whatever the first difference, so timing does not tell how much of a guess was right.
    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
        for index in 0..<max(a.count, b.count) {
            difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
        }
        return difference == 0 && !b.isEmpty
    }
}

struct WebhookAccepted: Codable {
    var accepted = true
    var ticketID: Int

    enum CodingKeys: String, CodingKey {
        case accepted
        case ticketID = "ticket_id"
    }
}

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
