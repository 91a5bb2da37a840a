import Crypto
import Foundation
import HourLedgerCore

/// One change to the books: an entry as it now stands (or deleted), a move, a carry-over or expiry line, a top-up.
/// Entries carry every figure that counts, so `verify` can compare the ledger's rows with what the books say.
public struct BookChange: Sendable, Equatable, Codable {
    public enum Op: String, Sendable, Codable {
        case entry
        case entryDeleted = "entry_deleted"
        case move
        case movement
        case movementDeleted = "movement_deleted"
        case topUp = "top_up"
        case topUpVoided = "top_up_voided"
    }

    public var op: Op
    /// The entry (`helpdesk_task:123`, `hourledger:45`), the ticket of a move, the movement or the top-up.
    public var ref: String
    public var ticket: Int?
    public var contract: String?
    public var period: String?
    public var workedAt: Int?
    public var raw: Int?
    public var billed: Int?
    public var kind: String?
    public var approval: String?
    public var technician: Int?
    public var detail: String?

    enum CodingKeys: String, CodingKey {
        case op, ref, ticket, contract, period, raw, billed, kind, approval, technician, detail
        case workedAt = "worked_at"
    }

    public init(op: Op, ref: String, ticket: Int? = nil, contract: String? = nil, period: String? = nil, workedAt: Int? = nil, raw: Int? = nil,
                billed: Int? = nil, kind: String? = nil, approval: String? = nil, technician: Int? = nil, detail: String? = nil) {
        self.op = op
        self.ref = ref
        self.ticket = ticket
        self.contract = contract
        self.period = period
        self.workedAt = workedAt
        self.raw = raw
        self.billed = billed
        self.kind = kind
        self.approval = approval
        self.technician = technician
        self.detail = detail
    }

    public static func ref(of entry: LedgerEntry) -> String { "\(entry.source.rawValue):\(entry.sourceID)" }

    /// The changes as a JSON array, keys sorted, absent values left out: what JSONEncoder with sorted keys would
    /// write, by hand, because a first sync writes a million of them (JSONEncoder made it a third slower).
    public static func json(_ changes: [BookChange]) -> String {
        var out: [UInt8] = [UInt8(ascii: "[")]
        out.reserveCapacity(changes.count * 160)
        for (index, change) in changes.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            change.appendJSON(to: &out)
        }
        out.append(UInt8(ascii: "]"))
        return String(decoding: out, as: UTF8.self)
    }

    func appendJSON(to out: inout [UInt8]) {
        var first = true
        func key(_ name: StaticString) {
            out.append(first ? UInt8(ascii: "{") : UInt8(ascii: ","))
            first = false
            out.append(UInt8(ascii: "\""))
            name.withUTF8Buffer { out.append(contentsOf: $0) }
            out.append(UInt8(ascii: "\""))
            out.append(UInt8(ascii: ":"))
        }
        func string(_ name: StaticString, _ value: String?) {
            guard let value else { return }
            key(name)
            JSONText.appendString(value, to: &out)
        }
        func int(_ name: StaticString, _ value: Int?) {
            guard let value else { return }
            key(name)
            JSONText.appendInt(value, to: &out)
        }
        string("approval", approval)
        int("billed", billed)
        string("contract", contract)
        string("detail", detail)
        string("kind", kind)
        string("op", op.rawValue)
        string("period", period)
        int("raw", raw)
        string("ref", ref)
        int("technician", technician)
        int("ticket", ticket)
        int("worked_at", workedAt)
        out.append(UInt8(ascii: "}"))
    }

    public static func entry(_ entry: LedgerEntry) -> BookChange {
        BookChange(op: .entry, ref: ref(of: entry), ticket: entry.ticketID, contract: entry.contractID, period: entry.periodKey,
                   workedAt: Int(entry.workedAt.timeIntervalSince1970), raw: entry.rawSeconds, billed: entry.billedSeconds, kind: entry.kind.rawValue,
                   approval: entry.approval.rawValue, technician: entry.technician)
    }

    public static func deleted(_ entry: LedgerEntry) -> BookChange {
        BookChange(op: .entryDeleted, ref: ref(of: entry), ticket: entry.ticketID, contract: entry.contractID)
    }

    /// A move is in the books of both contracts it concerns.
    public static func noteMove(_ move: ContractMove, in book: BookBuffer) {
        let change = BookChange(op: .move, ref: "ticket:\(move.ticketID)", ticket: move.ticketID, contract: move.toContract, raw: move.rawSeconds,
                                detail: "from \(move.fromContract ?? "(none)") to \(move.toContract ?? "(none)"): \(move.reason)")
        book.note(change, contract: move.toContract)
        if move.fromContract != move.toContract { book.note(change, contract: move.fromContract) }
    }

    public static func movement(_ movement: BlockMovement) -> BookChange {
        BookChange(op: .movement, ref: "\(movement.kind.rawValue):\(movement.periodKey):\(movement.originKey)", period: movement.periodKey,
                   raw: movement.seconds, detail: movement.reason)
    }

    public static func movementDeleted(_ movement: BlockMovement) -> BookChange {
        BookChange(op: .movementDeleted, ref: "\(movement.kind.rawValue):\(movement.periodKey):\(movement.originKey)", period: movement.periodKey)
    }

    public static func topUp(_ topUp: TopUp) -> BookChange {
        BookChange(op: .topUp, ref: "top_up:\(topUp.id)", contract: topUp.contractID, raw: topUp.seconds, detail: "\(topUp.addedBy): \(topUp.note)")
    }

    public static func topUpVoided(_ topUp: TopUp) -> BookChange {
        BookChange(op: .topUpVoided, ref: "top_up:\(topUp.id)", contract: topUp.contractID, raw: topUp.seconds,
                   detail: "\(topUp.voidedBy ?? ""): \(topUp.voidReason ?? "")")
    }
}

