import Foundation
import HourLedgerGLPI
import HourLedgerHelpdeskKit
import HourLedgerITop
import HourLedgerUseCases
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
    }
}
