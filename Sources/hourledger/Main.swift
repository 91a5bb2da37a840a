import ArgumentParser
import Foundation
import HourLedgerApp
import HourLedgerHTTPClient
import HourLedgerCore
import HourLedgerServer
import HourLedgerPostgres
import HourLedgerStore
import HourLedgerUseCases
import Logging

struct HourLedger: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hourledger",
        abstract: "Keeps a helpdesk's contract hours in its own ledger.",
        version: HourLedgerVersion.current,
        subcommands: [Serve.self, Sync.self, Migrate.self, Reconcile.self, Balances.self, Unmatched.self, CheckConfig.self, Token.self, TimerCommand.self, EntryCommand.self, Audit.self,
                      InvoicePreviewCommand.self, AccountingExportCommand.self, TopUpCommand.self, ReportCommand.self, OutboxCommand.self,
                      StatementCommand.self, VerifyCommand.self])
}

/// Caps malloc's arenas before ArgumentParser's own entry point starts any thread.
@main enum Entry {
    static func main() async {
        limitMallocArenas()
        await HourLedger.main()
    }
}

struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: "Path to hourledger.yaml.")
    var config: String = "/etc/hourledger/hourledger.yaml"

    func load() throws -> HourLedgerConfiguration {
        do {
            return try ConfigLoader.load(path: config)
        } catch let error as ConfigError {
            throw CLIError(message: error.description)
        }
    }

    /// The configuration and its ledger, for commands that only read.
    func ledger() throws -> (HourLedgerConfiguration, Ledger) {
        let configuration = try load()
        do {
            return (configuration, try openLedger(configuration))
        } catch let error as StoreError {
            throw CLIError(message: error.description)
        }
    }

    func runtime() throws -> Runtime {
        try runtime(try load())
    }

    func runtime(_ configuration: HourLedgerConfiguration) throws -> Runtime {
        LoggingSystem.bootstrap { JournalLogHandler(label: $0) }
        do {
            return try Runtime(configuration: configuration)
        } catch let error as StoreError {
            throw CLIError(message: error.description)
        }
    }

    /// The SQLite file's owner lock, for commands that poll or deliver (`serve`, `sync`): held until the process
    /// exits. A PostgreSQL ledger has none: its processes share it, and its lease says which of them leads.
    func ownLedger(_ configuration: HourLedgerConfiguration, command: String) throws -> AnyObject? {
        guard configuration.postgres == nil else { return nil }
        do {
            return try LedgerLock(databasePath: configuration.databasePath, command: command)
        } catch let busy as LedgerLock.Busy {
            throw CLIError(message: busy.description)
        } catch let error as StoreError {
            throw CLIError(message: error.description)
        }
    }
}

struct CLIError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the poller and the HTTP server until SIGTERM.")
    @OptionGroup var options: ConfigOption

    func run() async throws {
        let configuration = try options.load()
        let lock = try options.ownLedger(configuration, command: "serve")
        defer { withExtendedLifetime(lock) {} }
        do {
            try await runDaemon(runtime: try options.runtime(configuration), configPath: options.config)
        } catch let error as DaemonError {
            throw CLIError(message: error.description)
        }
    }
}

struct Sync: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Poll the helpdesk once, update the ledger, and exit.")
    @OptionGroup var options: ConfigOption
    @Flag(name: .long, help: "Run one poll and exit (the only mode; kept for clarity in scripts).")
    var once = false

    func run() async throws {
        let configuration = try options.load()
        let lock = try options.ownLedger(configuration, command: "sync")
        defer { withExtendedLifetime(lock) {} }
        let runtime = try options.runtime(configuration)
        do {
            let report = try await runtime.leadingOnce(command: "sync") { try await runtime.engine.syncOnce() }
            await runtime.connector.close()
            print("synced: \(report.ticketsSeen) tickets changed, tasks read for \(report.ticketsWithTasksRead), "
                + "entries +\(report.entriesAdded) ~\(report.entriesUpdated) -\(report.entriesDeleted), "
                + "\(report.contractMoves) contract moves, \(report.requests) requests in \(String(format: "%.2f", report.seconds)) s")
        } catch let busy as LeaderBusy {
            await runtime.connector.close()
            throw CLIError(message: busy.description)
        } catch {
            await runtime.connector.close()
            throw CLIError(message: "sync failed: \(error)")
        }
    }
}

