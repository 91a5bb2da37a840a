import Foundation
@testable import HourLedgerGLPI
import HourLedgerHelpdeskKit
import HourLedgerHTTPClient
import HourLedgerITop
import HourLedgerUseCases
import TestKit
import Testing

@Suite struct ParsingTests {
    @Test func jsonParserReadsWhatJSONSerializationReads() throws {
        let text = #"{"a":[1,-2.5,3e2,true,false,null],"s":"q\"\\\/\n\u00e9\ud83d\ude00","o":{},"l":[],"big":12345678901234567890}"#
        let value = try JSONValue.parse(Array(text.utf8))
        #expect(value["a"] == .array([.number(1), .number(-2.5), .number(300), .bool(true), .bool(false), .null]))
        #expect(value["s"]?.string == "q\"\\/\né😀")
        #expect(value["o"] == .object([:]) && value["l"] == .array([]))
        #expect(value["big"] == .number(12345678901234567890))
        #expect(try JSONValue.parse(Array("true".utf8)) == .bool(true))
        #expect(try JSONValue.parse(Array(#"["ERROR_GLPI_UPDATE",null]"#.utf8)).array?.first?.string == "ERROR_GLPI_UPDATE")
    }

    @Test(arguments: ["", "{", "[1,]", "{\"a\" 1}", "tru", "\"open", "[1] x", "{\"a\":1,}", "\"\\x\""])
    func malformedJSONIsRefused(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSONValue.parse(Array(text.utf8)) }
    }

    @Test func deeplyNestedJSONIsRefusedNotACrash() {
        let text = String(repeating: "[", count: 100_000)
        #expect(throws: JSONParseError.self) { try JSONValue.parse(Array(text.utf8)) }
    }

    @Test func htmlEntitiesAsGLPIStoresThem() {
        #expect(HTMLEntities.decode("Root entity &#62; Customer A") == "Root entity > Customer A")
        #expect(HTMLEntities.decode("R&D &amp; Ops &#x27;x&#39; &unknown; & done") == "R&D & Ops 'x' &unknown; & done")
        #expect(HTMLEntities.plainText("&#60;p&#62;Reinstalled &#60;b&#62;mail&#60;/b&#62; client&#60;/p&#62;") == "Reinstalled mail client")
        #expect(HTMLEntities.plainText("\u{00A0} &#60;p&#62;Zürich &#38;amp; l'Élan 😀&#60;/p&#62;\n") == "Zürich & l'Élan 😀")
        #expect(HTMLEntities.decode("&#xD800; &#1114112; &#0065;") == "&#xD800; &#1114112; A")
    }

    /// The byte-level decoder gives what the first, scalar-by-scalar one gave, on random mixes of entities, tags,
    /// accents, emoji and broken entities.
    @Test func htmlEntitiesMatchTheReferenceDecoderOnRandomText() {
        let pieces = ["&", "&amp;", "&#38;", "&#60;", "&#62;", "&lt;", "&gt;", "&quot;", "&apos;", "&nbsp;", "&#x27;", "&#xD800;", "&#",
                      ";", "<", ">", "<p>", "</p>", "a", "Z", " ", "\n", "é", "Ü", "😀", "\u{00A0}", "&verylongentityname;", "&#39", "x;"]
        var random = SplitMix64(seed: 2026_12_02)
        for _ in 0..<3000 {
            let text = (0..<Int.random(in: 0...24, using: &random)).map { _ in pieces.randomElement(using: &random)! }.joined()
            #expect(HTMLEntities.decode(text) == ReferenceEntities.decode(text), "\(text.debugDescription)")
            #expect(HTMLEntities.plainText(text) == ReferenceEntities.plainText(text), "\(text.debugDescription)")
        }
    }
}

