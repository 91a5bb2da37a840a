import Foundation
import HourLedgerCore
import Synchronization

/// The dashboard's language, from the browser's `Accept-Language`: French or English.
public enum Language: String, Sendable, CaseIterable {
    case en, fr

    /// The first of English or French in the browser's order of preference (q-values honoured); English otherwise.
    public static func preferred(_ header: String?) -> Language {
        guard let header else { return .en }
        let ranked = header.split(separator: ",").prefix(32).compactMap { part -> (tag: String, q: Double)? in
            let pieces = part.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            guard let tag = pieces.first?.lowercased(), !tag.isEmpty else { return nil }
            let q = pieces.dropFirst().first { $0.hasPrefix("q=") }.flatMap { Double($0.dropFirst(2)) } ?? 1
            return (tag, q)
        }
        for (tag, q) in ranked.enumerated().sorted(by: { ($0.element.q, -$0.offset) > ($1.element.q, -$1.offset) }).map(\.element) where q > 0 {
            let primary = tag.split(separator: "-").first.map(String.init) ?? tag
            if let language = Language(rawValue: primary) { return language }
        }
        return .en
    }

    var locale: Locale { Locale(identifier: self == .fr ? "fr_FR" : "en_US") }
}

/// How figures read on the dashboard: durations as h:mm, money with its currency, days in the contract's time zone.
public struct Formats: Sendable {
    public var language: Language

    public init(language: Language) { self.language = language }

    /// 5400 → "1:30"; negative durations (an overage) keep their sign.
    public static func hours(_ seconds: Int) -> String {
        let sign = seconds < 0 ? "-" : ""
        let magnitude = seconds.magnitude
        let minutes = (magnitude % 3600) / 60
        return "\(sign)\(magnitude / 3600):\(minutes < 10 ? "0" : "")\(minutes)"
    }

    /// Integer minor units in the currency's own format: 123450 EUR → "€1,234.50" or "1 234,50 €".
    public func money(_ minor: Int, currency: String) -> String {
        let formatter = NumberFormatter()
        formatter.numberStyle = .currency
        formatter.locale = language.locale
        formatter.currencyCode = currency
        // Foundation on Linux keeps two fraction digits whatever the currency: the minor unit comes from ISO 4217.
        let digits = Self.minorDigits(currency)
        formatter.minimumFractionDigits = digits
        formatter.maximumFractionDigits = digits
        var scale = Decimal(1)
        for _ in 0..<digits { scale *= 10 }
        let amount = Decimal(minor) / scale
        return formatter.string(from: amount as NSDecimalNumber) ?? "\(amount) \(currency)"
    }

    /// An amount typed in major units (`600`, `600.50`, `600,50`) as integer minor units of `currency`; nil when it is
    /// not a plain amount with at most the currency's own decimals.
    public static func minorUnits(parsing text: String, currency: String) -> Int? {
        let digits = minorDigits(currency)
        let parts = text.replacingOccurrences(of: ",", with: ".").split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), !parts[0].isEmpty, parts[0].count <= 12, parts.allSatisfy({ $0.allSatisfy { $0.isASCII && $0.isNumber } }),
              let whole = Int(parts[0]) else { return nil }
        let fraction = parts.count == 2 ? String(parts[1]) : ""
        guard fraction.count <= digits, parts.count == 1 || !fraction.isEmpty else { return nil }
        var scale = 1
        for _ in 0..<digits { scale *= 10 }
        let padded = fraction + String(repeating: "0", count: digits - fraction.count)
        return whole * scale + (Int(padded) ?? 0)
    }

    /// Digits of the minor unit (ISO 4217): 0 for the yen, 3 for the dinars, 2 for the rest.
    public static func minorDigits(_ currency: String) -> Int {
        if ["BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"].contains(currency) {
            return 0
        }
        return ["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"].contains(currency) ? 3 : 2
    }

    public func day(_ date: Date, timeZone: TimeZone) -> String { format(date, timeZone, time: .none) }

    public func dayAndTime(_ date: Date, timeZone: TimeZone) -> String { format(date, timeZone, time: .short) }

    private func format(_ date: Date, _ timeZone: TimeZone, time: DateFormatter.Style) -> String {
        let key = "\(language.rawValue) \(time.rawValue) \(timeZone.identifier)"
        return Self.dateFormatters.withLock { formatters in
            if let formatter = formatters[key] { return formatter.string(from: date) }
            let formatter = DateFormatter()
            formatter.locale = language.locale
            formatter.timeZone = timeZone
            formatter.dateStyle = .medium
            formatter.timeStyle = time
            if formatters.count >= 256 { formatters = [:] }
            formatters[key] = formatter
            return formatter.string(from: date)
        }
    }

    /// Made once per language, style and zone, and used under the lock: a new DateFormatter per date cost a page of
    /// 24 contract cards most of its time.
    private static let dateFormatters = Mutex<[String: DateFormatter]>([:])

    public func percent(_ value: Double) -> String { String(format: "%.0f %%", value).replacingOccurrences(of: " %", with: language == .fr ? "\u{202F}%" : "%") }
}

