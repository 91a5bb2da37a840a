import Crypto
import Foundation
import HourLedgerCore

/// A contract period's statement for the customer or an auditor: every counted entry and the period's totals, in the
/// contract's own time zone, signed with the MSP's Ed25519 key so that anyone holding the public key can check that
/// not one byte changed since it was written.
public struct Statement: Sendable, Equatable, Codable {
    public struct Line: Sendable, Equatable, Codable {
        /// The entry's key, or `glpi_task:<id>` for time read from the helpdesk.
        public var ref: String
        public var ticketID: Int
        public var ticket: String
        /// When the work was done, with the contract's offset at that moment.
        public var workedAt: String
        public var technician: Int
        public var kind: String
        public var billedSeconds: Int

        enum CodingKeys: String, CodingKey {
            case ref, ticket, technician, kind
            case ticketID = "ticket_id", workedAt = "worked_at", billedSeconds = "billed_seconds"
        }
    }

    public struct Totals: Sendable, Equatable, Codable {
        public var quotaSeconds: Int
        public var carriedInSeconds: Int
        public var topUpSeconds: Int
        public var usedSeconds: Int
        public var rawSeconds: Int
        public var remainingSeconds: Int
        public var overageSeconds: Int
        public var entryCount: Int

        enum CodingKeys: String, CodingKey {
            case quotaSeconds = "quota_seconds", carriedInSeconds = "carried_in_seconds", topUpSeconds = "top_up_seconds", usedSeconds = "used_seconds"
            case rawSeconds = "raw_seconds", remainingSeconds = "remaining_seconds", overageSeconds = "overage_seconds", entryCount = "entry_count"
        }
    }

    public var format = "hourledger-statement/1"
    public var contractID: String
    public var contractName: String
    public var customer: String
    public var periodKey: String
    public var periodStart: String
    public var periodEnd: String?
    public var timeZone: String
    /// False while the period still runs: the statement is then month-to-date.
    public var closed: Bool
    public var generatedAt: String
    public var lines: [Line]
    public var totals: Totals
    /// The contract's books when the statement was written: their last record's position and hash, which
    /// `hourledger verify` on the ledger recomputes.
    public var booksHead: BooksHead?

    public struct BooksHead: Sendable, Equatable, Codable {
        public var seq: Int
        public var hash: String
    }

    enum CodingKeys: String, CodingKey {
        case format, customer, closed, lines, totals
        case booksHead = "books_head"
        case contractID = "contract_id", contractName = "contract_name", periodKey = "period_key", periodStart = "period_start"
        case periodEnd = "period_end", timeZone = "time_zone", generatedAt = "generated_at"
    }

    /// The canonical text that is signed: keys sorted, no insignificant whitespace.
    public func canonicalJSON() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(self))
    }

    /// One line per entry; the statement's identity and totals as `#` lines around them.
    public func csv() -> String {
        func field(_ text: String) -> String {
            text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
        }
        var out = "# \(format) contract_id=\(contractID) period_key=\(periodKey) period_start=\(periodStart) period_end=\(periodEnd ?? "-") "
            + "time_zone=\(timeZone) closed=\(closed) generated_at=\(generatedAt)\n"
        out += "# contract_name=\(field(contractName)) customer=\(field(customer))\n"
        out += "ref,ticket_id,ticket,worked_at,technician,kind,billed_seconds\n"
        for line in lines {
            out += "\(field(line.ref)),\(line.ticketID),\(field(line.ticket)),\(line.workedAt),\(line.technician),\(line.kind),\(line.billedSeconds)\n"
        }
        let t = totals
        out += "# books_head seq=\(booksHead?.seq ?? 0) hash=\(booksHead?.hash ?? "-")\n"
        out += "# totals quota_seconds=\(t.quotaSeconds) carried_in_seconds=\(t.carriedInSeconds) top_up_seconds=\(t.topUpSeconds) "
            + "used_seconds=\(t.usedSeconds) raw_seconds=\(t.rawSeconds) remaining_seconds=\(t.remainingSeconds) overage_seconds=\(t.overageSeconds) "
            + "entry_count=\(t.entryCount)\n"
        return out
    }
}