/// The decoder as it was before it worked on bytes, kept as the reference the fast one is held to.
enum ReferenceEntities {
    static func decode(_ text: String) -> String {
        guard text.utf8.contains(UInt8(ascii: "&")) else { return text }
        var result = String.UnicodeScalarView()
        let scalars = Array(text.unicodeScalars)
        var index = 0
        while index < scalars.count {
            let scalar = scalars[index]
            if scalar == "&", let semicolon = scalars[index..<min(index + 12, scalars.count)].firstIndex(of: ";") {
                var entity = String.UnicodeScalarView()
                entity.append(contentsOf: scalars[(index + 1)..<semicolon])
                if let decoded = decodeEntity(Substring(String(entity))) {
                    result.append(contentsOf: decoded.unicodeScalars)
                    index = semicolon + 1
                    continue
                }
            }
            result.append(scalar)
            index += 1
        }
        return String(result)
    }

    static func decodeEntity(_ entity: Substring) -> Character? {
        switch entity {
        case "amp": return "&"
        case "lt": return "<"
        case "gt": return ">"
        case "quot": return "\""
        case "apos": return "'"
        case "nbsp": return "\u{00A0}"
        default:
            guard entity.hasPrefix("#") else { return nil }
            let digits = entity.dropFirst()
            let value = digits.hasPrefix("x") || digits.hasPrefix("X") ? UInt32(digits.dropFirst(), radix: 16) : UInt32(digits)
            return value.flatMap(Unicode.Scalar.init).map(Character.init)
        }
    }

    static func plainText(_ html: String) -> String {
        var text = String.UnicodeScalarView()
        var inTag = false
        for scalar in decode(html).unicodeScalars {
            if scalar == "<" { inTag = true; continue }
            if scalar == ">" && inTag { inTag = false; continue }
            if !inTag { text.append(scalar) }
        }
        return decode(String(text)).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// `JSONValue.parseObjects` builds only the members a page's reader keeps: it must keep exactly what a full parse
/// followed by dropping the other members keeps, and refuse exactly what a full parse refuses.
@Suite struct LeanParsingTests {
    static func filtered(_ value: JSONValue, _ keys: Set<String>) -> JSONValue {
        guard case .array(let items) = value else { return value }
        return .array(items.map { item in
            guard case .object(let members) = item else { return item }
            return .object(members.filter { keys.contains($0.key) })
        })
    }

    /// Every recorded GLPI answer that is a list: the task fields kept are the full parse's, to the byte.
    @Test func everyRecordedListKeepsWhatTheFullParseKeeps() throws {
        var lists = 0
        for file in try Fixtures.glpiFiles() where file.pathExtension == "json" {
            let fixture = try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as! [String: Any]
            guard fixture["response"] != nil else { continue }
            let body = try FixtureReplayTests.response(fixture).body
            let full = try JSONValue.parse(body)
            let lean = try JSONValue.parseObjects(body, keeping: ["id", "tickets_id", "actiontime", "date", "users_id_tech", "is_private", "content"])
            guard case .array = full else {
                #expect(lean == nil, "\(file.lastPathComponent)")
                continue
            }
            lists += 1
            #expect(lean.map(JSONValue.array) == Self.filtered(full, ["id", "tickets_id", "actiontime", "date", "users_id_tech", "is_private", "content"]),
                    "\(file.lastPathComponent)")
        }
        #expect(lists >= 5)
    }

    /// Random pages of objects with nested values, escapes in keys and values, duplicate keys and stray elements:
    /// the lean parse keeps what the full parse keeps; the same pages cut short or broken are refused by both.
    @Test func randomPagesKeepWhatTheFullParseKeepsAndBrokenOnesAreRefusedByBoth() throws {
        var random = SplitMix64(seed: 2026_12_04)
        let keys = ["id", "content", "c\\u006fntent", "date", "links", "x", "tickets_id", "é"]
        let scalars = ["1", "-2.5", "3e2", "true", "false", "null", "\"a\"", "\"q\\\"\\\\\\/\\n\\u00e9\\ud83d\\ude00\"", "\"&#60;p&#62;\"", "12345678901234567890"]
        func value(_ depth: Int) -> String {
            switch Int.random(in: 0..<(depth > 2 ? 1 : 4), using: &random) {
            case 1: return "[" + (0..<Int.random(in: 0...3, using: &random)).map { _ in value(depth + 1) }.joined(separator: ",") + "]"
            case 2: return "{" + (0..<Int.random(in: 0...3, using: &random)).map { _ in "\"\(keys.randomElement(using: &random)!)\": \(value(depth + 1))" }
                .joined(separator: ", ") + "}"
            default: return scalars.randomElement(using: &random)!
            }
        }
        let kept: Set<String> = ["id", "content", "tickets_id", "é"]
        for _ in 0..<2000 {
            let items = (0..<Int.random(in: 0...5, using: &random)).map { _ in
                Int.random(in: 0..<6, using: &random) == 0 ? value(1)
                    : "{" + (0..<Int.random(in: 0...6, using: &random)).map { _ in "\"\(keys.randomElement(using: &random)!)\" : \(value(1))" }
                        .joined(separator: ",") + "}"
            }
            let text = " [" + items.joined(separator: ", ") + "] "
            let bytes = Array(text.utf8)
            #expect(try JSONValue.parseObjects(bytes, keeping: Array(kept)).map(JSONValue.array) == Self.filtered(try JSONValue.parse(bytes), kept), "\(text)")
            // Broken: cut anywhere inside, or one byte changed to a character JSON does not allow there.
            let cut = Array(bytes[0..<Int.random(in: 1..<bytes.count, using: &random)])
            var changed = bytes
            changed[Int.random(in: 0..<bytes.count, using: &random)] = [UInt8(ascii: "}"), UInt8(ascii: ","), UInt8(ascii: "\\"), UInt8(ascii: "x")]
                .randomElement(using: &random)!
            for broken in [cut, changed] {
                let full = Result { try JSONValue.parse(broken) }
                let lean = Result { try JSONValue.parseObjects(broken, keeping: Array(kept)) }
                switch (full, lean) {
                case (.failure, .failure): break
                case (.success(let value), .success(let leanValue)):
                    #expect(leanValue.map(JSONValue.array) == Self.filtered(value, kept), "\(String(decoding: broken, as: UTF8.self))")
                case (.success(let value), .failure):
                    // Not an array at all (a cut that leaves a number, say) is nil, never an error, for parse to read.
                    Issue.record("lean refused what the full parse read as \(value): \(String(decoding: broken, as: UTF8.self))")
                case (.failure, .success(let leanValue)):
                    #expect(leanValue == nil && broken.first(where: { $0 != 0x20 }) != UInt8(ascii: "["),
                            "lean read what the full parse refused: \(String(decoding: broken, as: UTF8.self))")
                }
            }
        }
    }

