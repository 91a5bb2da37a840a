import Foundation

/// A whole ledger's rows, table by table, as one store gives them to another (`hourledger migrate --from-sqlite`).
/// Values keep the store's own types: whole numbers, text, or nothing; no instant or amount is re-encoded on the way.
public struct LedgerTable: Sendable {
    public enum Value: Sendable, Equatable {
        case integer(Int64), text(String), real(Double), null
    }

    public let name: String
    public let columns: [String]
    public var rows: [[Value]]

    public init(name: String, columns: [String], rows: [[Value]]) {
        self.name = name
        self.columns = columns
        self.rows = rows
    }

    /// Every table of a ledger, in an order that inserts a row only after the rows it refers to.
    public static let names = ["sync_state", "ticket", "entry", "balance", "contract_move", "timer", "outbox", "audit", "api_token",
                               "block_movement", "ledger_dirty", "alert", "alert_delivery", "ticket_hint", "webhook_delivery", "ticket_failure",
                               "top_up", "book_record", "balance_revision", "ledger_count"]
}
