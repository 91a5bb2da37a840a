import Foundation
import HourLedgerCore
import HourLedgerUseCases
import HTTPTypes
import Hummingbird

/// A technician's page: their open timers (ticking), start / pause / resume / stop, time logged by hand, their entries
/// of the week and their forgotten timers. A person acts only as themselves here; managers use it for their own time.
enum WorkPages {
    static func register(on pages: RouterGroup<LedgerRequestContext>, dashboard: Dashboard) {
        pages.page("/work", dashboard) { try work($0) }
        pages.form("/work/timers", dashboard, back: "/work", reshow: { try work($0) }) { visit, form in
            let viewer = try visit.staff()
            let ticket = try ticketNumber(form["ticket"], field: "ticket", visit)
            let (_, created) = try await dashboard.api.ledger.startTimer(technician: viewer.person.userID, ticketID: ticket)
            guard created else {
                throw PageFailure(status: .conflict, key: "timerOpen",
                                  detail: visit.language == .fr ? "Un chrono est déjà ouvert sur le ticket \(ticket)." : "A timer is already open on ticket \(ticket).")
            }
            return "timerStarted"
        }
        for action in TimerAction.allCases {
            pages.form("/work/timers/{id}/\(action.rawValue)", dashboard, back: "/work", reshow: { try work($0) }) { visit, form in
                let viewer = try visit.staff()
                guard let id = Int64(try visit.context.parameters.require("id")) else { throw PageFailure.notFound }
                var kind: EntryKind?
                var category: Int?
                let note = form["note"] ?? ""
                if action == .stop {
                    guard !note.isEmpty else {
                        throw PageFailure(status: .badRequest, key: "noteMissing",
                                          detail: visit.language == .fr ? "Écrivez une note pour arrêter le chrono." : "Write a note to stop the timer.")
                    }
                    kind = try entryKind(form["kind"], visit)
                    category = try optionalNumber(form["category"], field: "category", visit)
                }
                // Only the person's own timers: another's id answers as unknown.
                _ = try await dashboard.api.ledger.timerTransition(id: id, actingAs: viewer.person.userID, action: action, kind: kind, note: note,
                                                                   category: category, actor: viewer.person.login)
                return ["pause": "timerPaused", "resume": "timerResumed", "stop": "timerStopped"][action.rawValue]!
            }
        }
        pages.form("/work/entries", dashboard, back: "/work", reshow: { try work($0) }) { visit, form in
            let viewer = try visit.staff()
            let ticket = try ticketNumber(form["ticket"], field: "ticket", visit)
            let seconds = try duration(form["duration"], visit)
            let started = try start(day: form["day"], time: form["time"], ticket: ticket, visit)
            let entry = NewEntry(ticketID: ticket, technician: viewer.person.userID, startedAt: started, rawSeconds: seconds,
                                 kind: try entryKind(form["kind"], visit), note: form["note"] ?? "", createdBy: viewer.person.login,
                                 category: try optionalNumber(form["category"], field: "category", visit))
            _ = try await dashboard.api.ledger.addEntry(entry)
            return "entryLogged"
        }
    }

    static func work(_ visit: Visit) throws -> Response {
        let viewer = try visit.staff()
        let ledger = visit.dashboard.api.ledger
        let me = viewer.person.userID
        let zone = visit.dashboard.settings.timeZone
        let now = visit.now
        let open = try ledger.timers(technician: me, openOnly: true)
        let flagged = try ledger.timers(technician: me, openOnly: false).filter { $0.state.needsReview && $0.state.status != .stopped }
        var calendar = Calendar(identifier: .iso8601)
        calendar.timeZone = zone
        let weekStart = calendar.dateInterval(of: .weekOfYear, for: now)?.start ?? now.addingTimeInterval(-7 * 86_400)
        let week = try ledger.entries(technician: me, from: weekStart, to: weekStart.addingTimeInterval(7 * 86_400 + 3600))
        let names = try ledger.read { try $0.tickets(Array(Set(open.map(\.ticketID) + week.map(\.ticketID)))) }.mapValues(\.facts.name)
        let kinds = ["billable": visit.t["billable"]!, "internal": visit.t["internal"]!, "prepaid": visit.t["prepaid"]!]
        let today = DateFormatter()
        today.dateFormat = "yyyy-MM-dd"
        today.timeZone = zone
        today.locale = Locale(identifier: "en_US_POSIX")
        return visit.render("work", title: visit.t["myWork"]!, nav: "work", [
            "timers": open.map { timerModel($0, visit: visit, names: names) },
            "flagged": flagged.map { timer -> [String: Any] in
                var model = timerModel(timer, visit: visit, names: names)
                model["why"] = visit.t[timer.state.reviewReason == .ticketClosed ? "flaggedClosedHelp" : "flaggedHelp"]!
                return model
            },
            "week": week.map { entry -> [String: Any] in
                ["date": visit.formats.dayAndTime(entry.workedAt, timeZone: zone), "ticket": entry.ticketID, "billed": Formats.hours(entry.billedSeconds),
                 "kind": kinds[entry.kind.rawValue] ?? entry.kind.rawValue, "approval": visit.t[entry.approval.rawValue] ?? entry.approval.rawValue,
                 "note": entry.note.isEmpty ? entry.content : entry.note, "helpdesk": helpdeskState(entry, visit)]
            },
            "hasWeek": !week.isEmpty, "weekTotal": Formats.hours(week.reduce(0) { $0 + $1.billedSeconds }), "today": today.string(from: now),
            "serviceLabel": visit.language == .fr ? "Catégorie de tâche (numéro, facultatif)" : "Task category (number, optional)",
        ])
    }

