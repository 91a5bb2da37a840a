import Foundation

/// A contract rule given as GLPI search criteria (`match: { glpi_criteria: [...] }`), evaluated by GLPI's own search,
/// as an OQL rule is by iTop. It travels as one canonical line, `field 12 equals "notold" AND field 14 equals "2"`:
/// the rule's text in match reasons and in the ledger, parsed back by the connector.
public struct GLPICriteria: Sendable, Equatable, CustomStringConvertible {
    public struct Criterion: Sendable, Equatable {
        /// How it joins the criteria before it; nil for the first (which may still be `AND NOT`).
        public var link: String?
        /// A ticket search option id (GLPI's `listSearchOptions/Ticket`: 12 status, 14 type, 7 category, ...).
        public var field: Int
        public var searchtype: String
        public var value: String

        public init(link: String? = nil, field: Int, searchtype: String, value: String) {
            self.link = link
            self.field = field
            self.searchtype = searchtype
            self.value = value
        }
    }

    public struct Problem: Error, CustomStringConvertible, Equatable {
        public var description: String
    }

    public var criteria: [Criterion]

    /// GLPI 10's search types. GLPI answers an unknown one with 200 and no rows, so it is refused here, not there.
    public static let searchtypes = ["contains", "notcontains", "equals", "notequals", "lessthan", "morethan", "under", "notunder"]
    public static let links = ["AND", "OR", "AND NOT", "OR NOT"]
    public static let maxCriteria = 20
    public static let maxValueLength = 255

    /// Checks each criterion; the message names the one at fault by its position (from 0, as in the config).
    public init(criteria: [Criterion]) throws {
        guard !criteria.isEmpty else { throw Problem(description: "gives no criteria") }
        guard criteria.count <= Self.maxCriteria else { throw Problem(description: "gives \(criteria.count) criteria, at most \(Self.maxCriteria)") }
        for (index, c) in criteria.enumerated() {
            if let link = c.link, !Self.links.contains(link) {
                throw Problem(description: "[\(index)].link must be one of \(Self.links.joined(separator: ", ")), got '\(link.prefix(40))'")
            }
            if index == 0, let link = c.link, link != "AND", link != "AND NOT" {
                throw Problem(description: "[0].link: the first criterion joins nothing; only AND NOT (negate it) is meaningful")
            }
            guard (1...100_000).contains(c.field) else { throw Problem(description: "[\(index)].field must be a search option id, got \(c.field)") }
            guard Self.searchtypes.contains(c.searchtype) else {
                throw Problem(description: "[\(index)].searchtype must be one of \(Self.searchtypes.joined(separator: ", ")), got '\(c.searchtype.prefix(40))'")
            }
            guard c.value.count <= Self.maxValueLength, !c.value.contains(where: \.isNewline) else {
                throw Problem(description: "[\(index)].value must be one line of at most \(Self.maxValueLength) characters")
            }
        }
        self.criteria = criteria
    }

    /// Parses the canonical line back.
    public init(text: String) throws {
        var scanner = Scanner(Array(text))
        var parsed: [Criterion] = []
        while !scanner.atEnd {
            var link: String?
            if !parsed.isEmpty || scanner.peekWord() == "AND" {
                guard let first = scanner.word(), ["AND", "OR"].contains(first) else { throw Problem(description: "expected AND or OR in '\(text.prefix(80))'") }
                link = scanner.peekWord() == "NOT" ? first + " " + scanner.word()! : first
            }
            guard scanner.word() == "field", let field = scanner.word().flatMap({ Int($0) }), let searchtype = scanner.word(),
                  let value = scanner.quoted() else {
                throw Problem(description: "expected field N SEARCHTYPE \"VALUE\" in '\(text.prefix(80))'")
            }
            parsed.append(Criterion(link: link, field: field, searchtype: searchtype, value: value))
        }
        try self.init(criteria: parsed)
    }

    /// The canonical line.
    public var description: String {
        criteria.enumerated().map { index, c in
            let link = index == 0 ? (c.link == "AND NOT" ? "AND NOT " : "") : (c.link ?? "AND") + " "
            return "\(link)field \(c.field) \(c.searchtype) \(Self.quote(c.value))"
        }.joined(separator: " ")
    }

    /// The criteria as one nested group at top-level index `group`: `criteria[g][criteria][i][field]=…`, so whatever
    /// is ANDed after it applies to the whole rule, however its own links mix AND and OR.
    public func parameters(group: Int) -> [(String, String)] {
        var result: [(String, String)] = []
        if group > 0 { result.append(("criteria[\(group)][link]", "AND")) }
        for (index, c) in criteria.enumerated() {
            let prefix = "criteria[\(group)][criteria][\(index)]"
            if let link = c.link { result.append(("\(prefix)[link]", link)) }
            result += [("\(prefix)[field]", "\(c.field)"), ("\(prefix)[searchtype]", c.searchtype), ("\(prefix)[value]", c.value)]
        }
        return result
    }

    static func quote(_ value: String) -> String {
        "\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    struct Scanner {
        var characters: [Character]
        var position = 0

        init(_ characters: [Character]) { self.characters = characters }

        var atEnd: Bool {
            mutating get {
                skipSpaces()
                return position >= characters.count
            }
        }

        mutating func skipSpaces() {
            while position < characters.count, characters[position] == " " { position += 1 }
        }

        mutating func word() -> String? {
            skipSpaces()
            let start = position
            while position < characters.count, characters[position] != " ", characters[position] != "\"" { position += 1 }
            return position > start ? String(characters[start..<position]) : nil
        }

        mutating func peekWord() -> String? {
            let saved = position
            defer { position = saved }
            return word()
        }

        mutating func quoted() -> String? {
            skipSpaces()
            guard position < characters.count, characters[position] == "\"" else { return nil }
            position += 1
            var value = ""
            while position < characters.count {
                let c = characters[position]
                position += 1
                if c == "\\", position < characters.count {
                    value.append(characters[position])
                    position += 1
                } else if c == "\"" {
                    return value
                } else {
                    value.append(c)
                }
            }
            return nil
        }
    }
}
