import Foundation

/// The part of iTop's OQL a contract rule or a poll uses: SELECT with an alias, JOIN … ON a = b, and a WHERE of
/// comparisons, IN lists, LIKE, NOT, AND, OR and parentheses. Errors read as iTop 3.2.0 words them.
struct FakeOQL {
    struct Failure: Error { let message: String }

    enum Token: Equatable {
        case word(String), number(String), text(String), symbol(String), end
    }

    struct Ref { var alias: String; var field: String; var position: Int }

    indirect enum Condition {
        case compare(Ref, String, String)
        case inList(Ref, [String], negated: Bool)
        case like(Ref, String)
        case not(Condition)
        case and(Condition, Condition)
        case or(Condition, Condition)
    }

    var selectedClass = ""
    var alias = ""
    var joins: [(itemClass: String, alias: String, left: Ref, right: Ref)] = []
    var condition: Condition?
    let text: String
    private var tokens: [(token: Token, position: Int)] = []
    private var index = 0

    init(_ text: String, classes: [String: [String]]) throws {
        self.text = text
        tokens = try Self.tokenize(text)
        try parseQuery()
        try validate(classes)
    }

    /// The aliases in scope: the selected class, then each joined class.
    var aliases: [String: String] {
        var result = [alias: selectedClass]
        for join in joins { result[join.alias] = join.itemClass }
        return result
    }

