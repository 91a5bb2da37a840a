import Foundation

/// A contract as the helpdesk keeps it (a GLPI `Contract`, an iTop `CustomerContract`): who has one, since when and
/// until when. The helpdesk stays the record of that; HourLedger adds the terms (hours, rounding, billing).
public struct HelpdeskContract: Sendable, Equatable, Codable {
    public var id: Int
    /// As people read it (decoded once from GLPI's stored form).
    public var name: String
    /// GLPI's contract number; empty on iTop.
    public var number: String
    /// The contract type's name, as the helpdesk shows it: what `by_type` terms are keyed by.
    public var typeName: String
    /// The entity (GLPI) or organisation (iTop) it covers.
    public var scope: Int
    /// GLPI's "child entities": the contract covers the entities below its own.
    public var includeSubentities: Bool
    /// iTop's services of the contract (lnkCustomerContractToService); empty on GLPI.
    public var services: [Int]
    /// The first day covered; nil when the helpdesk has none (the contract is then not built).
    public var begins: CivilDate?
    /// The last day covered, inclusive; nil when it runs until it is ended in the helpdesk.
    public var ends: CivilDate?
    /// The helpdesk's periodicity in months (GLPI periodicity, iTop billing frequency); nil or 0 when it has none.
    public var periodMonths: Int?
    /// False for a contract the helpdesk lists but has retired (iTop status `obsolete`).
    public var inForce: Bool

    public init(id: Int, name: String, number: String = "", typeName: String, scope: Int, includeSubentities: Bool = false,
                services: [Int] = [], begins: CivilDate?, ends: CivilDate?, periodMonths: Int?, inForce: Bool = true) {
        self.id = id
        self.name = name
        self.number = number
        self.typeName = typeName
        self.scope = scope
        self.includeSubentities = includeSubentities
        self.services = services
        self.begins = begins
        self.ends = ends
        self.periodMonths = periodMonths
        self.inForce = inForce
    }
}

/// What HourLedger remembers of a helpdesk contract between polls: its last known state, and when it was first
/// seen ended (gone from the list, trashed, retired). The end stays put however many polls later it is read again,
/// and is lifted if the contract comes back. The contract covers the day it ended, in its own time zone.
public struct KnownHelpdeskContract: Sendable, Equatable, Codable {
    public var contract: HelpdeskContract
    public var endedAt: Date?

    public init(contract: HelpdeskContract, endedAt: Date? = nil) {
        self.contract = contract
        self.endedAt = endedAt
    }

    /// The list after a poll at `now` that read `listed`: new and changed contracts as listed, the missing and
    /// retired ones ended now unless they ended earlier.
    public static func merge(_ known: [KnownHelpdeskContract], listed: [HelpdeskContract], now: Date) -> [KnownHelpdeskContract] {
        let previous = Dictionary(known.map { ($0.contract.id, $0) }, uniquingKeysWith: { a, _ in a })
        var result: [Int: KnownHelpdeskContract] = [:]
        for contract in listed {
            let endedAt = contract.inForce ? nil : (previous[contract.id]?.endedAt ?? now)
            result[contract.id] = KnownHelpdeskContract(contract: contract, endedAt: endedAt)
        }
        for old in known where result[old.contract.id] == nil {
            result[old.contract.id] = KnownHelpdeskContract(contract: old.contract, endedAt: old.endedAt ?? now)
        }
        return result.values.sorted { $0.contract.id < $1.contract.id }
    }
}

/// The terms HourLedger adds to helpdesk contracts (`helpdesk_contracts` in the config): by contract id first, then
/// by contract type, then a default. A helpdesk contract with none of them is not billed here, and says why.
public struct HelpdeskContractTerms: Sendable, Equatable {
    /// A contract whose id, name, scope, start and end are filled in from the helpdesk. `period` is nil when the
    /// terms leave it to the helpdesk's periodicity.
    public struct Terms: Sendable, Equatable {
        public var template: Contract
        public var period: PeriodKind?
        /// The HourLedger id, when the file declares the contract by name (`itop_contract: 3` on a contract of the
        /// file); otherwise `glpi-<id>` or `itop-<id>`.
        public var id: String?

        public init(template: Contract, period: PeriodKind?, id: String? = nil) {
            self.template = template
            self.period = period
            self.id = id
        }
    }

