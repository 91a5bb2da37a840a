import HourLedgerUseCases

/// The HTML GLPI and iTop store task and note text in.
public enum HelpdeskMarkup {
    /// `&`, `<` and `>` escaped, as both helpdesks store them.
    public static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    /// A note as one HTML paragraph: the marker, then the text.
    public static func paragraph(_ note: HelpdeskNote) -> String {
        "<p>" + escape(note.marker + " " + note.text) + "</p>"
    }
}