    /// A task page read lean gives the same tasks as the same page read whole, on the recorded page and on the
    /// fake's, encoded text and all.
    @Test func aTaskPageReadsTheSameTasksAsAWholeParse() throws {
        for name in ["getItems_TicketTask_paged", "getItems_TicketTask_sort_date_mod_desc"] {
            let fixture = try JSONSerialization.jsonObject(with: Data(contentsOf: Fixtures.root.appendingPathComponent("glpi/\(name).json"))) as! [String: Any]
            let response = try FixtureReplayTests.response(fixture)
            let page = try GLPIConnector.taskPage(response, timeZone: TimeZone(identifier: "Europe/Paris")!)
            let whole = try #require(try JSONValue.parse(response.body).array).compactMap { item in
                try item["tickets_id"]?.int.map { try GLPIConnector.task(from: item, ticketID: $0, timeZone: TimeZone(identifier: "Europe/Paris")!) }
            }
            #expect(!page.tasks.isEmpty && page.tasks == whole, "\(name)")
        }
        // A page cut short is a malformed answer, said as for any other body that is not JSON.
        let cut = HTTPResponse(status: 206, headers: [], body: Array(#"[{"id":1,"tickets_id":1,"content":"&#60;p"#.utf8))
        #expect {
            try GLPIConnector.taskPage(cut, timeZone: TimeZone(identifier: "Europe/Paris")!)
        } throws: { error in
            (error as? HelpdeskError).map { ($0.kind, $0.detail) == (.malformedResponse, "HTTP 206 with a body that is not JSON") } ?? false
        }
    }
}
