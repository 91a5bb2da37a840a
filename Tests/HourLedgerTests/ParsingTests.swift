import Foundation
import HourLedgerGLPI
import HourLedgerHelpdeskKit
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
