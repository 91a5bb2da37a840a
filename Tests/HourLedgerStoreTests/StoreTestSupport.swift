import Foundation
import GRDB
import HourLedgerCore
@testable import HourLedgerStore
import HourLedgerUseCases

/// The words and statuses of a helpdesk as the store tests need them: the store knows no helpdesk, so the tests
/// give it GLPI's shape without importing GLPI's adapter.
let testTerms = HelpdeskTerms(entity: "entity", group: "group", category: "category", query: "query", entities: "entities")
let testProfile = HelpdeskProfile(kind: .glpi, terms: testTerms, finishedStatuses: [5, 6], vanished: .purged, taskReference: "glpi_task")

/// The use cases on the SQLite file at `path`.
func sqliteLedger(path: String, contracts: [Contract]) throws -> Ledger {
    Ledger(repository: try SQLiteLedger(path: path), profile: testProfile, book: ContractBook(contracts))
}

/// A ledger file as an older version left it: the schema up to `migration`, then `body`'s rows, then closed.
func oldLedgerFile(at path: String, upTo migration: String, _ body: @escaping @Sendable (Database) throws -> Void) async throws {
    let old = try DatabaseQueue(path: path)
    try Migrations.migrator.migrate(old, upTo: migration)
    try await old.write(body)
    try old.close()
}