/// A contract period's burn chart as inline SVG, drawn on the server: hours used over the period against the hours
/// available, with the forecast to depletion. Labelled for screen readers by its title and description.
enum BurnChart {
    static func svg(points: [(at: Date, usedSeconds: Int)], start: Date, end: Date, now: Date, availableSeconds: Int,
                    depletesAt: Date?, title: String, description: String) -> String {
        let width = 600.0, height = 220.0, left = 44.0, bottom = 24.0, top = 10.0, right = 10.0
        let span = max(1, end.timeIntervalSince(start))
        let peak = max(Double(availableSeconds), Double(points.last?.usedSeconds ?? 0), 3600) * 1.1
        func x(_ date: Date) -> Double { left + (width - left - right) * min(1, max(0, date.timeIntervalSince(start) / span)) }
        func y(_ seconds: Double) -> Double { height - bottom - (height - bottom - top) * min(1, seconds / peak) }
        var path = "M\(f(x(start))),\(f(y(0)))"
        for point in points {
            path += " L\(f(x(point.at))),\(f(y(Double(point.usedSeconds))))"
        }
        let used = Double(points.last?.usedSeconds ?? 0)
        let last = min(now, end)
        path += " L\(f(x(last))),\(f(y(used)))"
        var svg = "<svg class=\"burn\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-labelledby=\"burn-title burn-desc\" preserveAspectRatio=\"none\">"
        svg += "<title id=\"burn-title\">\(escape(title))</title><desc id=\"burn-desc\">\(escape(description))</desc>"
        svg += "<line class=\"axis\" x1=\"\(f(left))\" y1=\"\(f(y(0)))\" x2=\"\(f(width - right))\" y2=\"\(f(y(0)))\"/>"
        svg += "<line class=\"quota\" x1=\"\(f(left))\" y1=\"\(f(y(Double(availableSeconds))))\" x2=\"\(f(width - right))\" y2=\"\(f(y(Double(availableSeconds))))\"/>"
        svg += "<text class=\"label\" x=\"2\" y=\"\(f(y(Double(availableSeconds)) + 4))\">\(Formats.hours(availableSeconds))</text>"
        svg += "<text class=\"label\" x=\"2\" y=\"\(f(y(0)))\">0:00</text>"
        svg += "<path class=\"used\" d=\"\(path)\"/>"
        if let depletesAt, depletesAt > now {
            svg += "<line class=\"forecast\" x1=\"\(f(x(last)))\" y1=\"\(f(y(used)))\" x2=\"\(f(x(min(depletesAt, end))))\" y2=\"\(f(y(depletesAt > end ? used + (Double(availableSeconds) - used) * span / max(1, depletesAt.timeIntervalSince(last)) * end.timeIntervalSince(last) / span : Double(availableSeconds))))\"/>"
        }
        if now > start, now < end {
            svg += "<line class=\"today\" x1=\"\(f(x(now)))\" y1=\"\(f(top))\" x2=\"\(f(x(now)))\" y2=\"\(f(y(0)))\"/>"
        }
        return svg + "</svg>"
    }

    /// To the nearest tenth, as `%.1f` writes it but for a tie at a decimal's last digit (0.1 px): a card's chart has
    /// a hundred points, and `String(format:)` cost more than everything else on the card.
    static func f(_ value: Double) -> String {
        guard value.isFinite else { return "0.0" }
        let tenths = Int((value * 10).rounded(.toNearestOrEven))
        let whole = abs(tenths) / 10
        return (value < 0 ? "-" : "") + String(whole) + "." + String(abs(tenths) % 10)
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;")
    }
}
