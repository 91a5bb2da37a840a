import Foundation
import HourLedgerCore

extension Ledger {
    /// Every top-up of `contractID` (or of every contract), voided ones included, oldest first.
    public func topUps(contractID: String? = nil) throws -> [TopUp] { try read { try $0.topUps(contractID: contractID) } }

    /// Adds purchased hours to a block contract, as its own audited line, usable from the period running now (the
    /// first, before the contract begins). Alerts are brought up to date at once: a block that was at 95 % may be at
    /// 60 % now, and a threshold it crosses again later fires only once per period as always.
    public func addTopUp(contractID: String, seconds: Int, note: String, price: Int? = nil, expires: CivilDate? = nil, actor: String,
                         now: Date? = nil) async throws -> TopUp {
        let now = now ?? clock.now()
        let contract = try Self.topUpContract(contracts, contractID)
        guard Bounds.topUpSeconds.contains(seconds) else {
            throw LedgerError(code: .invalid, field: "seconds", message: "a top-up must be between 1 second and 100000 hours, got \(seconds) s")
        }
        let note = note.trimmingCharacters(in: .whitespaces)
        guard (1...200).contains(note.count), !note.contains(where: \.isNewline) else {
            throw LedgerError(code: .invalid, field: "note", message: "a top-up needs a note of one line, 1 to 200 characters (what was bought: a PO, an order)")
        }
        if let price, !Bounds.topUpPrice.contains(price) {
            throw LedgerError(code: .invalid, field: "price", message: "the price must be between 0 and \(Bounds.topUpPrice.upperBound) minor units, got \(price)")
        }
        let calendar = contract.calendar
        let periods = PeriodCalculator(kind: contract.period, starts: contract.starts, expires: contract.expires, calendar: calendar)
        guard periods.index(containing: now) != nil || now < periods.period(index: 0).start else {
            throw LedgerError(code: .invalid, field: "contract", message: "contract \(contract.id) has ended\(contract.expires.map { " (on \($0))" } ?? ""): it has no period to add hours to")
        }
        if let expires {
            let today = calendar.dateComponents([.year, .month, .day], from: now)
            let first = max(CivilDate(year: today.year!, month: today.month!, day: today.day!), contract.starts)
            guard expires >= first, Bounds.configYears.contains(expires.year) else {
                throw LedgerError(code: .invalid, field: "expires", message: "a top-up's expiry must be a day from \(first) on (in \(contract.timeZone)) and before 2200, got \(expires)")
            }
        }
        let topUp = TopUp(contractID: contract.id, seconds: seconds, note: note, price: price, expires: expires, addedAt: now, addedBy: actor)
        let stored = try await write { tx -> TopUp in
            var stored = topUp
            stored.id = try tx.insertTopUp(topUp)
            stored.addedAt = Date(timeIntervalSince1970: TimeInterval(Int(now.timeIntervalSince1970)))
            try tx.insertAudit(AuditRecord(at: now, actor: actor, entryKey: stored.ref, ticketID: 0, contractID: contract.id, field: "top_up",
                                           oldValue: nil, newValue: Self.topUpWords(stored), reason: note))
            return stored
        }
        logger.notice("top-up added", metadata: ["contract": "\(contract.id)", "top_up": "\(stored.id)", "seconds": "\(seconds)", "by": "\(actor)"])
        _ = try? await settle(now: now)
        return stored
    }

    /// Voids a mistaken top-up: its hours stop counting at once (a period already closed is worked out again, as a late
    /// edit would), and the line stays on record with who voided it and why.
    public func voidTopUp(id: Int64, reason: String, actor: String, now: Date? = nil) async throws -> TopUp {
        let now = now ?? clock.now()
        let reason = reason.trimmingCharacters(in: .whitespaces)
        guard (1...500).contains(reason.count) else {
            throw LedgerError(code: .invalid, field: "reason", message: "voiding a top-up needs a reason of 1 to 500 characters")
        }
        let voided = try await write { tx -> TopUp in
            guard var topUp = try tx.topUps(contractID: nil).first(where: { $0.id == id }) else {
                throw LedgerError(code: .unknownTopUp, field: "id", message: "no top-up \(id)")
            }
            guard try tx.voidTopUp(id: id, at: now, by: actor, reason: reason) else {
                throw LedgerError(code: .transition, field: "id", message: "top-up \(id) was already voided")
            }
            topUp.voidedAt = Date(timeIntervalSince1970: TimeInterval(Int(now.timeIntervalSince1970)))
            topUp.voidedBy = actor
            topUp.voidReason = reason
            try tx.insertAudit(AuditRecord(at: now, actor: actor, entryKey: topUp.ref, ticketID: 0, contractID: topUp.contractID,
                                           field: "top_up_voided", oldValue: Self.topUpWords(topUp), newValue: nil, reason: reason))
            return topUp
        }
        logger.notice("top-up voided", metadata: ["contract": "\(voided.contractID)", "top_up": "\(id)", "by": "\(actor)"])
        _ = try? await settle(now: now)
        return voided
    }

    static func topUpContract(_ contracts: [Contract], _ id: String) throws -> Contract {
        guard let contract = contracts.first(where: { $0.id == id }) else {
            throw LedgerError(code: .unknownContract, field: "contract", message: "no contract '\(id)' in the configuration")
        }
        guard contract.billing.mode == .block else {
            throw LedgerError(code: .invalid, field: "contract", message: "contract \(id) is billed \(contract.billing.mode.rawValue): only a block contract has hours to top up")
        }
        return contract
    }

    /// The audit trail's words for a top-up: `10:00 h, usable through 2027-03-31, price 95000`.
    static func topUpWords(_ topUp: TopUp) -> String {
        "\(HoursText.precise(topUp.seconds)) h" + (topUp.expires.map { ", usable through \($0)" } ?? "") + (topUp.price.map { ", price \($0)" } ?? "")
    }
}