    /// Where an entry stands with the helpdesk: read from it, written to it (and as which task), or waiting.
    static func helpdeskState(_ entry: LedgerEntry, _ visit: Visit) -> String {
        let fr = visit.language == .fr
        switch (entry.source, entry.remoteTaskID, entry.approval) {
        case (.helpdeskTask, _, _): return fr ? "lu du helpdesk" : "from the helpdesk"
        case (_, let task?, _): return fr ? "écrit (tâche \(task))" : "written (task \(task))"
        case (_, nil, .pending): return fr ? "attend la validation" : "awaits approval"
        case (_, nil, .rejected): return fr ? "refusé, non écrit" : "rejected, not written"
        default: return fr ? "écriture en file" : "write-back queued"
        }
    }

    static func timerModel(_ timer: TimerRecord, visit: Visit, names: [Int: String]) -> [String: Any] {
        let elapsed = timer.state.elapsedSeconds(at: visit.now)
        let status = timer.state.status
        return ["id": timer.id, "ticket": timer.ticketID, "ticketName": names[timer.ticketID] ?? "", "status": status.rawValue,
                "statusText": visit.t[status.rawValue] ?? status.rawValue, "elapsed": elapsed, "running": status == .running,
                "paused": status == .paused, "elapsedText": clock(elapsed)]
    }

    /// 3723 → "1:02:03": a running timer's face.
    static func clock(_ seconds: Int) -> String {
        "\(seconds / 3600):" + String(format: "%02d:%02d", (seconds % 3600) / 60, seconds % 60)
    }

    static func ticketNumber(_ text: String?, field: String, _ visit: Visit) throws -> Int {
        guard let text, let number = Int(text.trimmingCharacters(in: CharacterSet(charactersIn: "# "))), (1...Int(Int32.max)).contains(number) else {
            throw PageFailure(status: .badRequest, key: "badTicket",
                              detail: visit.language == .fr ? "Le numéro de ticket doit être un entier positif." : "The ticket number must be a positive whole number.")
        }
        return number
    }

    static func optionalNumber(_ text: String?, field: String, _ visit: Visit) throws -> Int? {
        guard let text else { return nil }
        guard let number = Int(text), (0...Int(Int32.max)).contains(number) else {
            throw PageFailure(status: .badRequest, key: "badNumber",
                              detail: visit.language == .fr ? "\(field) : un nombre entier est attendu." : "\(field): a whole number is expected.")
        }
        return number
    }

    static func entryKind(_ text: String?, _ visit: Visit) throws -> EntryKind {
        guard let text else { return .billable }
        guard let kind = EntryKind(rawValue: text) else {
            throw PageFailure(status: .badRequest, key: "badKind", detail: "billable, internal or prepaid")
        }
        return kind
    }

    /// "1:30" (or "90" minutes) into seconds, within the bounds of an entry.
    static func duration(_ text: String?, _ visit: Visit) throws -> Int {
        let refuse = PageFailure(status: .badRequest, key: "badDuration",
                                 detail: visit.language == .fr ? "La durée s’écrit h:mm, par exemple 1:30." : "Write the duration as h:mm, e.g. 1:30.")
        guard let text else { throw refuse }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        let seconds: Int
        if parts.count == 2, let h = Int(parts[0]), let m = Int(parts[1]), parts[1].count == 2, (0...999).contains(h), (0...59).contains(m) {
            seconds = h * 3600 + m * 60
        } else if parts.count == 1, let minutes = Int(parts[0]), (0...60_000).contains(minutes) {
            seconds = minutes * 60
        } else {
            throw refuse
        }
        if let problem = Bounds.checkEntrySeconds(seconds) { throw PageFailure(status: .badRequest, key: "badDuration", detail: "\(text): \(problem)") }
        return seconds
    }

    /// A day and a time of day, read in the time zone of the ticket's contract (the helpdesk's when it has none).
    static func start(day: String?, time: String?, ticket: Int, _ visit: Visit) throws -> Date {
        let ledger = visit.dashboard.api.ledger
        let contract = try ledger.read { try $0.ticket(ticket) }.flatMap { ledger.book.contract($0.contractID) }
        let zone = contract?.calendar.timeZone ?? visit.dashboard.settings.timeZone
        let refuse = PageFailure(status: .badRequest, key: "badDay",
                                 detail: visit.language == .fr ? "Donnez une date (AAAA-MM-JJ) et une heure (HH:MM)." : "Give a day (YYYY-MM-DD) and a time (HH:MM).")
        guard let day, let civil = CivilDate(day), let time else { throw refuse }
        let clock = time.split(separator: ":")
        guard clock.count >= 2, let h = Int(clock[0]), let m = Int(clock[1]), (0...23).contains(h), (0...59).contains(m) else { throw refuse }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        guard let date = calendar.date(from: DateComponents(year: civil.year, month: civil.month, day: civil.day, hour: h, minute: m)) else { throw refuse }
        if let problem = Bounds.checkEntryStart(date, now: visit.now) { throw PageFailure(status: .badRequest, key: "badDay", detail: "\(day) \(time): \(problem)") }
        return date
    }
}