/// One record of a contract's books: the changes of one transaction to that contract, chained to the record before
/// it by hash. `id` orders records across contracts (an entry that moved has its last state in the later record).
public struct BookRecord: Sendable, Equatable {
    public var id: Int64
    /// "" for what belongs to no contract (time on unmatched tickets).
    public var contractID: String
    public var seq: Int
    public var at: Int
    public var content: String
    public var previousHash: String
    public var hash: String

    public init(id: Int64 = 0, contractID: String, seq: Int, at: Int, content: String, previousHash: String, hash: String) {
        self.id = id
        self.contractID = contractID
        self.seq = seq
        self.at = at
        self.content = content
        self.previousHash = previousHash
        self.hash = hash
    }

    /// SHA-256 over the contract, the position, the time, the previous record's hash and the content.
    public static func hash(contractID: String, seq: Int, at: Int, previousHash: String, content: String) -> String {
        let text = "\(contractID)\n\(seq)\n\(at)\n\(previousHash)\n\(content)"
        return SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    public static let genesisHash = String(repeating: "0", count: 64)
}

/// The changes of one write transaction, by contract, until it commits: the stores note every change here and turn
/// it into one chained record per contract just before the commit.
public final class BookBuffer {
    /// Each contract's changes so far as the inside of its JSON array, written as they are noted: a first sync notes
    /// a million, and holding them as values until the commit only copied them twice more.
    private var contents: [String: [UInt8]] = [:]
    private var order: [String] = []

    public init() {}

    public func note(_ change: BookChange, contract: String?) {
        let key = contract ?? ""
        if contents[key] == nil {
            order.append(key)
            contents[key] = [UInt8(ascii: "[")]
        } else {
            contents[key]!.append(UInt8(ascii: ","))
        }
        change.appendJSON(to: &contents[key]!)
    }

    public var isEmpty: Bool { contents.isEmpty }

    /// Appends one record per contract touched: `head` gives a contract's last (seq, hash), `append` stores a record.
    public func flush(at now: Date, head: (String) throws -> (seq: Int, hash: String)?, append: (BookRecord) throws -> Void) throws {
        guard !contents.isEmpty else { return }
        let at = Int(now.timeIntervalSince1970)
        for contract in order {
            contents[contract]!.append(UInt8(ascii: "]"))
            let content = String(decoding: contents[contract]!, as: UTF8.self)
            let previous = try head(contract)
            let seq = (previous?.seq ?? 0) + 1
            let previousHash = previous?.hash ?? BookRecord.genesisHash
            try append(BookRecord(contractID: contract, seq: seq, at: at, content: content, previousHash: previousHash,
                                  hash: BookRecord.hash(contractID: contract, seq: seq, at: at, previousHash: previousHash, content: content)))
        }
        contents = [:]
        order = []
    }
}

/// What `verify` found: the first broken link of each broken chain, and every entry the books disagree with.
public struct BooksReport: Sendable, Equatable {
    public var contracts = 0
    public var records = 0
    public var entries = 0
    public var problems: [String] = []
    /// The last record of each contract: what a statement names as the books' head.
    public var heads: [String: (seq: Int, hash: String)] = [:]

