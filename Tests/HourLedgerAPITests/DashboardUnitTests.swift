import Foundation
import HourLedgerCore
import HourLedgerServer
import Testing

/// The dashboard's pieces that need no page: language, formats, sessions, sign-in limits.
@Suite struct DashboardUnitTests {
    @Test func theLanguageFollowsTheBrowsersPreference() {
        #expect(Language.preferred(nil) == .en)
        #expect(Language.preferred("fr-CH, fr;q=0.9, en;q=0.8") == .fr)
        #expect(Language.preferred("de-DE, en;q=0.5, fr;q=0.7") == .fr)
        #expect(Language.preferred("en-GB,fr;q=0.9") == .en)
        #expect(Language.preferred("fr;q=0, en") == .en)
        #expect(Language.preferred("de, it") == .en)
    }

    @Test func durationsReadHoursAndMinutesAndMoneyItsCurrency() {
        #expect(Formats.hours(0) == "0:00")
        #expect(Formats.hours(5400) == "1:30")
        #expect(Formats.hours(3599) == "0:59")      // seconds are not rounded up on the face
        #expect(Formats.hours(-4500) == "-1:15")
        #expect(Formats.hours(360_000) == "100:00")
        #expect(Formats(language: .en).money(123_450, currency: "EUR") == "€1,234.50")
        #expect(Formats(language: .fr).money(123_450, currency: "EUR").filter { !$0.isWhitespace } == "1234,50€")
        #expect(Formats(language: .en).money(1234, currency: "JPY") == "¥1,234")   // no minor unit
        #expect(Formats(language: .en).money(1234, currency: "KWD").contains("1.234"))   // three digits
        let paris = TimeZone(identifier: "Europe/Paris")!
        // 23:30 UTC on 30 November is already 1 December in Paris.
        #expect(Formats(language: .en).day(Date(timeIntervalSince1970: 1_796_081_400), timeZone: paris) == "Dec 1, 2026")
    }

    @Test func aSessionEndsWhenIdleOrTooOldAndOnlyItsHashIsKept() {
        let store = SessionStore(idleSeconds: 60, maxSeconds: 300)
        let person = HelpdeskPerson(login: "a", userID: 1, displayName: "A", profiles: [], entities: [1])
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        let (token, viewer) = store.start(person: person, role: nil, now: t0)
        #expect(token.count >= 43 && viewer.csrfToken.count >= 43 && token != viewer.csrfToken)
        #expect(store.viewer(token: token, now: t0.addingTimeInterval(59))?.person == person)
        #expect(store.viewer(token: token, now: t0.addingTimeInterval(118))?.person == person)   // each use renews the idle time
        #expect(store.viewer(token: token, now: t0.addingTimeInterval(179)) == nil)              // idle for 61 s
        let (second, _) = store.start(person: person, role: nil, now: t0)
        for minute in 1...4 { #expect(store.viewer(token: second, now: t0.addingTimeInterval(Double(minute * 55))) != nil) }
        #expect(store.viewer(token: second, now: t0.addingTimeInterval(301)) == nil)              // past the lifetime, used or not
        #expect(store.viewer(token: "guess", now: t0) == nil)
        let (third, _) = store.start(person: person, role: nil, now: t0)
        store.end(token: third)
        #expect(store.viewer(token: third, now: t0) == nil)
    }

    @Test func failuresLockALoginAndAnAddressForTheWindow() {
        let limiter = SignInLimiter(perLogin: 3, perAddress: 5, windowSeconds: 600)
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        for _ in 0..<3 { limiter.failed(login: "Carol", address: "10.0.0.1", now: t0) }
        #expect(!limiter.allows(login: "carol", address: "10.0.0.2", now: t0))       // the login, from anywhere
        #expect(limiter.allows(login: "bob", address: "10.0.0.1", now: t0))          // the address still has room
        for _ in 0..<2 { limiter.failed(login: "bob", address: "10.0.0.1", now: t0) }
        #expect(!limiter.allows(login: "dave", address: "10.0.0.1", now: t0))        // 5 from this address
        #expect(limiter.allows(login: "carol", address: "10.0.0.2", now: t0.addingTimeInterval(601)))
        limiter.failed(login: "erin", address: "10.0.0.9", now: t0)
        limiter.succeeded(login: "erin")
        for _ in 0..<2 { limiter.failed(login: "erin", address: "10.0.0.9", now: t0) }
        #expect(limiter.allows(login: "erin", address: "10.0.0.9", now: t0))         // a success forgot her earlier failure
    }
}
