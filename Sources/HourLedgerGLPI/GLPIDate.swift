import HourLedgerHelpdeskKit

/// GLPI's `Y-m-d H:i:s`, in the session's time zone.
public typealias GLPIDate = LocalStamp