    public static func == (a: BooksReport, b: BooksReport) -> Bool {
        a.contracts == b.contracts && a.records == b.records && a.entries == b.entries && a.problems == b.problems
    }

    /// Checks each contract's chain (records in `id` order) and replays the entries' last states against `entries`.
    public static func check(records: [BookRecord], entries: [LedgerEntry]) -> BooksReport {
        var report = BooksReport()
        var last: [String: BookRecord] = [:]
        var broken = Set<String>()
        var states: [String: (change: BookChange, record: BookRecord)] = [:]
        let decoder = JSONDecoder()
        for record in records.sorted(by: { $0.id < $1.id }) {
            report.records += 1
            let name = "contract \(record.contractID.isEmpty ? "(none)" : record.contractID), record #\(record.seq) of \(ISOStamp.string(Date(timeIntervalSince1970: TimeInterval(record.at)), in: .gmt))"
            let before = last[record.contractID]
            last[record.contractID] = record
            if broken.contains(record.contractID) { continue }
            let expectedSeq = (before?.seq ?? 0) + 1
            let expectedPrevious = before?.hash ?? BookRecord.genesisHash
            if record.seq != expectedSeq || record.previousHash != expectedPrevious {
                report.problems.append("\(name): does not follow record #\(before?.seq ?? 0) (a record was removed, inserted or renumbered)")
                broken.insert(record.contractID)
                continue
            }
            if BookRecord.hash(contractID: record.contractID, seq: record.seq, at: record.at, previousHash: record.previousHash,
                               content: record.content) != record.hash {
                report.problems.append("\(name): its content does not match its hash (the record was changed)")
                broken.insert(record.contractID)
                continue
            }
            guard let changes = try? decoder.decode([BookChange].self, from: Data(record.content.utf8)) else {
                report.problems.append("\(name): its content cannot be read")
                broken.insert(record.contractID)
                continue
            }
            for change in changes where change.op == .entry || change.op == .entryDeleted { states[change.ref] = (change, record) }
        }
        report.contracts = last.count
        report.heads = last.mapValues { ($0.seq, $0.hash) }
        var seen = Set<String>()
        for entry in entries.sorted(by: { $0.id < $1.id }) {
            report.entries += 1
            let ref = BookChange.ref(of: entry)
            seen.insert(ref)
            let now = BookChange.entry(entry)
            guard let (change, record) = states[ref], change.op == .entry else {
                report.problems.append("entry \(ref) (ticket \(entry.ticketID)) is not in the books: it was added outside HourLedger")
                continue
            }
            if change != now {
                let fields = [("contract", change.contract ?? "-", now.contract ?? "-"), ("period", change.period ?? "-", now.period ?? "-"),
                              ("worked_at", "\(change.workedAt ?? 0)", "\(now.workedAt ?? 0)"), ("raw_seconds", "\(change.raw ?? 0)", "\(now.raw ?? 0)"),
                              ("billed_seconds", "\(change.billed ?? 0)", "\(now.billed ?? 0)"), ("kind", change.kind ?? "", now.kind ?? ""),
                              ("approval", change.approval ?? "", now.approval ?? ""), ("technician", "\(change.technician ?? 0)", "\(now.technician ?? 0)"),
                              ("ticket", "\(change.ticket ?? 0)", "\(now.ticket ?? 0)")]
                    .filter { $0.1 != $0.2 }.map { "\($0.0) \($0.2) in the ledger, \($0.1) in the books" }
                report.problems.append("entry \(ref) (ticket \(entry.ticketID)) was changed outside HourLedger: " + fields.joined(separator: ", ")
                                       + " (contract \(record.contractID.isEmpty ? "(none)" : record.contractID), record #\(record.seq))")
            }
        }
        for (ref, state) in states.sorted(by: { $0.key < $1.key }) where state.change.op == .entry && !seen.contains(ref) {
            report.problems.append("entry \(ref) (ticket \(state.change.ticket ?? 0)) was deleted outside HourLedger "
                                   + "(contract \(state.record.contractID.isEmpty ? "(none)" : state.record.contractID), record #\(state.record.seq))")
        }
        return report
    }
}

extension Ledger {
    /// Recomputes every contract's chain and replays the entries' last states against the ledger's rows, in one
    /// read (a consistent snapshot).
    public func verifyBooks() throws -> BooksReport {
        try read { BooksReport.check(records: try $0.bookRecords(), entries: try $0.allEntries()) }
    }
}