struct Reconcile: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare the ledger's seconds per ticket and contract with the helpdesk's own figures.",
        discussion: """
            GLPI: each ticket's total duration (the sum of its tasks), read in one full ticket search. iTop: the entries \
            whose note is still in their ticket's private log. Each drift is listed with its cause where known.
            """)
    @OptionGroup var options: ConfigOption
    @Option(name: .long, help: "table, json or csv.")
    var format: OutputFormat = .table
    @Flag(name: .long, help: "Exit with status 1 when any ticket drifts.")
    var failOnDrift = false

    func run() async throws {
        let runtime = try options.runtime()
        let result: Reconciliation?
        do {
            result = try await runtime.engine.reconcile()
            await runtime.connector.close()
        } catch {
            await runtime.connector.close()
            throw CLIError(message: "reconciliation failed: \(error)")
        }
        guard let result else {
            throw CLIError(message: "\(runtime.configuration.helpdesk.kind.rawValue) keeps no time total per ticket to reconcile against")
        }
        print(Report.reconciliation(result, format: format.rawValue), terminator: "")
        if failOnDrift, !result.drifts.isEmpty { throw ExitCode(1) }
    }
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json, csv
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy a whole SQLite ledger into the configured (empty) PostgreSQL ledger and prove the copy exact.")
    @OptionGroup var options: ConfigOption
    @Option(name: .customLong("from-sqlite"), help: "The SQLite ledger file to copy (stop the daemon that owns it first).")
    var fromSQLite: String

    func run() async throws {
        let configuration = try options.load()
        let report: LedgerMigration.Report
        do {
            report = try LedgerMigration.fromSQLite(path: fromSQLite, configuration: configuration)
        } catch let busy as LedgerLock.Busy {
            throw CLIError(message: busy.description)
        } catch let error as StoreError {
            throw CLIError(message: error.description)
        }
        print("copied \(fromSQLite) into \(configuration.ledgerDescription)")
        for table in report.tables { print("  \(table.name.padding(toLength: 18, withPad: " ", startingAt: 0)) \(table.source) -> \(table.target)") }
        print("compared \(report.periodsCompared) contract periods and \(report.entriesCompared) entries; books: \(report.books.records) records "
              + "of \(report.books.contracts) contracts")
        for difference in report.differences { print("DIFFERENT \(difference)") }
        for problem in report.books.problems { print("BROKEN \(problem)") }
        guard report.isExact else { throw CLIError(message: "the copy is not exact: do not point the daemon at it") }
        print("exact: every count, balance, top-up and entry is the same, and the copy's books verify")
    }
}

struct Balances: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print each contract's current period balance.")
    @OptionGroup var options: ConfigOption
    @Option(name: .long, help: "table, json or csv.")
    var format: OutputFormat = .table

    func run() async throws {
        let (_, ledger) = try options.ledger()
        let now = Date()
        let (balances, failures) = try ledger.contractBalances(at: now)
        if let first = failures.first { throw CLIError(message: first.error) }
        print(Report.balances(balances, format: format.rawValue), terminator: "")
    }
}

struct Unmatched: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List tickets that match no contract, with the reason.")
    @OptionGroup var options: ConfigOption
    @Option(name: .long, help: "table, json or csv.")
    var format: OutputFormat = .table

    func run() async throws {
        let (_, ledger) = try options.ledger()
        print(Report.unmatched(try ledger.unmatchedTickets(), format: format.rawValue, terms: ledger.profile.terms), terminator: "")
    }
}

struct InvoicePreviewCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "invoice-preview",
                                                    abstract: "Print the invoice lines a contract period would produce (month-to-date while it runs).")
    @OptionGroup var options: ConfigOption
    @Option(name: .long, help: "The contract id.")
    var contract: String
    @Option(name: .long, help: "current, previous, YYYY-MM (the period starting that month) or YYYY-MM-DD (the period holding that day).")
    var period: String = "current"
    @Option(name: .long, help: "table, json or csv.")
    var format: OutputFormat = .table

    func run() async throws {
        let (_, ledger) = try options.ledger()
        guard let contract = ledger.book.contract(self.contract) else {
            throw CLIError(message: "no contract with id '\(self.contract)' in \(options.config)")
        }
        let now = Date()
        guard let period = contract.period(named: self.period, now: now),
              let preview = try ledger.invoicePreview(contract, at: period.start, now: now) else {
            throw CLIError(message: "contract '\(contract.id)' has no period '\(self.period)'")
        }
        print(Report.invoice(preview, format: format.rawValue), terminator: "")
    }
}

