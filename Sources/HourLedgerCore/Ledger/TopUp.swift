import Foundation

/// Hours a manager sold on top of a block's quota (a purchase order, an emergency pack). Each is its own audited ledger
/// line: usable from the period it was added in, after that period's quota and carried-over hours, and kept from period
/// to period until used or until the period holding its expiry day ends. A line is never edited; a mistaken one is
/// voided with a reason and stays on record.
public struct TopUp: Sendable, Equatable, Encodable {
    public var id: Int64
    public var contractID: String
    public var seconds: Int
    /// What the purchase was (a PO number, a ticket); shown on statements and the invoice's purchase line.
    public var note: String
    /// Minor units invoiced for the purchase; nil means the hours at the contract's overage rate.
    public var price: Int?
    /// The last day the hours may be used, in the contract's time zone; they lapse when the period holding it ends.
    public var expires: CivilDate?
    public var addedAt: Date
    public var addedBy: String
    public var voidedAt: Date?
    public var voidedBy: String?
    public var voidReason: String?

    public init(id: Int64 = 0, contractID: String, seconds: Int, note: String, price: Int? = nil, expires: CivilDate? = nil, addedAt: Date,
                addedBy: String, voidedAt: Date? = nil, voidedBy: String? = nil, voidReason: String? = nil) {
        self.id = id
        self.contractID = contractID
        self.seconds = seconds
        self.note = note
        self.price = price
        self.expires = expires
        self.addedAt = addedAt
        self.addedBy = addedBy
        self.voidedAt = voidedAt
        self.voidedBy = voidedBy
        self.voidReason = voidReason
    }

    enum CodingKeys: String, CodingKey {
        case id, seconds, note, price, expires
        case contractID = "contract_id", addedAt = "added_at", addedBy = "added_by", voidedAt = "voided_at", voidedBy = "voided_by"
        case voidReason = "void_reason"
    }

    /// As the API shows it: the expiry as the contract's own day, `YYYY-MM-DD`.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(contractID, forKey: .contractID)
        try c.encode(seconds, forKey: .seconds)
        try c.encode(note, forKey: .note)
        try c.encodeIfPresent(price, forKey: .price)
        try c.encodeIfPresent(expires?.description, forKey: .expires)
        try c.encode(addedAt, forKey: .addedAt)
        try c.encode(addedBy, forKey: .addedBy)
        try c.encodeIfPresent(voidedAt, forKey: .voidedAt)
        try c.encodeIfPresent(voidedBy, forKey: .voidedBy)
        try c.encodeIfPresent(voidReason, forKey: .voidReason)
    }

    /// The name its movements and invoice line carry: `top-up-<id>`.
    public var ref: String { "top-up-\(id)" }

    /// How it reads on a statement: `top-up #3 (PO 4711)`.
    public var label: String { "top-up #\(id)" + (note.isEmpty ? "" : " (\(note))") }

    /// The index of the first period of `periods` whose hours this top-up adds to: the one it was added in, or the
    /// first if it was added before the contract began; nil if it was added after the contract's last period.
    public func firstPeriodIndex(_ periods: PeriodCalculator) -> Int? {
        periods.index(containing: addedAt) ?? (addedAt < periods.period(index: 0).start ? 0 : nil)
    }
}
