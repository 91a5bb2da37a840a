import Crypto
import FakeGLPI
import Foundation
import HourLedgerUseCases
import HourLedgerApp
import HourLedgerCore
import HourLedgerServer
import HourLedgerStore
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

/// A value shared between a test and its fake servers' handlers.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<R>(_ body: (inout Value) -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}

/// A webhook receiver on loopback that records every delivery, and can answer errors first.
final class WebhookReceiver: Sendable {
    struct Delivery: Sendable {
        var headers: [String: String]
        var body: [UInt8]
    }

    let port: Int
    private let task: Task<Void, any Error>
    private let log = Locked<[Delivery]>([])
    private let failures = Locked<Int>(0)

    var url: String { "http://127.0.0.1:\(port)/hook" }
    var deliveries: [Delivery] { log.withLock { $0 } }

    init() async throws {
        let router = Router()
        let log = self.log
        let failures = self.failures
        router.post("/hook") { request, _ -> Response in
            let buffer = try await request.body.collect(upTo: 1 << 20)
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName] = field.value }
            log.withLock { $0.append(Delivery(headers: headers, body: Array(buffer.readableBytesView))) }
            let fail = failures.withLock { count -> Bool in
                guard count > 0 else { return false }
                count -= 1
                return true
            }
            return Response(status: fail ? .internalServerError : .noContent)
        }
        let (stream, continuation) = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "webhook-receiver")
        logger.logLevel = .critical
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) }, logger: logger)
        task = Task { try await app.runService(gracefulShutdownSignals: []) }
        var iterator = stream.makeAsyncIterator()
        port = await iterator.next() ?? 0
    }

    func failNext(_ count: Int) { failures.withLock { $0 = count } }

    func stop() async {
        task.cancel()
        _ = try? await task.value
    }
}

@Suite struct AlertTests {
    let secret = "alert-signing-secret"
    let now = Date.utc("2026-11-21 12:00:00")

    func contracts() -> String {
        """
          - { id: acme, name: ACME block, entity: 1, quota_hours: 10, starts: 2026-01-01, billing: block, overage_rate: 12000,
              alerts: { thresholds: [50, 80, 100] } }
        """
    }

    func config(glpi: String, receiver: String, database: String, maxAttempts: Int = 12) throws -> HourLedgerConfiguration {
        try ConfigLoader.parse(configYAML(url: glpi, database: database, contracts: contracts()) + """

            alerts:
              followup: true
              max_attempts: \(maxAttempts)
              webhooks:
                - { name: ops, url: "\(receiver)", secret: \(secret) }
            """)
    }

