import ArgumentParser
import Foundation
import HourLedgerApp
import HourLedgerHTTPClient
import HourLedgerStore
import Logging

@main
struct HourLedger: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hourledger",
        abstract: "Keeps a helpdesk's contract hours in its own ledger.",
        version: HourLedgerVersion.current,
        subcommands: [Serve.self, Sync.self, Balances.self, Unmatched.self, CheckConfig.self])
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
    func ledger() throws -> (HourLedgerConfiguration, LedgerStore) {
        let configuration = try load()
        do {
            return (configuration, try LedgerStore(path: configuration.databasePath))
        } catch let error as StoreError {
            throw CLIError(message: error.description)
        }
    }

    func runtime() throws -> Runtime {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        do {
            return try Runtime(configuration: try load())
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
        try await runDaemon(runtime: try options.runtime())
    }
}

struct Sync: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Poll the helpdesk once, update the ledger, and exit.")
    @OptionGroup var options: ConfigOption
    @Flag(name: .long, help: "Run one poll and exit (the only mode; kept for clarity in scripts).")
    var once = false

    func run() async throws {
        let runtime = try options.runtime()
        do {
            let report = try await runtime.engine.syncOnce()
            await runtime.connector.close()
            print("synced: \(report.ticketsSeen) tickets changed, tasks read for \(report.ticketsWithTasksRead), "
                + "entries +\(report.entriesAdded) ~\(report.entriesUpdated) -\(report.entriesDeleted), "
                + "\(report.contractMoves) contract moves, \(report.requests) requests in \(String(format: "%.2f", report.seconds)) s")
        } catch {
            await runtime.connector.close()
            throw CLIError(message: "sync failed: \(error)")
        }
    }
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json, csv
}

struct Balances: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print each contract's current period balance.")
    @OptionGroup var options: ConfigOption
    @Option(name: .long, help: "table, json or csv.")
    var format: OutputFormat = .table

    func run() async throws {
        let (configuration, store) = try options.ledger()
        print(Report.balances(try store.currentBalances(configuration.contracts), format: format.rawValue), terminator: "")
    }
}

struct Unmatched: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List tickets that match no contract, with the reason.")
    @OptionGroup var options: ConfigOption
    @Option(name: .long, help: "table, json or csv.")
    var format: OutputFormat = .table

    func run() async throws {
        let (_, store) = try options.ledger()
        print(Report.unmatched(try store.unmatchedTickets(), format: format.rawValue), terminator: "")
    }
}

struct CheckConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "check-config", abstract: "Validate a configuration file and exit.")
    @OptionGroup var options: ConfigOption

    func run() async throws {
        let configuration = try options.load()
        print("\(options.config): OK (\(configuration.contracts.count) contracts, helpdesk \(configuration.helpdesk.kind))")
    }
}