    public var byID: [Int: Terms]
    public var byType: [String: Terms]
    public var fallback: Terms?

    public init(byID: [Int: Terms] = [:], byType: [String: Terms] = [:], fallback: Terms? = nil) {
        self.byID = byID
        self.byType = byType
        self.fallback = fallback
    }

    public var isEmpty: Bool { byID.isEmpty && byType.isEmpty && fallback == nil }

    /// The HourLedger id of helpdesk contract `id`: stable, so entries, top-ups and URLs keep pointing at it.
    public static func contractID(_ id: Int, prefix: String) -> String { "\(prefix)-\(id)" }

    /// The contracts these terms make of the helpdesk's, in force first (newest start first, so a renewal wins a tie
    /// over the contract it replaces), and why each of the others is not billed.
    /// `prefix` is `glpi` or `itop`; GLPI contracts also take the tickets linked to them by hand (`linked`).
    public func contracts(from known: [KnownHelpdeskContract], prefix: String, linked: Bool)
        -> (contracts: [Contract], skipped: [(id: Int, reason: String)])
    {
        var built: [(contract: Contract, ended: Bool)] = []
        var skipped: [(id: Int, reason: String)] = []
        for entry in known {
            let source = entry.contract
            guard let terms = byID[source.id] ?? byType[source.typeName] ?? fallback else {
                skipped.append((source.id, "no terms for it: add helpdesk_contracts.by_id.\(source.id) or by_type \"\(source.typeName)\""))
                continue
            }
            guard let begins = source.begins else {
                skipped.append((source.id, "it has no start date in the helpdesk"))
                continue
            }
            let period: PeriodKind
            if let given = terms.period {
                period = given
            } else {
                switch source.periodMonths ?? 0 {
                case 0, 1: period = .monthly
                case 3: period = .quarterly
                case 12: period = .yearly
                case let months:
                    skipped.append((source.id, "its periodicity is \(months) months; HourLedger counts monthly, quarterly or yearly periods: "
                                    + "give period in its terms"))
                    continue
                }
            }
            var contract = terms.template
            contract.id = terms.id ?? Self.contractID(source.id, prefix: prefix)
            contract.name = source.name.isEmpty ? contract.id : source.name
            contract.entity = source.scope
            contract.includeSubentities = source.includeSubentities
            contract.starts = begins
            contract.period = period
            let end = [source.ends, entry.endedAt.map { CivilDate($0, in: contract.calendar) }].compactMap { $0 }.min()
            if let end, end < begins {
                // Ended before it began (a contract trashed before its start): it never covered a day.
                skipped.append((source.id, "it ended (\(end)) before its start (\(begins))"))
                continue
            }
            contract.expires = end
            if linked { contract.match.linkedContract = source.id }
            if !source.services.isEmpty, contract.match.services == nil { contract.match.services = source.services.sorted() }
            built.append((contract, entry.endedAt != nil))
        }
        let ordered = built.sorted { a, b in
            a.ended != b.ended ? !a.ended : (a.contract.starts != b.contract.starts ? a.contract.starts > b.contract.starts : a.contract.id < b.contract.id)
        }
        return (ordered.map(\.contract), skipped)
    }
}

extension CivilDate {
    /// The day `months` calendar months later, clamped to the end of a shorter month (2026-01-31 + 1 is 2026-02-28).
    public func adding(months: Int) -> CivilDate {
        let index = year * 12 + (month - 1) + months
        let (y, m) = (index / 12, index % 12 + 1)
        var d = day
        while !CivilDate.isValid(year: y, month: m, day: d) { d -= 1 }
        return CivilDate(year: y, month: m, day: d)
    }

    /// The day before this one.
    public var dayBefore: CivilDate {
        if day > 1 { return CivilDate(year: year, month: month, day: day - 1) }
        let previous = CivilDate(year: year, month: month, day: 1).adding(months: -1)
        var d = 31
        while !CivilDate.isValid(year: previous.year, month: previous.month, day: d) { d -= 1 }
        return CivilDate(year: previous.year, month: previous.month, day: d)
    }

    /// The day `instant` falls on in `calendar`'s time zone.
    public init(_ instant: Date, in calendar: Calendar) {
        let parts = calendar.dateComponents([.year, .month, .day], from: instant)
        self.init(year: parts.year!, month: parts.month!, day: parts.day!)
    }
}
