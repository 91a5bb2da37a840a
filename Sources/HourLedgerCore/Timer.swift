import Foundation

/// How an entry counts: billable and prepaid time draw from the contract's balance, internal time does not.
public enum EntryKind: String, Sendable, Codable, CaseIterable {
    case billable, `internal`, prepaid
    public var drawsFromBalance: Bool { self != .`internal` }
}

/// Where an entry stands on a contract that requires approval; only approved entries count.
public enum Approval: String, Sendable, Codable, CaseIterable {
    case pending, approved, rejected
}

/// A technician's server-side timer on one ticket, as a pure state machine. The clock is always the server's.
public struct TimerState: Sendable, Equatable, Codable {
    public enum Status: String, Sendable, Codable {
        case running, paused, stopped
    }

    /// A closed stretch of running time, in whole seconds since 1970.
    public struct Segment: Sendable, Equatable, Codable {
        public var start: Int
        public var end: Int
        public var seconds: Int { max(0, end - start) }
    }

    public private(set) var status: Status
    public private(set) var segments: [Segment]
    /// Set while running: the start of the open segment.
    public private(set) var runningSince: Int?
    /// Set when the timer was paused for its technician to look at before it is stopped: why, in `reviewReason`.
    public private(set) var needsReview: Bool
    /// Why the timer waits for review; nil on timers flagged before the reason was kept (the cap was the only one).
    public private(set) var reviewReason: ReviewReason?

    public enum ReviewReason: String, Sendable, Codable {
        /// It ran longer than the cap in one stretch.
        case cap
        /// Its ticket was solved or closed in the helpdesk while it ran.
        case ticketClosed = "ticket_closed"
    }

    public static func started(at now: Date) -> TimerState {
        TimerState(status: .running, segments: [], runningSince: Self.second(now), needsReview: false)
    }

    public init(status: Status, segments: [Segment], runningSince: Int?, needsReview: Bool, reviewReason: ReviewReason? = nil) {
        self.status = status
        self.segments = segments
        self.runningSince = runningSince
        self.needsReview = needsReview
        self.reviewReason = needsReview ? reviewReason : nil
    }

    static func second(_ date: Date) -> Int { Int(date.timeIntervalSince1970.rounded(.down)) }

    public func pause(at now: Date) throws(TimerError) -> TimerState {
        guard status == .running, let since = runningSince else { throw TimerError(from: status, action: "pause") }
        var next = self
        next.segments.append(Segment(start: since, end: max(since, Self.second(now))))
        next.runningSince = nil
        next.status = .paused
        return next
    }

    public func resume(at now: Date) throws(TimerError) -> TimerState {
        guard status == .paused else { throw TimerError(from: status, action: "resume") }
        var next = self
        next.runningSince = Self.second(now)
        next.status = .running
        next.needsReview = false
        next.reviewReason = nil
        return next
    }

    public func stop(at now: Date) throws(TimerError) -> TimerState {
        switch status {
        case .running:
            var next = try pause(at: now)
            next.status = .stopped
            return next
        case .paused:
            var next = self
            next.status = .stopped
            return next
        case .stopped:
            throw TimerError(from: status, action: "stop")
        }
    }

    /// Raw seconds: the sum of the running segments, including the open one up to `now`.
    public func elapsedSeconds(at now: Date) -> Int {
        segments.reduce(0) { $0 + $1.seconds } + (runningSince.map { max(0, Self.second(now) - $0) } ?? 0)
    }

    /// A timer left running longer than `maxRunningSeconds` in one stretch is paused at the cap and flagged,
    /// instead of billing the night. Returns nil when nothing needs to change.
    public func applyingCap(maxRunningSeconds: Int, at now: Date) -> TimerState? {
        guard status == .running, let since = runningSince, Self.second(now) - since > maxRunningSeconds else { return nil }
        var next = self
        next.segments.append(Segment(start: since, end: since + maxRunningSeconds))
        next.runningSince = nil
        next.status = .paused
        next.needsReview = true
        next.reviewReason = .cap
        return next
    }

    /// A timer still running when its ticket was solved or closed at `closedAt` stops counting then, and waits for
    /// its technician: the work after the solution may be real, but it is not billed without a person saying so.
    /// Returns nil when the timer is not running.
    public func pausingForClosedTicket(closedAt: Date) -> TimerState? {
        guard status == .running, let since = runningSince else { return nil }
        var next = self
        next.segments.append(Segment(start: since, end: max(since, Self.second(closedAt))))
        next.runningSince = nil
        next.status = .paused
        next.needsReview = true
        next.reviewReason = .ticketClosed
        return next
    }
}

public struct TimerError: Error, Equatable, CustomStringConvertible, Sendable {
    public let from: TimerState.Status
    public let action: String

    public init(from: TimerState.Status, action: String) {
        self.from = from
        self.action = action
    }

    public var description: String { "cannot \(action) a \(from.rawValue) timer" }
}
