import Foundation
import TestKit
import HourLedgerCore
import Testing

@Suite struct TimerStateTests {
    let t0 = Date.utc("2026-11-21 09:00:00")

    @Test func segmentsAddUpAcrossPauseAndResume() throws {
        var timer = TimerState.started(at: t0)
        timer = try timer.pause(at: t0.addingTimeInterval(600))
        #expect(timer.status == .paused && timer.elapsedSeconds(at: t0.addingTimeInterval(5000)) == 600)
        timer = try timer.resume(at: t0.addingTimeInterval(1000))
        #expect(timer.elapsedSeconds(at: t0.addingTimeInterval(1030)) == 630)
        timer = try timer.stop(at: t0.addingTimeInterval(1299.9))
        #expect(timer.status == .stopped)
        #expect(timer.segments.map(\.seconds) == [600, 299])
        #expect(timer.elapsedSeconds(at: t0.addingTimeInterval(99999)) == 899)
    }

    @Test func everyInvalidTransitionIsRefused() throws {
        let running = TimerState.started(at: t0)
        let paused = try running.pause(at: t0)
        let stopped = try running.stop(at: t0)
        #expect(throws: TimerError(from: .running, action: "resume")) { try running.resume(at: t0) }
        #expect(throws: TimerError(from: .paused, action: "pause")) { try paused.pause(at: t0) }
        #expect(throws: TimerError(from: .stopped, action: "pause")) { try stopped.pause(at: t0) }
        #expect(throws: TimerError(from: .stopped, action: "resume")) { try stopped.resume(at: t0) }
        #expect(throws: TimerError(from: .stopped, action: "stop")) { try stopped.stop(at: t0) }
        // Stopping a paused timer adds no time.
        #expect(try paused.stop(at: t0.addingTimeInterval(3600)).elapsedSeconds(at: t0.addingTimeInterval(3600)) == 0)
    }

    @Test func aZeroLengthTimerIsZeroSeconds() throws {
        #expect(try TimerState.started(at: t0).stop(at: t0).elapsedSeconds(at: t0) == 0)
        // A clock that steps back never makes a negative segment.
        #expect(try TimerState.started(at: t0).stop(at: t0.addingTimeInterval(-30)).elapsedSeconds(at: t0) == 0)
    }

    @Test func aForgottenTimerIsPausedAtTheCapAndFlagged() throws {
        let timer = TimerState.started(at: t0)
        #expect(timer.applyingCap(maxRunningSeconds: 36000, at: t0.addingTimeInterval(36000)) == nil)
        let capped = try #require(timer.applyingCap(maxRunningSeconds: 36000, at: t0.addingTimeInterval(340 * 3600)))
        #expect(capped.status == .paused && capped.needsReview)
        #expect(capped.elapsedSeconds(at: t0.addingTimeInterval(400 * 3600)) == 36000)
        let resumed = try capped.resume(at: t0.addingTimeInterval(341 * 3600))
        #expect(!resumed.needsReview)
        #expect(capped.reviewReason == .cap && resumed.reviewReason == nil)
    }

    /// A timer running when its ticket was solved stops counting at the solution, not when the sync saw it; one that
    /// started after the solution counts nothing until a person resumes it. Either way it waits for review.
    @Test func aTimerIsPausedWhereItsTicketWasSolvedAndFlagged() throws {
        let timer = try TimerState.started(at: t0).pause(at: t0.addingTimeInterval(100)).resume(at: t0.addingTimeInterval(200))
        let paused = try #require(timer.pausingForClosedTicket(closedAt: t0.addingTimeInterval(1200.9)))
        #expect(paused.status == .paused && paused.needsReview && paused.reviewReason == .ticketClosed)
        #expect(paused.elapsedSeconds(at: t0.addingTimeInterval(9999)) == 100 + 1000)
        #expect(paused.pausingForClosedTicket(closedAt: t0) == nil)
        let late = try #require(TimerState.started(at: t0).pausingForClosedTicket(closedAt: t0.addingTimeInterval(-60)))
        #expect(late.elapsedSeconds(at: t0.addingTimeInterval(9999)) == 0 && late.needsReview)
        let resumed = try paused.resume(at: t0.addingTimeInterval(5000))
        #expect(!resumed.needsReview && resumed.reviewReason == nil)
        // A timer stored before the reason was kept reads back as flagged, with no reason.
        let old = try JSONDecoder().decode(TimerState.self, from: Data(#"{"status":"paused","segments":[],"needsReview":true}"#.utf8))
        #expect(old.needsReview && old.reviewReason == nil)
    }
}