    static func tokenize(_ text: String) throws -> [(token: Token, position: Int)] {
        var result: [(Token, Int)] = []
        let chars = Array(text)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c.isWhitespace { i += 1; continue }
            let start = i
            if c.isLetter || c == "_" {
                while i < chars.count, chars[i].isLetter || chars[i].isNumber || chars[i] == "_" { i += 1 }
                result.append((.word(String(chars[start..<i])), start))
            } else if c.isNumber {
                while i < chars.count, chars[i].isNumber || chars[i] == "." { i += 1 }
                result.append((.number(String(chars[start..<i])), start))
            } else if c == "'" || c == "\"" {
                i += 1
                var value = ""
                while i < chars.count, chars[i] != c {
                    if chars[i] == "\\", i + 1 < chars.count { i += 1 }
                    value.append(chars[i])
                    i += 1
                }
                guard i < chars.count else {
                    throw Failure(message: "OQLParserSyntaxErrorException, exception_message = Unexpected token End of Input - found '0' at 0 in '\(text)'")
                }
                i += 1
                result.append((.text(value), start))
            } else if i + 1 < chars.count, ["!=", "<>", "<=", ">="].contains(String(chars[i...i + 1])) {
                result.append((.symbol(String(chars[i...i + 1])), start))
                i += 2
            } else if "()=<>,.".contains(c) {
                result.append((.symbol(String(c)), start))
                i += 1
            } else {
                throw Failure(message: "OQLParserSyntaxErrorException, exception_message = Unexpected character - found '\(c)' at \(start) in '\(text)'")
            }
        }
        result.append((.end, text.count))
        return result
    }

    private var current: Token { tokens[index].token }

    private func syntaxError() -> Failure {
        let (token, position) = tokens[index]
        switch token {
        case .end: return Failure(message: "OQLParserSyntaxErrorException, exception_message = Unexpected token End of Input - found '0' at 0 in '\(text)'")
        case .word(let w), .number(let w), .text(let w), .symbol(let w):
            return Failure(message: "OQLParserSyntaxErrorException, exception_message = Unexpected token \(w) - found '\(w)' at \(position) in '\(text)'")
        }
    }

    private mutating func keyword(_ word: String) -> Bool {
        if case .word(let w) = current, w.uppercased() == word { index += 1; return true }
        return false
    }

    private mutating func expectKeyword(_ word: String) throws {
        guard keyword(word) else { throw syntaxError() }
    }

    private mutating func symbol(_ s: String) -> Bool {
        if case .symbol(let t) = current, t == s { index += 1; return true }
        return false
    }

    private static let reserved: Set<String> = ["SELECT", "AS", "JOIN", "ON", "WHERE", "AND", "OR", "NOT", "IN", "LIKE"]

    private mutating func identifier() throws -> (String, Int) {
        guard case .word(let w) = current, !Self.reserved.contains(w.uppercased()) else { throw syntaxError() }
        let position = tokens[index].position
        index += 1
        return (w, position)
    }

    private mutating func parseQuery() throws {
        try expectKeyword("SELECT")
        selectedClass = try identifier().0
        alias = keyword("AS") ? try identifier().0 : selectedClass
        while keyword("JOIN") {
            let joined = try identifier().0
            let joinAlias = keyword("AS") ? try identifier().0 : joined
            try expectKeyword("ON")
            let left = try ref()
            guard symbol("=") else { throw syntaxError() }
            let right = try ref()
            joins.append((joined, joinAlias, left, right))
        }
        if keyword("WHERE") { condition = try orExpression() }
        guard current == .end else { throw syntaxError() }
    }

    private mutating func ref() throws -> Ref {
        let (first, position) = try identifier()
        if symbol(".") {
            let (field, fieldPosition) = try identifier()
            return Ref(alias: first, field: field, position: fieldPosition)
        }
        return Ref(alias: alias, field: first, position: position)
    }

    private mutating func orExpression() throws -> Condition {
        var left = try andExpression()
        while keyword("OR") { left = .or(left, try andExpression()) }
        return left
    }

    private mutating func andExpression() throws -> Condition {
        var left = try factor()
        while keyword("AND") { left = .and(left, try factor()) }
        return left
    }

    private mutating func factor() throws -> Condition {
        if symbol("(") {
            let inner = try orExpression()
            guard symbol(")") else { throw syntaxError() }
            return inner
        }
        if keyword("NOT") { return .not(try factor()) }
        let left = try ref()
        if keyword("NOT") {
            try expectKeyword("IN")
            return .inList(left, try list(), negated: true)
        }
        if keyword("IN") { return .inList(left, try list(), negated: false) }
        if keyword("LIKE") { return .like(left, try literal()) }
        for op in ["=", "!=", "<>", "<", ">", "<=", ">="] where symbol(op) {
            return .compare(left, op, try literal())
        }
        throw syntaxError()
    }

    private mutating func list() throws -> [String] {
        guard symbol("(") else { throw syntaxError() }
        var values = [try literal()]
        while symbol(",") { values.append(try literal()) }
        guard symbol(")") else { throw syntaxError() }
        return values
    }

    private mutating func literal() throws -> String {
        switch current {
        case .number(let n), .text(let n):
            index += 1
            return n
        default: throw syntaxError()
        }
    }

    /// Every class and field must exist, as iTop's normalizer checks before running anything.
    private func validate(_ classes: [String: [String]]) throws {
        guard let attributes = classes[selectedClass] else {
            throw Failure(message: "OqlNormalizeException, exception_message = Unknown class - found '\(selectedClass)' at 7 in '\(text)', expecting {\(classes.keys.sorted().joined(separator: ", "))}")
        }
        _ = attributes
        for join in joins where classes[join.itemClass] == nil {
            throw Failure(message: "OqlNormalizeException, exception_message = Unknown class - found '\(join.itemClass)' in '\(text)'")
        }
        var refs: [Ref] = joins.flatMap { [$0.left, $0.right] }
        func collect(_ condition: Condition?) {
            switch condition {
            case .compare(let r, _, _), .inList(let r, _, _), .like(let r, _): refs.append(r)
            case .not(let c): collect(c)
            case .and(let a, let b), .or(let a, let b): collect(a); collect(b)
            case nil: break
            }
        }
        collect(condition)
        for ref in refs {
            guard let itemClass = aliases[ref.alias] else {
                throw Failure(message: "OqlNormalizeException, exception_message = Unknown class alias - found '\(ref.alias)' in '\(text)'")
            }
            let fields = classes[itemClass] ?? []
            guard ref.field == "id" || fields.contains(ref.field) else {
                throw Failure(message: "OqlNormalizeException, exception_message = Unknown filter code - found '\(ref.field)' at \(ref.position) in '\(text)', expecting {\(fields.joined(separator: ", "))}")
            }
        }
    }

    /// True when the rows (one per alias) satisfy the WHERE clause.
    func matches(_ rows: [String: [String: String]]) -> Bool {
        guard let condition else { return true }
        return evaluate(condition, rows)
    }

    private func value(_ ref: Ref, _ rows: [String: [String: String]]) -> String { rows[ref.alias]?[ref.field] ?? "" }

    private func evaluate(_ condition: Condition, _ rows: [String: [String: String]]) -> Bool {
        switch condition {
        case .compare(let ref, let op, let literal):
            let left = value(ref, rows)
            let order: ComparisonResult
            if let a = Double(left), let b = Double(literal) {
                order = a < b ? .orderedAscending : a > b ? .orderedDescending : .orderedSame
            } else {
                order = left < literal ? .orderedAscending : left > literal ? .orderedDescending : .orderedSame
            }
            switch op {
            case "=": return order == .orderedSame
            case "!=", "<>": return order != .orderedSame
            case "<": return order == .orderedAscending
            case ">": return order == .orderedDescending
            case "<=": return order != .orderedDescending
            default: return order != .orderedAscending
            }
        case .inList(let ref, let values, let negated):
            let left = value(ref, rows)
            let hit = values.contains { $0 == left || (Double($0) != nil && Double($0) == Double(left)) }
            return negated ? !hit : hit
        case .like(let ref, let pattern):
            let escaped = NSRegularExpression.escapedPattern(for: pattern).replacingOccurrences(of: "%", with: ".*")
            return value(ref, rows).range(of: "^" + escaped + "$", options: [.regularExpression, .caseInsensitive]) != nil
        case .not(let inner): return !evaluate(inner, rows)
        case .and(let a, let b): return evaluate(a, rows) && evaluate(b, rows)
        case .or(let a, let b): return evaluate(a, rows) || evaluate(b, rows)
        }
    }
}