/// Why a statement could not be written or does not verify.
public struct StatementError: Error, CustomStringConvertible, Sendable, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Ed25519 signatures over a statement's exact bytes (swift-crypto). The JSON form is one object whose `statement`
/// member is the canonical statement text, byte for byte as signed; the CSV form ends in a `# signature` line over
/// every byte before it. Either way one changed byte anywhere fails the check.
public enum StatementSignature {
    static let jsonPrefix = #"{"format":"hourledger-signed-statement/1","public_key":""#
    static let csvMarker = "# signature ed25519 "

    public static func signedJSON(_ statement: Statement, key: Curve25519.Signing.PrivateKey) throws -> [UInt8] {
        let body = try statement.canonicalJSON()
        let signature = try key.signature(for: body).base64EncodedString()
        let publicKey = key.publicKey.rawRepresentation.base64EncodedString()
        return Array((jsonPrefix + publicKey + #"","signature":""# + signature + #"","statement":"#).utf8) + body + Array("}\n".utf8)
    }

    public static func signedCSV(_ statement: Statement, key: Curve25519.Signing.PrivateKey) throws -> [UInt8] {
        let body = Array(statement.csv().utf8)
        let signature = try key.signature(for: body).base64EncodedString()
        return body + Array((csvMarker + key.publicKey.rawRepresentation.base64EncodedString() + " " + signature + "\n").utf8)
    }

    /// What a verified file says: its contract and period, and how many lines it holds.
    public struct Verified: Sendable, Equatable {
        public var contractID: String
        public var periodKey: String
        public var lines: Int
        public var usedSeconds: Int
    }

    /// Checks a signed statement (JSON or CSV) against `publicKey` alone.
    public static func verify(_ file: [UInt8], publicKey: Curve25519.Signing.PublicKey) throws -> Verified {
        let (body, signerKey, signatureText) = try split(file)
        guard signerKey == publicKey.rawRepresentation.base64EncodedString() else {
            throw StatementError("the statement names another signing key than the public key given")
        }
        guard let signature = Data(base64Encoded: signatureText), publicKey.isValidSignature(signature, for: body) else {
            throw StatementError("the signature does not match: the statement was changed after it was signed, or signed by another key")
        }
        if file.starts(with: Array(jsonPrefix.utf8)) {
            guard let statement = try? JSONDecoder().decode(Statement.self, from: Data(body)) else {
                throw StatementError("the signed text is not a statement")
            }
            return Verified(contractID: statement.contractID, periodKey: statement.periodKey, lines: statement.lines.count,
                            usedSeconds: statement.totals.usedSeconds)
        }
        let text = String(decoding: body, as: UTF8.self)
        let rows = text.split(separator: "\n", omittingEmptySubsequences: false)
        func value(_ name: String) -> String? {
            for row in rows where row.hasPrefix("# ") {
                for part in row.split(separator: " ") where part.hasPrefix(name + "=") { return String(part.dropFirst(name.count + 1)) }
            }
            return nil
        }
        let lines = rows.filter { !$0.isEmpty && !$0.hasPrefix("#") }.count - 1
        guard let contract = value("contract_id"), let period = value("period_key"), let used = value("used_seconds").flatMap({ Int($0) }), lines >= 0 else {
            throw StatementError("the signed text is not a statement")
        }
        return Verified(contractID: contract, periodKey: period, lines: lines, usedSeconds: used)
    }

    /// Whether the books head a JSON statement names is still the record it was in its contract's chain: a chain
    /// rewritten after the statement was handed out no longer holds it.
    public static func headProblems(_ file: [UInt8], file name: String, records: [BookRecord]) throws -> [String] {
        let (body, _, _) = try split(file)
        guard file.starts(with: Array(jsonPrefix.utf8)), let statement = try? JSONDecoder().decode(Statement.self, from: Data(body)) else {
            throw StatementError("\(name) is not a signed JSON statement")
        }
        guard let head = statement.booksHead else { return [] }
        let record = records.first { $0.contractID == statement.contractID && $0.seq == head.seq }
        guard record?.hash == head.hash else {
            return ["\(name): its books head (contract \(statement.contractID), record #\(head.seq), \(head.hash.prefix(12))…) is not in the chain: "
                    + "the books were rewritten after the statement was written"]
        }
        return []
    }

    /// The signed bytes, the signer's public key and the signature, as the file frames them.
    static func split(_ file: [UInt8]) throws -> ([UInt8], String, String) {
        let prefix = Array(jsonPrefix.utf8)
        if file.starts(with: prefix) {
            let rest = file[prefix.count...]
            let keyEnd = Array(#"","signature":""#.utf8), signatureEnd = Array(#"","statement":"#.utf8), suffix = Array("}\n".utf8)
            guard let a = rest.firstRange(of: keyEnd), let b = rest[a.upperBound...].firstRange(of: signatureEnd),
                  file.count >= b.upperBound + suffix.count, Array(file.suffix(suffix.count)) == suffix else {
                throw StatementError("not a signed statement (its framing is broken)")
            }
            let body = Array(file[b.upperBound..<(file.count - suffix.count)])
            return (body, String(decoding: rest[..<a.lowerBound], as: UTF8.self), String(decoding: rest[a.upperBound..<b.lowerBound], as: UTF8.self))
        }
        // CSV: the last line is the signature.
        guard file.last == UInt8(ascii: "\n"), let start = file.dropLast().lastIndex(of: UInt8(ascii: "\n")).map({ $0 + 1 }) else {
            throw StatementError("not a signed statement (no signature line)")
        }
        let line = String(decoding: file[start..<(file.count - 1)], as: UTF8.self)
        guard line.hasPrefix(csvMarker) else { throw StatementError("not a signed statement (no signature line)") }
        let parts = line.dropFirst(csvMarker.count).split(separator: " ")
        guard parts.count == 2 else { throw StatementError("not a signed statement (a broken signature line)") }
        return (Array(file[..<start]), String(parts[0]), String(parts[1]))
    }

    /// A key file holds the key's 32 bytes in base64 on one line.
    public static func privateKey(file path: String) throws -> Curve25519.Signing.PrivateKey {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
              let raw = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)),
              let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw) else {
            throw StatementError("\(path) does not hold an Ed25519 private key (32 bytes in base64; `hourledger statement keygen` writes one)")
        }
        return key
    }

