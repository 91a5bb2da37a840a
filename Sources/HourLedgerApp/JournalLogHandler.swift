import Foundation
import Logging
import Synchronization

/// One line per log record, on stderr. Under systemd (`$JOURNAL_STREAM` set) each line starts with its syslog
/// priority (`<6>`), so journald files it at the right level; elsewhere it starts with a UTC timestamp. Newlines in
/// messages are escaped, and any configured secret that slips into a line is replaced by `[redacted]`.
public struct JournalLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let journal: Bool
    private let write: @Sendable (String) -> Void

    public init(label: String, journal: Bool = ProcessInfo.processInfo.environment["JOURNAL_STREAM"] != nil,
                write: @escaping @Sendable (String) -> Void = JournalLogHandler.standardError) {
        self.label = label
        self.journal = journal
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { $1 } }
        if let extra = event.metadata { all.merge(extra) { $1 } }
        var line = journal ? "<\(Self.priority(event.level))>" : Self.timestamp() + " "
        line += "\(event.level) \(label): \(event.message)"
        for key in all.keys.sorted() {
            line += " \(key)=\(Self.quoted("\(all[key]!)"))"
        }
        write(LogRedactor.shared.redact(Self.oneLine(line)) + "\n")
    }

    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    static func oneLine(_ text: String) -> String {
        guard text.contains(where: { $0.isNewline }) else { return text }
        return text.replacingOccurrences(of: "\r", with: "\\r").replacingOccurrences(of: "\n", with: "\\n")
    }

    static func quoted(_ value: String) -> String {
        value.isEmpty || value.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" })
            ? "\"" + value.replacingOccurrences(of: "\"", with: "\\\"") + "\"" : value
    }

    static func timestamp() -> String {
        Date().formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }

    public static let standardError: @Sendable (String) -> Void = { line in
        FileHandle.standardError.write(Data(line.utf8))
    }
}

/// The secret values loaded from the config, which no log line may show.
public final class LogRedactor: Sendable {
    public static let shared = LogRedactor()
    private let secrets = Mutex<[String]>([])

    /// Replaces the set (on start and on reload). Values under 6 characters are left alone: redacting them would
    /// mangle ordinary words.
    public func set(_ values: [String]) {
        let kept = Array(Set(values.filter { $0.count >= 6 })).sorted { $0.count > $1.count }
        secrets.withLock { $0 = kept }
    }

    public func redact(_ line: String) -> String {
        let secrets = secrets.withLock { $0 }
        var line = line
        for secret in secrets where line.contains(secret) {
            line = line.replacingOccurrences(of: secret, with: "[redacted]")
        }
        return line
    }
}
