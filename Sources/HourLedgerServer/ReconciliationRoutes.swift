import Foundation
import HourLedgerCore
import HourLedgerUseCases
import Hummingbird

/// The ledger against the helpdesk's own figures: the last nightly comparison, or one run now (manager role).
public enum ReconciliationRoutes {
    /// Registers on the authenticated API group (`/api/v1`).
    public static func register(on router: some RouterMethods<LedgerRequestContext>, context api: LedgerAPIContext) {
        router.get("reconciliation") { _, context in
            try await WorkRoutes.handle {
                try context.caller(atLeast: .manager, for: "reconciliation")
                guard let last = try api.engine.lastReconciliation() else {
                    throw APIFailure(.notFound, "no reconciliation has run yet: POST /api/v1/reconciliation runs one", field: "reconciliation")
                }
                return try JSONBody.response(last)
            }
        }
        router.post("reconciliation") { _, context in
            try await WorkRoutes.handle {
                try context.caller(atLeast: .manager, for: "reconciliation")
                guard let result = try await api.engine.reconcile() else {
                    throw APIFailure(.notFound, "\(api.helpdeskKind.rawValue) keeps no time total per ticket to reconcile against",
                                     field: "reconciliation")
                }
                return try JSONBody.response(result)
            }
        }
    }
}