struct AccountingExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "accounting-export",
        abstract: "Print every contract's invoice lines for a period in the columns an accounting import takes (CSV or JSON).")
    @OptionGroup var options: ConfigOption
    @Option(name: .long, help: "current, previous (the default: the last closed period), YYYY-MM or YYYY-MM-DD.")
    var period: String = "previous"
    @Option(name: .long, help: "Only this contract.")
    var contract: String?
    @Option(name: .long, help: "csv (money in major units) or json (money in minor units).")
    var format: String = "csv"

    func run() async throws {
        let (_, ledger) = try options.ledger()
        guard format == "csv" || format == "json" else { throw CLIError(message: "--format must be csv or json, got '\(format)'") }
        if let contract, ledger.book.contract(contract) == nil {
            throw CLIError(message: "no contract with id '\(contract)' in \(options.config)")
        }
        do {
            print(try Report.accounting(ledger: ledger, period: period, contractID: contract, format: format, now: ledger.clock.now()), terminator: "")
        } catch let error as APIFailure {
            throw CLIError(message: error.description)
        }
    }
}

struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "report", abstract: "Print a report: technicians, contracts, tickets, types, categories, blocks or untimed.")
    @OptionGroup var options: ConfigOption
    @Argument(help: "technicians (billable against internal per month), contracts, tickets, types (per ticket type: GLPI Incident or Request, iTop UserRequest or Incident), categories (per GLPI category or iTop service), blocks (quota, carried in, used, overage, expired) or untimed (tickets solved or closed in the range with no time at all).")
    var kind: String
    @Option(name: .long, help: "First day, YYYY-MM-DD (default: twelve months before --to).")
    var from: String?
    @Option(name: .long, help: "Day after the last, YYYY-MM-DD (default: tomorrow).")
    var to: String?
    @Option(name: .long, help: "Only this contract.")
    var contract: String?
    @Option(name: .long, help: "Time zone for days and months (default UTC).")
    var timezone: String = "UTC"
    @Option(name: .long, help: "table, json or csv.")
    var format: OutputFormat = .table

    func run() async throws {
        let (_, ledger) = try options.ledger()
        guard let kind = Report.Kind(rawValue: kind) else {
            throw CLIError(message: "no report '\(kind)': use one of " + Report.Kind.allCases.map(\.rawValue).joined(separator: ", "))
        }
        guard let zone = TimeZone(identifier: timezone) else { throw CLIError(message: "unknown time zone '\(timezone)'") }
        if let contract, ledger.book.contract(contract) == nil {
            throw CLIError(message: "no contract with id '\(contract)' in \(options.config)")
        }
        do {
            let now = ledger.clock.now()
            let range = try ReportQuery.range(from: from, to: to, timeZone: zone, now: now)
            print(try Report.render(kind, ledger: ledger, range: range, timeZone: zone, contractID: contract, format: format.rawValue, now: now),
                  terminator: "")
        } catch let error as APIFailure {
            throw CLIError(message: error.description)
        }
    }
}

