import Foundation
import HourLedgerCore

/// Contract balances as JSON, byte for byte what `JSONBody`'s encoder (sorted keys, pretty printed, slashes as they
/// are, ISO 8601 dates) writes for them. The contract list and `/status` hold one per contract: through JSONEncoder
/// a thousand took about 20 ms of CPU per read, forty times the work of reading them.
public enum BalanceJSON {
    /// The array, its brackets at `indent` levels of two spaces, as it stands after a key or alone.
    public static func array(_ balances: [ContractBalance], indent: Int = 0) -> String {
        guard !balances.isEmpty else { return "[\n\n" + pad(indent) + "]" }
        var out = "[\n"
        out.reserveCapacity(balances.count * 900)
        for (index, balance) in balances.enumerated() {
            out += pad(indent + 1)
            write(balance, indent: indent + 1, into: &out)
            out += index == balances.count - 1 ? "\n" : ",\n"
        }
        return out + pad(indent) + "]"
    }

    static func write(_ b: ContractBalance, indent: Int, into out: inout String) {
        var fields: [(String, String)] = [
            ("available_seconds", String(b.availableSeconds)), ("billing_mode", string(b.billingMode.rawValue)),
            ("carried_in_seconds", String(b.carriedInSeconds)), ("closed", String(b.closed)), ("entry_count", String(b.entryCount)),
            ("expired_seconds", String(b.expiredSeconds)), ("expiring_at_end_seconds", String(b.expiringAtEndSeconds)),
            ("id", string(b.id)), ("name", string(b.name)), ("overage_seconds", String(b.overageSeconds)),
            ("percent_used", number(b.percentUsed)), ("period_key", string(b.periodKey)), ("period_start", string(b.periodStart)),
            ("quota_seconds", String(b.quotaSeconds)), ("raw_seconds", String(b.rawSeconds)), ("remaining_seconds", String(b.remainingSeconds)),
            ("timezone", string(b.timezone)), ("used_seconds", String(b.usedSeconds)),
        ]
        if let end = b.periodEnd { fields.append(("period_end", string(end))) }
        if let forecast = b.forecast {
            var inner: [(String, String)] = [("already_depleted", String(forecast.alreadyDepleted)),
                                             ("burn_seconds_per_day", String(forecast.burnSecondsPerDay)),
                                             ("within_period", String(forecast.withinPeriod))]
            if let date = forecast.depletesAt { inner.append(("depletes_at", string(ISOStamp.string(date, in: utc)))) }
            fields.append(("forecast", object(inner, indent: indent + 1)))
        }
        let movements = b.movements.map { movement in
            object([("kind", string(movement.kind.rawValue)), ("origin_key", string(movement.originKey)),
                    ("period_key", string(movement.periodKey)), ("reason", string(movement.reason)), ("seconds", String(movement.seconds))],
                   indent: indent + 2)
        }
        fields.append(("movements", movements.isEmpty ? "[\n\n" + pad(indent + 1) + "]"
                       : "[\n" + movements.map { pad(indent + 2) + $0 }.joined(separator: ",\n") + "\n" + pad(indent + 1) + "]"))
        out += object(fields, indent: indent)
    }

    private static let utc = TimeZone(identifier: "UTC")!

    /// An object of already written values, keys sorted as JSONEncoder sorts them.
    private static func object(_ fields: [(String, String)], indent: Int) -> String {
        let sorted = fields.sorted { $0.0 < $1.0 }
        var out = "{\n"
        for (index, (key, value)) in sorted.enumerated() {
            out += pad(indent + 1) + "\"" + key + "\" : " + value + (index == sorted.count - 1 ? "\n" : ",\n")
        }
        return out + pad(indent) + "}"
    }

    private static func pad(_ level: Int) -> String { String(repeating: "  ", count: level) }

    /// A number as JSONEncoder writes a Double: the shortest digits that read back, without a trailing ".0".
    static func number(_ value: Double) -> String {
        var text = value.description
        if text.hasSuffix(".0") { text.removeLast(2) }
        return text
    }

    /// A JSON string: quotes, backslashes and control characters escaped, slashes and everything else as they are.
    static func string(_ value: String) -> String {
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
