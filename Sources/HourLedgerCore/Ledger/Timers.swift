import Foundation

/// A timer as stored, with its owner and ticket.
public struct TimerRecord: Sendable, Equatable, Codable {
    public var id: Int64
    public var technician: Int
    public var ticketID: Int
    public var state: TimerState
    public var startedAt: Date
    public var entryID: Int64?

    public init(id: Int64, technician: Int, ticketID: Int, state: TimerState, startedAt: Date, entryID: Int64?) {
        self.id = id
        self.technician = technician
        self.ticketID = ticketID
        self.state = state
        self.startedAt = startedAt
        self.entryID = entryID
    }
}

/// What a person does with a running or paused timer.
public enum TimerAction: String, Sendable, CaseIterable { case pause, resume, stop }