struct CheckConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate a configuration file, then log in to the helpdesk and check every right the daemon needs.")
    @OptionGroup var options: ConfigOption

    @Flag(help: "Only check the file: do not contact the helpdesk (what systemd runs before each start).") var offline = false

    func run() async throws {
        let configuration = try options.load()
        let summary = "\(configuration.contracts.count) contracts, helpdesk \(configuration.helpdesk.kind)"
        if offline {
            print("\(options.config): OK (\(summary); the helpdesk was not contacted)")
            return
        }
        print("\(options.config): the file is valid (\(summary))")
        let runtime = try options.runtime(configuration)
        let report = await runtime.connector.checkAccess(followups: configuration.alerts.followup)
        guard report.loginFailure == nil else {
            throw CLIError(message: "login to \(runtime.publicHelpdeskURL) failed: \(report.loginFailure!)")
        }
        print("logged in to \(runtime.publicHelpdeskURL) as \(report.account ?? "?")")
        for check in report.checks {
            let mark = check.outcome == .ok ? "ok     " : check.outcome == .missing ? "MISSING" : "unchecked"
            print("  \(mark) \(check.need)" + (check.detail.isEmpty ? "" : ": \(check.detail)"))
        }
        // Query rules are asked only once the login works, so a wrong password is never reported as a refused rule.
        let rules = configuration.contracts.filter { $0.match.query != nil || $0.match.linkedContract != nil }.count
        let refused = rules == 0 ? [] : await runtime.validateQueryRules()
        for problem in refused { print("  REFUSED contracts[\(problem.contractID)].\(problem.key): \(problem.error)") }
        if rules > 0, refused.isEmpty { print("  ok      \(rules) query rule\(rules == 1 ? "" : "s") accepted by the helpdesk") }
        var problems: [String] = []
        if !configuration.helpdeskContracts.isEmpty {
            do {
                let preview = try await runtime.previewHelpdeskContracts()
                print("  ok      the helpdesk lists \(preview.listed) contract\(preview.listed == 1 ? "" : "s"); \(preview.contracts.count) billed here:")
                for contract in preview.contracts {
                    let hours = Double(contract.quotaSeconds) / 3600
                    print("          \(contract.id) \"\(contract.name)\": \(configuration.helpdesk.profile.terms.entity) \(contract.entity ?? 0), "
                          + "\(contract.starts) to \(contract.expires?.description ?? "open end"), \(contract.period.rawValue), "
                          + "\(hours == hours.rounded() ? String(Int(hours)) : String(hours)) h, \(contract.billing.mode.rawValue)")
                }
                for skipped in preview.skipped { print("          not billed: contract \(skipped.id): \(skipped.reason)") }
            } catch {
                print("  REFUSED helpdesk_contracts: the helpdesk's contracts could not be read: \(error)")
                problems.append("the helpdesk's contracts could not be read")
            }
        }
        if !report.missing.isEmpty { problems.append("\(report.missing.count) right\(report.missing.count == 1 ? "" : "s") missing") }
        if !refused.isEmpty { problems.append("\(refused.count) of \(rules) query rules refused") }
        guard problems.isEmpty else { throw CLIError(message: problems.joined(separator: ", ") + "; see README, section Helpdesk rights") }
        print("\(options.config): OK")
    }
}

struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Manage API tokens.", subcommands: [Create.self, Revoke.self])

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke every API token of a user.")
        @OptionGroup var options: ConfigOption
        @Option(help: "The user the tokens were created for.") var user: String

        func run() async throws {
            let (_, ledger) = try options.ledger()
            print("revoked \(try ledger.revokeTokens(user: user)) token(s) of \(user)")
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an API token; it is printed once and stored hashed.")
        @OptionGroup var options: ConfigOption
        @Option(help: "The helpdesk login (or numeric user id) the token acts as.") var user: String
        @Option(name: .customLong("helpdesk-user-id"), help: "The helpdesk user id, when --user is a login.") var helpdeskUserID: Int?
        @Option(help: "technician, manager or admin.") var role: String = "technician"

        func run() async throws {
            guard let role = Principal.Role(rawValue: role) else { throw CLIError(message: "--role must be technician, manager or admin") }
            guard let id = helpdeskUserID ?? Int(user) else {
                throw CLIError(message: "give --helpdesk-user-id for login '\(user)' (the GLPI users_id the time is logged as)")
            }
            let (_, ledger) = try options.ledger()
            print(try ledger.createToken(user: user, helpdeskUserID: id, role: role))
        }
    }
}

struct TimerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "timer", abstract: "Start, pause, resume or stop a timer on a ticket.")
    @OptionGroup var options: ConfigOption
    @Argument(help: "start, pause, resume or stop.") var action: String
    @Option(help: "The ticket id.") var ticket: Int
    @Option(help: "The helpdesk user id of the technician.") var technician: Int
    @Option(help: "A note for the entry (stop).") var note: String = ""
    @Option(help: "billable, internal or prepaid (stop).") var kind: String = "billable"

    func run() async throws {
        let (_, ledger) = try options.ledger()
        do {
            if action == "start" {
                let (timer, created) = try await ledger.startTimer(technician: technician, ticketID: ticket)
                print(created ? "timer \(timer.id) started" : "timer \(timer.id) is already \(timer.state.status.rawValue)")
                return
            }
            guard let transition = TimerAction(rawValue: action) else { throw CLIError(message: "action must be start, pause, resume or stop") }
            guard let kind = EntryKind(rawValue: kind) else { throw CLIError(message: "--kind must be billable, internal or prepaid") }
            guard let open = try ledger.timers(technician: technician, openOnly: true).first(where: { $0.ticketID == ticket }) else {
                throw CLIError(message: "no open timer for technician \(technician) on ticket \(ticket)")
            }
            let (timer, entry) = try await ledger.timerTransition(id: open.id, actingAs: technician, action: transition, kind: kind, note: note,
                                                                  actor: "cli")
            print("timer \(timer.id) \(timer.state.status.rawValue)" + (entry.map { ": entry \($0.id), \($0.rawSeconds) s raw, \($0.billedSeconds) s billed" } ?? ""))
        } catch let error as LedgerError {
            throw CLIError(message: error.description)
        }
    }
}

