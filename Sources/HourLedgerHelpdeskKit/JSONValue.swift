import Foundation

/// Loosely typed JSON, because GLPI answers one column as a number, a string, a list or null depending on the data.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Parses a complete JSON document. A small dedicated parser: a full sync reads a million task objects, and
    /// decoding this enum through `Decodable` costs a thrown error per type probe.
    public static func parse(_ bytes: [UInt8]) throws -> JSONValue {
        try bytes.withUnsafeBufferPointer { buffer in
            var parser = JSONParser(bytes: buffer)
            let value = try parser.value()
            parser.skipWhitespace()
            guard parser.index == buffer.count else { throw JSONParseError(offset: parser.index, reason: "trailing characters") }
            return value
        }
    }

    /// Parses a JSON array of objects keeping, of each object, only the members named in `keys`: the others are
    /// checked as strictly as `parse` checks them, but not built. A GLPI task holds 22 fields and five links, of
    /// which a sync reads seven; building them all was most of a task page's parse. Elements that are not objects
    /// are kept whole. Nil when the document is not an array (an error object, say), for `parse` to read instead.
    public static func parseObjects(_ bytes: [UInt8], keeping keys: [String]) throws -> [JSONValue]? {
        let wanted = keys.map { Array($0.utf8) }
        return try bytes.withUnsafeBufferPointer { buffer in
            var parser = JSONParser(bytes: buffer)
            parser.skipWhitespace()
            guard parser.index < buffer.count, buffer[parser.index] == UInt8(ascii: "[") else { return nil }
            let items = try parser.array(keeping: wanted)
            parser.skipWhitespace()
            guard parser.index == buffer.count else { throw JSONParseError(offset: parser.index, reason: "trailing characters") }
            return items
        }
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    /// Integers arrive as numbers or as numeric strings ("3600").
    public var int: Int? {
        switch self {
        case .number(let n): return n.rounded() == n ? Int(exactly: n) : nil
        case .string(let s): return Int(s)
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    public var string: String? {
        switch self {
        case .string(let s): return s
        case .number(let n): return n.rounded() == n ? String(Int(n)) : String(n)
        default: return nil
        }
    }

    public var array: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    public var object: [String: JSONValue]? {
        if case .object(let o) = self { return o }
        return nil
    }

    /// A column that may hold one value or a list of values.
    public var list: [JSONValue] {
        switch self {
        case .null: return []
        case .array(let a): return a
        default: return [self]
        }
    }
}

/// GLPI stores text HTML-encoded and getItem returns it as stored (`Root entity &#62; Customer A`).
public enum HTMLEntities {
    public static func decode(_ text: String) -> String {
        guard text.utf8.contains(UInt8(ascii: "&")) else { return text }
        var bytes = Array(text.utf8)
        decode(&bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Decodes entities in place, on the UTF-8 bytes: a task list of a million contents is decoded without a
    /// Character or a Foundation call per task. An entity is `&name;` or `&#digits;` / `&#xhex;` within 12 bytes;
    /// anything else is kept as it is.
    static func decode(_ bytes: inout [UInt8]) {
        guard bytes.contains(UInt8(ascii: "&")) else { return }
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "&"), let semicolon = bytes[(index + 1)..<min(index + 12, bytes.count)].firstIndex(of: UInt8(ascii: ";")),
               let scalar = entity(bytes[(index + 1)..<semicolon]) {
                output.append(contentsOf: String(Character(scalar)).utf8)
                index = semicolon + 1
                continue
            }
            output.append(byte)
            index += 1
        }
        bytes = output
    }

    private static func entity(_ name: ArraySlice<UInt8>) -> Unicode.Scalar? {
        switch String(decoding: name, as: UTF8.self) {
        case "amp": return "&"
        case "lt": return "<"
        case "gt": return ">"
        case "quot": return "\""
        case "apos": return "'"
        case "nbsp": return "\u{00A0}"
        case let other:
            guard other.hasPrefix("#") else { return nil }
            let digits = other.dropFirst()
            let value = digits.hasPrefix("x") || digits.hasPrefix("X") ? UInt32(digits.dropFirst(), radix: 16) : UInt32(digits)
            return value.flatMap(Unicode.Scalar.init)
        }
    }

    /// Plain text from rich text as GLPI stores it: its HTML is itself HTML-encoded (`&#60;p&#62;R&#38;amp;D`), so
    /// the stored form is decoded to HTML, the tags are dropped, and the HTML's own entities are decoded.
    public static func plainText(_ html: String) -> String {
        var bytes = Array(html.utf8)
        decode(&bytes)
        var text: [UInt8] = []
        text.reserveCapacity(bytes.count)
        var inTag = false
        for byte in bytes {
            if byte == UInt8(ascii: "<") { inTag = true; continue }
            if byte == UInt8(ascii: ">") && inTag { inTag = false; continue }
            if !inTag { text.append(byte) }
        }
        decode(&text)
        let plain = String(decoding: text, as: UTF8.self)
        // Trimmed as Foundation's whitespacesAndNewlines would, looking only at the ends.
        let scalars = plain.unicodeScalars
        guard let first = scalars.firstIndex(where: { !CharacterSet.whitespacesAndNewlines.contains($0) }),
              let last = scalars.lastIndex(where: { !CharacterSet.whitespacesAndNewlines.contains($0) })
        else { return "" }
        return String(scalars[first...last])
    }
}

public struct JSONParseError: Error, CustomStringConvertible {
    public let offset: Int
    public let reason: String
    public var description: String { "invalid JSON at byte \(offset): \(reason)" }
}

private struct JSONParser {
    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0
    var depth = 0

    init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    func fail(_ reason: String) -> JSONParseError { JSONParseError(offset: index, reason: reason) }

    mutating func skipWhitespace() {
        while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x0D || bytes[index] == 0x09 { index += 1 }
    }

    mutating func value() throws -> JSONValue {
        skipWhitespace()
        guard index < bytes.count else { throw fail("unexpected end") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try object()
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        default: return .number(try number())
        }
    }

    mutating func literal(_ word: StaticString) throws {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw fail("unexpected end") }
        for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] { throw fail("invalid literal") }
        index += count
    }

    mutating func enter() throws {
        depth += 1
        if depth > 512 { throw fail("nested too deeply") }
    }

    /// An object's members in turn: the braces, colons, commas and depth are checked here once, for every way of
    /// reading an object. `key` reads each key from its opening quote, `value` the member's value.
    @inline(__always)
    mutating func members<Key>(key: (inout JSONParser) throws -> Key, value: (inout JSONParser, Key) throws -> Void) throws {
        try enter()
        defer { depth -= 1 }
        index += 1
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") { index += 1; return }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw fail("expected a key") }
            let name = try key(&self)
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw fail("expected ':'") }
            index += 1
            try value(&self, name)
            skipWhitespace()
            guard index < bytes.count else { throw fail("unexpected end") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "}") { index += 1; return }
            throw fail("expected ',' or '}'")
        }
    }

    /// An array's elements in turn, `element` reading each one; the brackets, commas and depth are checked here.
    @inline(__always)
    mutating func elements(_ element: (inout JSONParser) throws -> Void) throws {
        try enter()
        defer { depth -= 1 }
        index += 1
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") { index += 1; return }
        while true {
            try element(&self)
            skipWhitespace()
            guard index < bytes.count else { throw fail("unexpected end") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "]") { index += 1; return }
            throw fail("expected ',' or ']'")
        }
    }

    /// An object with every member, or with only those in `keys` (the others checked, not built). A key given twice
    /// keeps its last value.
    mutating func object(keeping keys: [[UInt8]]? = nil) throws -> JSONValue {
        var result: [String: JSONValue] = [:]
        try members(key: { parser -> String? in
            guard let keys else { return try parser.string() }
            return try parser.key(among: keys)
        }, value: { parser, key in
            guard let key else { return try parser.skipValue() }
            // Sized for a helpdesk item, or for the members kept, so it is seldom rehashed while it fills.
            if result.isEmpty { result.reserveCapacity(keys?.count ?? 16) }
            result[key] = try parser.value()
        })
        return .object(result)
    }

    /// The key at the opening quote if it is one of `keys`, else nil. The usual key, without escapes, is compared on
    /// its bytes and built only when kept; one with escapes is compared decoded.
    mutating func key(among keys: [[UInt8]]) throws -> String? {
        let start = index
        try skipString()
        let raw = UnsafeBufferPointer(rebasing: bytes[(start + 1)..<(index - 1)])
        guard raw.contains(UInt8(ascii: "\\")) else {
            return keys.contains { $0.elementsEqual(raw) } ? String(decoding: raw, as: UTF8.self) : nil
        }
        var again = self
        again.index = start
        let key = try again.string()
        return keys.contains { $0.elementsEqual(key.utf8) } ? key : nil
    }

    mutating func array() throws -> JSONValue {
        var result: [JSONValue] = []
        try elements { parser in result.append(try parser.value()) }
        return .array(result)
    }

    /// The top-level array of `JSONValue.parseObjects`: objects reduced to `keys`, anything else whole.
    mutating func array(keeping keys: [[UInt8]]) throws -> [JSONValue] {
        var result: [JSONValue] = []
        try elements { parser in
            parser.skipWhitespace()
            let isObject = parser.index < parser.bytes.count && parser.bytes[parser.index] == UInt8(ascii: "{")
            result.append(isObject ? try parser.object(keeping: keys) : try parser.value())
        }
        return result
    }

    /// Checks one value as `value()` would, without building it.
    mutating func skipValue() throws {
        skipWhitespace()
        guard index < bytes.count else { throw fail("unexpected end") }
        switch bytes[index] {
        case UInt8(ascii: "{"): try members(key: { try $0.skipString() }, value: { parser, _ in try parser.skipValue() })
        case UInt8(ascii: "["): try elements { try $0.skipValue() }
        case UInt8(ascii: "\""): try skipString()
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        default: _ = try number()
        }
    }

    /// A string as `string()` reads it (the same escapes accepted, the same refused), not built.
    mutating func skipString() throws {
        index += 1
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "\""):
                index += 1
                return
            case UInt8(ascii: "\\"):
                index += 1
                guard index < bytes.count else { throw fail("unterminated escape") }
                let escaped = bytes[index]
                index += 1
                switch escaped {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"), UInt8(ascii: "n"),
                     UInt8(ascii: "r"), UInt8(ascii: "t"):
                    continue
                case UInt8(ascii: "u"):
                    _ = try hex4()
                default:
                    throw fail("invalid escape")
                }
            default:
                index += 1
            }
        }
        throw fail("unterminated string")
    }

    mutating func string() throws -> String {
        index += 1
        let start = index
        // Fast path: no escapes.
        while index < bytes.count, bytes[index] != UInt8(ascii: "\""), bytes[index] != UInt8(ascii: "\\") { index += 1 }
        guard index < bytes.count else { throw fail("unterminated string") }
        if bytes[index] == UInt8(ascii: "\"") {
            let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
            index += 1
            return text
        }
        var scalars = Array(bytes[start..<index])
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                return String(decoding: scalars, as: UTF8.self)
            }
            if byte != UInt8(ascii: "\\") {
                scalars.append(byte)
                index += 1
                continue
            }
            index += 1
            guard index < bytes.count else { throw fail("unterminated escape") }
            let escaped = bytes[index]
            index += 1
            switch escaped {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): scalars.append(escaped)
            case UInt8(ascii: "b"): scalars.append(0x08)
            case UInt8(ascii: "f"): scalars.append(0x0C)
            case UInt8(ascii: "n"): scalars.append(0x0A)
            case UInt8(ascii: "r"): scalars.append(0x0D)
            case UInt8(ascii: "t"): scalars.append(0x09)
            case UInt8(ascii: "u"):
                var code = try hex4()
                if (0xD800..<0xDC00).contains(code), index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") {
                    index += 2
                    let low = try hex4()
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                }
                scalars.append(contentsOf: Array(String(Unicode.Scalar(code).map(Character.init) ?? "\u{FFFD}").utf8))
            default:
                throw fail("invalid escape")
            }
        }
        throw fail("unterminated string")
    }

    mutating func hex4() throws -> UInt32 {
        guard index + 4 <= bytes.count else { throw fail("short \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw fail("invalid \\u escape")
            }
            value = value * 16 + digit
            index += 1
        }
        return value
    }

    mutating func number() throws -> Double {
        let start = index
        var integer: Int64 = 0
        var negative = false
        var simple = true
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") { negative = true; index += 1 }
        let digitsStart = index
        while index < bytes.count {
            let byte = bytes[index]
            if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                if integer < 100_000_000_000_000 { integer = integer * 10 + Int64(byte - UInt8(ascii: "0")) } else { simple = false }
                index += 1
            } else if byte == UInt8(ascii: ".") || byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-") {
                simple = false
                index += 1
            } else {
                break
            }
        }
        guard index > digitsStart else { throw fail("unexpected character") }
        if simple { return Double(negative ? -integer : integer) }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        guard let value = Double(text) else { throw fail("invalid number '\(text)'") }
        return value
    }
}
