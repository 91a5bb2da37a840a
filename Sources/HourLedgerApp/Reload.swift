import Foundation
import HourLedgerGLPI
import HourLedgerITop
import HourLedgerUseCases
import HourLedgerServer
import Logging
import ServiceLifecycle
import UnixSignals

/// Re-reads the config file on SIGHUP (`systemctl reload`). Contracts, alert channels and webhook secrets change in
/// place; a file with any error is refused whole and the running config stays in force.
public actor ConfigReloader: Service {
    private let path: String
    private let runtime: Runtime
    private let webhooks: WebhookSettingsBox
    private let notifier: SystemdNotifier
    private let environment: [String: String]
    private let logger: Logger
    private var current: HourLedgerConfiguration

    public init(path: String, runtime: Runtime, webhooks: WebhookSettingsBox, notifier: SystemdNotifier,
                environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.path = path
        self.runtime = runtime
        self.webhooks = webhooks
        self.notifier = notifier
        self.environment = environment
        self.logger = runtime.logger
        self.current = runtime.configuration
    }

    public func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        for await _ in hangups.cancelOnGracefulShutdown() {
            await reload()
        }
    }

    /// Applies the file at `path` if it is valid. Returns whether it was applied.
    @discardableResult
    public func reload() async -> Bool {
        notifier.notify("RELOADING=1\nMONOTONIC_USEC=\(SystemdNotifier.monotonicMicroseconds)")
        defer { notifier.notify("READY=1") }
        let next: HourLedgerConfiguration
        do {
            next = try ConfigLoader.load(path: path, environment: environment)
        } catch {
            logger.error("reload refused; the running config stays in force",
                         metadata: ["file": "\(path)", "error": "\(String(describing: error).replacingOccurrences(of: "\n", with: "; "))"])
            notifier.notify("STATUS=reload refused: \(path) has errors; running config kept")
            return false
        }
        // A new or edited query rule is asked of the helpdesk first: one it refuses would leave its contract without
        // tickets, so the whole file is refused. An unreachable helpdesk cannot say: the file is taken, and the rule
        // is checked at the next poll, where a refusal affects only its own contract.
        var refused: [String] = []
        for contract in next.contracts {
            guard let query = contract.match.query, current.contracts.first(where: { $0.id == contract.id })?.match.query != query else { continue }
            do {
                _ = try await runtime.connector.ticketIDs(matching: query, since: nil, among: [])
            } catch let error as HelpdeskError where error.concernsOneTicket {
                refused.append("contracts[\(contract.id)].match.\(runtime.configuration.helpdesk.kind.queryRuleKey): \(error)")
            } catch {
                logger.warning("reload: the new query rule could not be checked now; it is checked at the next poll",
                               metadata: ["contract": "\(contract.id)", "error": "\(error)"])
            }
        }
        guard refused.isEmpty else {
            logger.error("reload refused; the running config stays in force",
                         metadata: ["file": "\(path)", "error": "\(refused.joined(separator: "; "))"])
            notifier.notify("STATUS=reload refused: the helpdesk refused a query rule; running config kept")
            return false
        }
        let restartNeeded = Self.restartOnlyChanges(from: current, to: next)
        // Old values stay redacted too: a rotated-out secret is still a secret.
        LogRedactor.shared.set(next.secretValues + current.secretValues)
        await runtime.engine.updateContracts(next.contracts, alertChannels: Runtime.channels(next.alerts), terms: next.helpdeskContracts)
        webhooks.current = Runtime.webhookSettings(next.helpdesk)
        current = next
        logger.notice("config reloaded", metadata: [
            "file": "\(path)", "contracts": "\(next.contracts.count)", "webhook_secrets": "\(next.helpdesk.webhookSecrets.count)",
        ])
        if !restartNeeded.isEmpty {
            logger.warning("some changed settings take effect only after a restart", metadata: ["settings": "\(restartNeeded.joined(separator: ","))"])
        }
        return true
    }

    /// Settings read once at start-up: the helpdesk connection, the store, the listener, the log level, the alert targets,
    /// and the dashboard's roles and session settings.
    static func restartOnlyChanges(from old: HourLedgerConfiguration, to new: HourLedgerConfiguration) -> [String] {
        var changed: [String] = []
        var oldHelpdesk = old.helpdesk, newHelpdesk = new.helpdesk
        (oldHelpdesk.webhookSecret, newHelpdesk.webhookSecret) = (nil, nil)
        (oldHelpdesk.webhookMaxAgeSeconds, newHelpdesk.webhookMaxAgeSeconds) = (0, 0)
        (oldHelpdesk.webhookMaxBodyBytes, newHelpdesk.webhookMaxBodyBytes) = (0, 0)
        if oldHelpdesk != newHelpdesk { changed.append("helpdesk") }
        if old.databasePath != new.databasePath { changed.append("database.path") }
        if old.postgres != new.postgres { changed.append("database.url") }
        if old.leaseSeconds != new.leaseSeconds { changed.append("database.lease_seconds") }
        if old.httpHost != new.httpHost || old.httpPort != new.httpPort { changed.append("http") }
        if old.logLevel != new.logLevel { changed.append("log.level") }
        if old.maxRunningTimerSeconds != new.maxRunningTimerSeconds { changed.append("timers.max_running_hours") }
        if old.alerts.webhooks != new.alerts.webhooks || old.alerts.maxAttempts != new.alerts.maxAttempts { changed.append("alerts.webhooks") }
        // The dashboard's sessions and limits live with its routes; a contract's visible_to is read live.
        if old.roles != new.roles { changed.append("roles") }
        if old.dashboard != new.dashboard { changed.append("dashboard") }
        return changed
    }
}
