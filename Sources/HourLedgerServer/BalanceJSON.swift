import Foundation
import HourLedgerCore
import HourLedgerUseCases
import Synchronization

/// What a read kept for later was worked out from: the store's balance revision (which every write moves, in any
/// process), the contract book's version (each reload) and the minute (forecasts and charts are as of the minute).
/// Equal stamps, and no period beginning or ending in between, mean the kept result still holds.
struct KeptStamp: Equatable {
    var revision: Int64
    var book: Int
    var minute: Double

    init(_ ledger: Ledger, at now: Date) throws {
        revision = try ledger.balanceRevision()
        book = ledger.book.version
        minute = (now.timeIntervalSince1970 / 60).rounded(.down)
    }
}

/// Contract balances as JSON, byte for byte what `JSONBody`'s encoder (sorted keys, pretty printed, slashes as they
/// are, ISO 8601 dates) writes for them. The contract list and `/status` hold one per contract: through JSONEncoder a
/// thousand took 11 ms, five times the work of reading them. Keys are written in the encoder's sorted order;
/// `BalanceJSONTests` hold the text to the encoder's.
public enum BalanceJSON {
    /// The array, its brackets at `indent` levels of two spaces, as it stands after a key or alone.
    public static func array(_ balances: [ContractBalance], indent: Int = 0) -> String {
        String(decoding: bytes(balances, indent: indent), as: UTF8.self)
    }

    /// The same as UTF-8, as a response body takes it.
    public static func bytes(_ balances: [ContractBalance], indent: Int = 0) -> [UInt8] {
        var out = Writer()
        out.bytes.reserveCapacity(64 + balances.count * 1100)
        out.array(balances, indent: indent) { out, balance, indent in out.balance(balance, indent: indent) }
        return out.bytes
    }

    /// Each contract's JSON as last written, so a read writes again only the balances that changed since the last
    /// one: a thousand unchanged balances cost a comparison each and a copy of their bytes. Equal values give equal
    /// bytes, so what is served is exactly what `bytes` would write.
    public final class Kept: Sendable {
        private let written = Mutex<[Key: (balance: ContractBalance, bytes: [UInt8])]>([:])
        /// The whole list as last written, by indent, with what it was worked out from.
        private let listed = Mutex<[Int: Listed]>([:])

        private struct Listed {
            var stamp: KeptStamp
            var from: Date
            var until: Date
            var bytes: [UInt8]
            var failures: [ContractFailure]
        }

        struct Key: Hashable {
            var id: String
            var indent: Int
        }

        public init() {}

        /// Every contract's balance at `now` as JSON (`BalanceJSON.bytes` of `Ledger.contractBalances(at: now)`), and
        /// the contracts whose figures could not be worked out. Kept whole while the store's balance revision (which
        /// every write moves, in any process), the contract book and the minute (the forecasts' instant) stay the
        /// same and no period begins or ends: a read then costs one look-up of the revision.
        public func current(_ ledger: Ledger, at now: Date, indent: Int = 0) throws -> (bytes: [UInt8], failures: [ContractFailure]) {
            let stamp = try KeptStamp(ledger, at: now)
            if let hit = listed.withLock({ $0[indent] }), hit.stamp == stamp, hit.from <= now, now < hit.until {
                return (hit.bytes, hit.failures)
            }
            let current = try ledger.spannedBalances(at: now)
            let out = bytes(current.balances.map { ContractBalance(contract: $0.0, row: $0.1, now: now) }, indent: indent)
            listed.withLock {
                $0[indent] = Listed(stamp: stamp, from: current.from, until: current.until, bytes: out, failures: current.failures)
            }
            return (out, current.failures)
        }

        /// `BalanceJSON.bytes(balances, indent:)`, from the kept bytes of every balance equal to the last one written.
        /// Readers take turns: the kept bytes are changed in place rather than copied per read.
        public func bytes(_ balances: [ContractBalance], indent: Int = 0) -> [UInt8] {
            written.withLock { known in
                var out = Writer()
                out.bytes.reserveCapacity(64 + balances.count * 1100)
                var changed = false
                out.array(balances, indent: indent) { out, balance, indent in
                    let key = Key(id: balance.id, indent: indent)
                    if let kept = known[key], kept.balance == balance {
                        out.bytes.append(contentsOf: kept.bytes)
                        return
                    }
                    var one = Writer()
                    one.balance(balance, indent: indent)
                    out.bytes.append(contentsOf: one.bytes)
                    known[key] = (balance, one.bytes)
                    changed = true
                }
                // Contracts that left the book are let go once they outnumber the ones in it.
                if changed, known.count > 2 * balances.count + 16 {
                    let ids = Set(balances.map(\.id))
                    known = known.filter { ids.contains($0.key.id) }
                }
                return out.bytes
            }
        }
    }

