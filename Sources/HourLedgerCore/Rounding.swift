/// How raw seconds become billed seconds. Applied once per entry, never to sums.
public struct RoundingPolicy: Sendable, Equatable, Codable, CustomStringConvertible {
    public enum Mode: String, Sendable, Codable, CaseIterable {
        case up, nearest, none
    }

    public var incrementSeconds: Int
    public var mode: Mode
    /// Any non-zero entry is billed at least this much.
    public var minimumSeconds: Int

    public static let none = RoundingPolicy(incrementSeconds: 0, mode: .none)

    public init(incrementSeconds: Int, mode: Mode, minimumSeconds: Int = 0) {
        self.incrementSeconds = incrementSeconds
        self.mode = mode
        self.minimumSeconds = minimumSeconds
    }

    public func billedSeconds(forRaw raw: Int) -> Int {
        guard raw > 0 else { return 0 }
        var billed = raw
        // Durations are bounded where they enter; this keeps a damaged value from trapping all the same.
        if incrementSeconds > 0, raw <= Int.max / 2 {
            switch mode {
            case .up:
                billed = (raw + incrementSeconds - 1) / incrementSeconds * incrementSeconds
            case .nearest:
                // Half an increment rounds up: 7:30 on a 15-minute increment bills 15:00.
                billed = (raw + incrementSeconds / 2) / incrementSeconds * incrementSeconds
            case .none:
                billed = raw
            }
        }
        return max(billed, minimumSeconds)
    }

    /// How people say it: "up to 15 min", "to the nearest 15 min, at least 30 min".
    public var spoken: String {
        let minimum = minimumSeconds > 0 ? "at least \(minimumSeconds / 60) min" : ""
        switch mode {
        case .none: return minimum.isEmpty ? "not" : minimum
        case .up: return "up to \(incrementSeconds / 60) min" + (minimum.isEmpty ? "" : ", " + minimum)
        case .nearest: return "to the nearest \(incrementSeconds / 60) min" + (minimum.isEmpty ? "" : ", " + minimum)
        }
    }

    /// Stored next to each entry so a balance can be explained after the config changes.
    public var description: String {
        switch mode {
        case .none where minimumSeconds == 0: return "none"
        case .none: return "none,min=\(minimumSeconds)s"
        default:
            return "\(mode.rawValue)/\(incrementSeconds)s" + (minimumSeconds > 0 ? ",min=\(minimumSeconds)s" : "")
        }
    }
}