    /// Two daemons' worth of engines on one ledger, syncing at the same time as each other, several times over.
    func concurrentSyncs(_ runtimes: [Runtime]) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for runtime in runtimes {
                for _ in 0..<4 {
                    group.addTask { try await runtime.engine.syncOnce(now: now) }
                    group.addTask { try await runtime.engine.settle(all: true, now: now) }
                }
            }
            try await group.waitForAll()
        }
    }

    @Test func eachThresholdFiresOncePerPeriodThroughConcurrentSyncsEditsAndRestarts() async throws {
        let directory = TemporaryDirectory()
        let glpi = try await FakeGLPIServer(state: makeFixtureState())
        let receiver = try await WebhookReceiver()
        defer { Task { await glpi.stop(); await receiver.stop() } }
        let state = glpi.state
        state.addTicket(1, name: "Server down", entity: 1, category: 1, groups: [1])
        let first = state.addTask(ticket: 1, seconds: 4 * 3600, date: "2026-11-10 09:00:00")
        state.addTask(ticket: 1, seconds: 5400, date: "2026-11-11 09:00:00")
        let configuration = try config(glpi: glpi.url, receiver: receiver.url, database: directory.path + "/ledger.sqlite")
        let a = try Runtime(configuration: configuration)
        let b = try Runtime(configuration: configuration)

        // 5 h 30 of 10 h: 55 %, so the 50 % threshold fires, once.
        try await concurrentSyncs([a, b])
        #expect(try a.ledger.alerts().map(\.threshold) == [50])

        // Another 3 h: 85 %.
        state.advance(seconds: 10)
        let third = state.addTask(ticket: 1, seconds: 3 * 3600, date: "2026-11-12 09:00:00")
        try await concurrentSyncs([a, b])
        #expect(try a.ledger.alerts().map(\.threshold) == [80, 50])

        // Time edited back under 80 % and over it again does not fire 80 % a second time.
        for seconds in [3600, 3 * 3600, 3600, 3 * 3600] {
            state.advance(seconds: 10)
            state.editTask(third) { $0.seconds = seconds }
            try await concurrentSyncs([a, b])
        }
        #expect(try a.ledger.alerts().map(\.threshold) == [80, 50])
        // Over 100 %, with the used time and the forecast recorded as it was then.
        state.advance(seconds: 10)
        state.editTask(first) { $0.seconds = 5 * 3600 + 1800 }
        try await concurrentSyncs([a, b])
        let alerts = try a.ledger.alerts()
        #expect(alerts.map(\.threshold) == [100, 80, 50])
        #expect((alerts[0].usedSeconds, alerts[0].availableSeconds, alerts[0].usedBasisPoints, alerts[0].ticketID) == (36000, 36000, 10000, 1))

        // Each alert goes once to the webhook, signed, and once as a private followup in the ticket.
        #expect(await a.alerts.deliverDue(now: { now }) == 6)
        #expect(await a.alerts.deliverDue(now: { now.addingTimeInterval(3600) }) == 0)
        let deliveries = receiver.deliveries
        #expect(deliveries.count == 3)
        for delivery in deliveries {
            let timestamp = try #require(delivery.headers["x-hourledger-timestamp"])
            var message = Array(timestamp.utf8) + [UInt8(ascii: ".")]
            message += delivery.body
            let mac = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: Array(secret.utf8)))
            #expect(delivery.headers["x-hourledger-signature"] == "sha256=" + mac.map { String(format: "%02x", $0) }.joined())
            #expect(delivery.headers["content-type"] == "application/json")
        }
        let bodies = try deliveries.map { try JSONSerialization.jsonObject(with: Data($0.body)) as! [String: Any] }
        #expect(bodies.map { $0["threshold"] as? Int } == [50, 80, 100])
        #expect(bodies.allSatisfy { ($0["contract"] as? [String: String])?["id"] == "acme" && $0["period_key"] as? String == "2026-11-01" })
        #expect((bodies[2]["forecast"] as? [String: Any])?["already_depleted"] as? Bool == true)
        let followups = state.followups(ofTicket: 1)
        #expect(followups.count == 3 && followups.allSatisfy(\.isPrivate))
        #expect(followups.map { $0.content.contains("[hourledger:alert-\(alerts.last!.id)]") } == [true, false, false])

        // A restart settles everything again: nothing fires or is sent twice.
        let restarted = try Runtime(configuration: configuration)
        try await restarted.engine.syncOnce(now: now)
        try await restarted.engine.settle(all: true, now: now)
        #expect(try restarted.ledger.alerts().count == 3)
        #expect(await restarted.alerts.deliverDue(now: { now.addingTimeInterval(7200) }) == 0)
        #expect(receiver.deliveries.count == 3 && state.followups(ofTicket: 1).count == 3)
        // /status shows them.
        let stats = try restarted.ledger.alertDeliveryStats()
        #expect(stats.pending == 0 && stats.failed == 0 && stats.lastError == nil)
    }

    @Test func aFailingWebhookIsRetriedThenGivenUpVisibly() async throws {
        let directory = TemporaryDirectory()
        let glpi = try await FakeGLPIServer(state: makeFixtureState())
        let receiver = try await WebhookReceiver()
        defer { Task { await glpi.stop(); await receiver.stop() } }
        glpi.state.addTicket(1, name: "Server down", entity: 1, category: 1, groups: [1])
        glpi.state.addTask(ticket: 1, seconds: 6 * 3600, date: "2026-11-10 09:00:00")
        let runtime = try Runtime(configuration: try config(glpi: glpi.url, receiver: receiver.url, database: directory.path + "/l.sqlite", maxAttempts: 3))
        try await runtime.engine.syncOnce(now: now)
        receiver.failNext(1)
        // The webhook answers 500: the followup still goes, the webhook waits for its retry.
        #expect(await runtime.alerts.deliverDue(now: { now }) == 1)
        let pending = try runtime.ledger.alertDeliveries().first { $0.channel == "webhook:ops" }!
        #expect(pending.attempts == 1 && pending.doneAt == nil && pending.lastError == "webhook 'ops' answered HTTP 500")
        #expect(await runtime.alerts.deliverDue(now: { now }) == 0)  // not due yet: backoff
        #expect(await runtime.alerts.deliverDue(now: { now.addingTimeInterval(60) }) == 1)
        #expect(receiver.deliveries.count == 2)
        #expect(receiver.deliveries[0].body == receiver.deliveries[1].body)

        // A receiver that keeps failing is given up after max_attempts, and /status says so.
        glpi.state.advance(seconds: 10)
        glpi.state.addTask(ticket: 1, seconds: 2 * 3600, date: "2026-11-10 10:00:00")
        try await runtime.engine.syncOnce(now: now)
        receiver.failNext(100)
        for minutes in [0, 10, 100] { await runtime.alerts.deliverDue(now: { now.addingTimeInterval(Double(minutes * 60)) }) }
        let stats = try runtime.ledger.alertDeliveryStats()
        #expect(stats.failed == 1 && stats.pending == 0 && stats.lastError == "webhook 'ops' answered HTTP 500")
        #expect(receiver.deliveries.count == 5)
    }

    /// `alerts: { untimed: true }`: a ticket solved or closed with no time logged fires one alert, to the webhook and
    /// as a private followup in that ticket, through concurrent settles, a restart, and the ticket reopened and closed
    /// again; a ticket with time fires none.
    @Test func aTicketClosedWithNoTimeAlertsOnceToTheWebhookAndTheTicket() async throws {
        let directory = TemporaryDirectory()
        let glpi = try await FakeGLPIServer(state: makeFixtureState())
        let receiver = try await WebhookReceiver()
        defer { Task { await glpi.stop(); await receiver.stop() } }
        let state = glpi.state
        state.setClock(.utc("2026-11-21 09:00:00"))
        state.addTicket(1, name: "Server down", entity: 1, category: 1, groups: [1])
        state.addTicket(2, name: "Password reset & <unlock>", entity: 1, category: 1, groups: [1])
        state.addTask(ticket: 1, seconds: 1800, date: "2026-11-21 08:00:00")
        let configuration = try ConfigLoader.parse(configYAML(url: glpi.url, database: directory.path + "/ledger.sqlite", contracts: """
              - { id: acme, name: ACME block, entity: 1, quota_hours: 10, starts: 2026-01-01, alerts: { untimed: true } }
            """) + """

            alerts:
              followup: true
              webhooks:
                - { name: ops, url: "\(receiver.url)", secret: \(secret) }
            """)
        #expect(configuration.contracts.first?.alertUntimed == true)
        let a = try Runtime(configuration: configuration)
        let b = try Runtime(configuration: configuration)
        try await a.engine.syncOnce(now: now)
        try await a.engine.settle(all: true, now: now)
        #expect(try a.ledger.alerts().isEmpty)

        state.setClock(.utc("2026-11-21 10:00:00"))
        state.updateTicket(1) { $0.status = 5 }
        state.updateTicket(2) { $0.status = 5 }
        // The poll that sees them closed settles the contract: no wait for the minute's tick.
        try await a.engine.syncOnce(now: now)
        var alerts = try a.ledger.alerts()
        #expect(alerts.map { "\($0.periodKey) \($0.ticketID ?? 0) \($0.threshold)" } == ["untimed:2 2 0"])
        // Both processes syncing and settling at once add nothing.
        try await concurrentSyncs([a, b])
        alerts = try a.ledger.alerts()
        #expect(alerts.map { "\($0.periodKey) \($0.ticketID ?? 0) \($0.threshold)" } == ["untimed:2 2 0"])

        #expect(await a.alerts.deliverDue(now: { now }) == 2)
        let body = try JSONSerialization.jsonObject(with: Data(try #require(receiver.deliveries.first).body)) as! [String: Any]
        #expect((body["event"] as? String, body["ticket_id"] as? Int, body["name"] as? String, body["status"] as? String, body["closed_at"] as? String)
                == ("hourledger.untimed_ticket", 2, "Password reset & <unlock>", "solved", "2026-11-21T10:00:00Z"))
        let followup = try #require(state.followups(ofTicket: 2).first)
        #expect(followup.isPrivate && followup.content.contains("This ticket was solved with no time logged on contract ACME block (acme)"), "\(followup.content)")
        #expect(state.followups(ofTicket: 1).isEmpty)
        // The API says what kind of alert it is.
        let manager = try a.ledger.createToken(user: "boss", helpdeskUserID: 2, role: .manager)
        try await buildApplication(runtime: a).test(.router) { client in
            try await client.execute(uri: "/api/v1/alerts", method: .get, headers: [.authorization: "Bearer \(manager)"]) { response in
                let text = String(buffer: response.body)
                #expect(text.contains(#""kind" : "untimed""#) && text.contains(#""period_key" : "untimed:2""#) && !text.contains(#""kind" : "threshold""#),
                        "\(text)")
            }
        }

        // Reopened, closed again, the daemon restarted: still that one alert.
        state.setClock(.utc("2026-11-21 10:30:00"))
        state.updateTicket(2) { $0.status = 2 }
        try await a.engine.syncOnce(now: now)
        state.setClock(.utc("2026-11-21 11:00:00"))
        state.updateTicket(2) { $0.status = 6 }
        let restarted = try Runtime(configuration: configuration)
        try await restarted.engine.syncOnce(now: now)
        try await restarted.engine.settle(all: true, now: now)
        #expect(try restarted.ledger.alerts().count == 1)
        #expect(await restarted.alerts.deliverDue(now: { now.addingTimeInterval(3600) }) == 0)
        #expect(receiver.deliveries.count == 1 && state.followups(ofTicket: 2).count == 1)
    }
}