    public static func publicKey(file path: String) throws -> Curve25519.Signing.PublicKey {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
              let raw = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)),
              let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw) else {
            throw StatementError("\(path) does not hold an Ed25519 public key (32 bytes in base64)")
        }
        return key
    }
}

extension Ledger {
    /// The statement of the period of `contractID` that `period` names (current, previous, YYYY-MM, YYYY-MM-DD).
    public func statement(contractID: String, period spec: String, now: Date? = nil) throws -> Statement {
        let now = now ?? clock.now()
        guard let contract = book.contract(contractID) else { throw StatementError("no contract \(contractID)") }
        guard let period = contract.period(named: spec, now: now) else {
            throw StatementError("contract \(contractID) has no period '\(spec)' (give current, previous, YYYY-MM or YYYY-MM-DD within its dates)")
        }
        guard let row = try balance(of: contract, at: period.start, now: now) else {
            throw StatementError("contract \(contractID) has no balance for \(period.key)")
        }
        let zone = TimeZone(identifier: contract.timeZone) ?? .gmt
        let lines = try invoiceEntries(contractID: contract.id, periodKey: row.periodKey).sorted { ($0.workedAt, $0.ref) < ($1.workedAt, $1.ref) }.map {
            Statement.Line(ref: $0.ref, ticketID: $0.ticketID, ticket: $0.ticketName, workedAt: ISOStamp.string($0.workedAt, in: zone),
                           technician: $0.technician, kind: $0.kind.rawValue, billedSeconds: $0.billedSeconds)
        }
        let head = try read { try $0.bookHead(contractID: contract.id) }
        var statement = Statement(contractID: contract.id, contractName: contract.name, customer: contract.customer ?? contract.name, periodKey: row.periodKey,
                         periodStart: ISOStamp.string(row.periodStart, in: zone), periodEnd: row.periodEnd.map { ISOStamp.string($0, in: zone) },
                         timeZone: contract.timeZone, closed: row.closed, generatedAt: ISOStamp.string(now, in: .gmt), lines: lines,
                         totals: .init(quotaSeconds: row.quotaSeconds, carriedInSeconds: row.carriedInSeconds, topUpSeconds: row.topUpSeconds,
                                       usedSeconds: row.usedSeconds, rawSeconds: row.rawSeconds, remainingSeconds: row.remainingSeconds,
                                       overageSeconds: row.overageSeconds, entryCount: row.entryCount))
        statement.booksHead = head.map { Statement.BooksHead(seq: $0.seq, hash: $0.hash) }
        return statement
    }
}
