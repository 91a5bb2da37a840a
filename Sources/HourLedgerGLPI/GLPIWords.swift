import HourLedgerCore
import HourLedgerHelpdeskKit

/// GLPI's `Y-m-d H:i:s`, in the session's time zone.
public typealias GLPIDate = LocalStamp

extension HelpdeskTerms {
    /// GLPI's words for what rules test.
    public static let glpi = HelpdeskTerms(entity: "entity", group: "group", category: "category", query: "GLPI criteria", entities: "entities")
}