struct EntryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "entry", abstract: "Log time after the fact.", subcommands: [Add.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a manual entry; it is rounded and written back like a timer's.")
        @OptionGroup var options: ConfigOption
        @Option(help: "The ticket id.") var ticket: Int
        @Option(help: "The helpdesk user id of the technician.") var technician: Int
        @Option(name: .customLong("started-at"), help: "ISO 8601, e.g. 2026-11-21T09:00:00Z.") var startedAt: String
        @Option(name: .customLong("duration-seconds"), help: "Worked time in seconds.") var durationSeconds: Int
        @Option(help: "What was done.") var description: String = ""
        @Flag(help: "Internal time: recorded, never billed.") var `internal` = false

        func run() async throws {
            guard let started = Timestamp.parse(startedAt) else {
                throw CLIError(message: "--started-at must be an RFC 3339 date-time such as 2026-11-21T09:00:00Z (a real day and time), got '\(startedAt)'")
            }
            let (_, ledger) = try options.ledger()
            do {
                let entry = try await ledger.addEntry(NewEntry(ticketID: ticket, technician: technician, startedAt: started, rawSeconds: durationSeconds,
                                                               kind: `internal` ? .internal : .billable, note: description, createdBy: "cli"))
                print("entry \(entry.id): \(entry.rawSeconds) s raw, \(entry.billedSeconds) s billed on \(entry.contractID ?? "no contract"); write-back queued")
            } catch let error as LedgerError {
                throw CLIError(message: error.description)
            }
        }
    }
}

struct TopUpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topup", abstract: "Add purchased hours to a block contract, list its top-ups, or void a mistaken one.",
        discussion: "Example: hourledger topup --contract acme-support --hours 10 --note \"PO 4711\" --expires 2027-06-30",
        subcommands: [Add.self, List.self, VoidTopUp.self], defaultSubcommand: Add.self)

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add purchased hours, used after the period's quota and carried-over hours.")
        @OptionGroup var options: ConfigOption
        @Option(help: "The contract id.") var contract: String
        @Option(help: "Hours bought: 10, 2.5 or 1:30.") var hours: String
        @Option(help: "What was bought (a PO number, an order); one line.") var note: String
        @Option(help: "The last day the hours may be used (YYYY-MM-DD, the contract's time zone); they lapse when that day's period ends.")
        var expires: String?
        @Option(help: "The price to invoice, in minor units (9500 for 95.00); default: the hours at the contract's overage rate.")
        var price: Int?

        func run() async throws {
            guard let seconds = HoursText.seconds(parsing: hours) else {
                throw CLIError(message: "--hours must be hours such as 10, 2.5 or 1:30 (a whole number of seconds), got '\(hours)'")
            }
            let day = try expires.map { text -> CivilDate in
                guard let day = CivilDate(text) else { throw CLIError(message: "--expires must be a day, YYYY-MM-DD, got '\(text)'") }
                return day
            }
            let (_, ledger) = try options.ledger()
            do {
                let topUp = try await ledger.addTopUp(contractID: contract, seconds: seconds, note: note, price: price, expires: day, actor: "cli")
                print("top-up \(topUp.id): \(HoursText.precise(topUp.seconds)) h added to \(topUp.contractID)"
                      + (topUp.expires.map { ", usable through \($0)" } ?? "") + " (\(topUp.note))")
                if let balance = try ledger.balance(of: ledger.book.contract(contract)!, at: topUp.addedAt) {
                    print("period \(balance.periodKey): available \(HoursText.precise(balance.availableSeconds)) h, used \(HoursText.precise(balance.usedSeconds)) h, remaining \(HoursText.precise(balance.remainingSeconds)) h")
                }
            } catch let error as LedgerError {
                throw CLIError(message: error.description)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List top-ups, voided ones included.")
        @OptionGroup var options: ConfigOption
        @Option(help: "Only this contract.") var contract: String?

        func run() async throws {
            let (_, ledger) = try options.ledger()
            let topUps = try ledger.topUps(contractID: contract)
            if topUps.isEmpty { print("no top-ups"); return }
            let formatter = ISO8601DateFormatter()
            for t in topUps {
                print("\(t.id)  \(t.contractID)  \(HoursText.precise(t.seconds)) h  added \(formatter.string(from: t.addedAt)) by \(t.addedBy)"
                      + "  expires \(t.expires?.description ?? "-")  price \(t.price.map(String.init) ?? "-")  \(t.note)"
                      + (t.voidedAt.map { "  VOIDED \(formatter.string(from: $0)) by \(t.voidedBy ?? "?"): \(t.voidReason ?? "")" } ?? ""))
            }
        }
    }

    struct VoidTopUp: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "void", abstract: "Void a mistaken top-up; it stays on record with the reason.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "The top-up id.") var id: Int64
        @Option(help: "Why it is voided.") var reason: String

        func run() async throws {
            let (_, ledger) = try options.ledger()
            do {
                let topUp = try await ledger.voidTopUp(id: id, reason: reason, actor: "cli")
                print("top-up \(topUp.id) of \(topUp.contractID) voided: \(HoursText.precise(topUp.seconds)) h no longer count")
            } catch let error as LedgerError {
                throw CLIError(message: error.description)
            }
        }
    }
}

struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the audit trail of entry edits and deletions.")
    @OptionGroup var options: ConfigOption
    @Option(help: "Only this ticket.") var ticket: Int?
    @Option(help: "Only this contract.") var contract: String?

    func run() async throws {
        let (_, ledger) = try options.ledger()
        let records = try ledger.auditTrail(ticketID: ticket, contractID: contract)
        if records.isEmpty { print("no audit records"); return }
        let formatter = ISO8601DateFormatter()
        for r in records {
            print("\(formatter.string(from: r.at))  \(r.actor)  ticket \(r.ticketID)  entry \(r.entryKey)  \(r.field): \(r.oldValue ?? "-") -> \(r.newValue ?? "-")  reason: \(r.reason.isEmpty ? "-" : r.reason)")
        }
    }
}

struct OutboxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "outbox", abstract: "List, retry or discard write-backs waiting for the helpdesk.",
                                                    subcommands: [List.self, Retry.self, Discard.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List pending write-backs (parked ones first say why).")
        @OptionGroup var options: ConfigOption
        @Flag(help: "Only those the helpdesk refused for good.") var parked = false
        @Option(name: .long, help: "table or json.") var format: OutputFormat = .table

        func run() async throws {
            let (_, ledger) = try options.ledger()
            let items = try ledger.outboxItems(parkedOnly: parked)
            if format == .json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                encoder.dateEncodingStrategy = .iso8601
                print(String(decoding: try encoder.encode(items), as: UTF8.self))
                return
            }
            if items.isEmpty { print(parked ? "no parked write-backs" : "the outbox is empty"); return }
            for item in items {
                let state = item.parkedAt != nil ? "parked" : item.inDoubtSince != nil ? "in doubt" : "pending"
                print("\(item.id)  \(state)  \(item.action.rawValue)  ticket \(item.ticketID)  entry \(item.entryKey)  attempts \(item.attempts)"
                      + (item.lastError.map { "  error: \($0)" } ?? ""))
            }
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Try a parked write-back again (after fixing what the helpdesk refused).")
        @OptionGroup var options: ConfigOption
        @Argument(help: "The write-back id (from outbox list).") var id: Int64
        @Option(help: "Who asks, for the audit trail.") var actor: String = "cli"

        func run() async throws {
            let (_, ledger) = try options.ledger()
            do {
                let item = try await ledger.retryOutbox(id: id, actor: actor)
                print("write-back \(item.id) (\(item.action.rawValue), ticket \(item.ticketID)) will be tried again")
            } catch let error as LedgerError {
                throw CLIError(message: error.description)
            }
        }
    }

    struct Discard: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Give a write-back up; the entry stays in the ledger, the audit says why.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "The write-back id (from outbox list).") var id: Int64
        @Option(help: "Why it is given up (required).") var reason: String
        @Option(help: "Who decides, for the audit trail.") var actor: String = "cli"

        func run() async throws {
            let (configuration, ledger) = try options.ledger()
            do {
                let items = try await ledger.discardOutbox(id: id, actor: actor, reason: reason, fenceSeconds: configuration.helpdesk.writeFenceSeconds)
                print("discarded write-back" + (items.count == 1 ? "" : "s") + " " + items.map { "\($0.id) (\($0.action.rawValue))" }.joined(separator: ", "))
            } catch let error as LedgerError {
                throw CLIError(message: error.description)
            }
        }
    }
}