    /// A number as JSONEncoder writes a Double: the shortest digits that read back, without a trailing ".0".
    static func number(_ value: Double) -> String {
        var text = value.description
        if text.hasSuffix(".0") { text.removeLast(2) }
        return text
    }

    private static let utc = TimeZone(identifier: "UTC")!

    struct Writer {
        var bytes: [UInt8] = []

        mutating func balance(_ b: ContractBalance, indent: Int) {
            var object = ObjectWriter(indent: indent)
            object.key("available_seconds", &self); int(b.availableSeconds)
            object.key("billing_mode", &self); string(b.billingMode.rawValue)
            object.key("carried_in_seconds", &self); int(b.carriedInSeconds)
            object.key("closed", &self); bool(b.closed)
            object.key("entry_count", &self); int(b.entryCount)
            object.key("expired_seconds", &self); int(b.expiredSeconds)
            object.key("expiring_at_end_seconds", &self); int(b.expiringAtEndSeconds)
            if let forecast = b.forecast {
                object.key("forecast", &self)
                var inner = ObjectWriter(indent: indent + 1)
                inner.key("already_depleted", &self); bool(forecast.alreadyDepleted)
                inner.key("burn_seconds_per_day", &self); int(forecast.burnSecondsPerDay)
                if let date = forecast.depletesAt { inner.key("depletes_at", &self); string(ISOStamp.string(date, in: utc)) }
                inner.key("within_period", &self); bool(forecast.withinPeriod)
                inner.close(&self)
            }
            object.key("id", &self); string(b.id)
            object.key("movements", &self)
            array(b.movements, indent: indent + 1) { out, movement, indent in
                var line = ObjectWriter(indent: indent)
                line.key("kind", &out); out.string(movement.kind.rawValue)
                line.key("origin_key", &out); out.string(movement.originKey)
                line.key("period_key", &out); out.string(movement.periodKey)
                line.key("reason", &out); out.string(movement.reason)
                line.key("seconds", &out); out.int(movement.seconds)
                line.close(&out)
            }
            object.key("name", &self); string(b.name)
            object.key("overage_seconds", &self); int(b.overageSeconds)
            object.key("percent_used", &self); raw(BalanceJSON.number(b.percentUsed))
            if let end = b.periodEnd { object.key("period_end", &self); string(end) }
            object.key("period_key", &self); string(b.periodKey)
            object.key("period_start", &self); string(b.periodStart)
            object.key("quota_seconds", &self); int(b.quotaSeconds)
            object.key("raw_seconds", &self); int(b.rawSeconds)
            object.key("remaining_seconds", &self); int(b.remainingSeconds)
            object.key("timezone", &self); string(b.timezone)
            object.key("top_up_seconds", &self); int(b.topUpSeconds)
            object.key("used_seconds", &self); int(b.usedSeconds)
            object.close(&self)
        }

        /// `[`, each element on its own line one level in, `]`; an empty array as the encoder writes it.
        mutating func array<T>(_ elements: [T], indent: Int, _ element: (inout Writer, T, Int) -> Void) {
            bytes.append(UInt8(ascii: "["))
            if elements.isEmpty { bytes.append(UInt8(ascii: "\n")) }
            for (index, value) in elements.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                bytes.append(UInt8(ascii: "\n"))
                pad(indent + 1)
                element(&self, value, indent + 1)
            }
            bytes.append(UInt8(ascii: "\n"))
            pad(indent)
            bytes.append(UInt8(ascii: "]"))
        }

        mutating func pad(_ level: Int) { bytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: 2 * level)) }

        mutating func raw(_ text: String) { bytes.append(contentsOf: text.utf8) }

        mutating func bool(_ value: Bool) { raw(value ? "true" : "false") }

        mutating func int(_ value: Int) { JSONText.appendInt(value, to: &bytes) }

        mutating func string(_ value: String) { JSONText.appendString(value, to: &bytes) }
    }

    /// The keys of one object at `indent`, each after a comma but the first, and its closing brace.
    struct ObjectWriter {
        let indent: Int
        var first = true

        init(indent: Int) { self.indent = indent }

        mutating func key(_ name: StaticString, _ out: inout Writer) {
            out.bytes.append(first ? UInt8(ascii: "{") : UInt8(ascii: ","))
            out.bytes.append(UInt8(ascii: "\n"))
            first = false
            out.pad(indent + 1)
            out.bytes.append(UInt8(ascii: "\""))
            out.bytes.append(contentsOf: UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
            out.raw("\" : ")
        }

        func close(_ out: inout Writer) {
            out.bytes.append(UInt8(ascii: "\n"))
            out.pad(indent)
            out.bytes.append(UInt8(ascii: "}"))
        }
    }
}
