import FakeGLPI
import Foundation
import HourLedgerUseCases
import HourLedgerGLPI
import HourLedgerHelpdeskKit
import HourLedgerITop
import HourLedgerApp
import HourLedgerServer
import HourLedgerStore
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Synchronization
import TestKit
import Testing

/// One delivery from shared/fixtures/glpi/webhook-examples, byte for byte.
struct GLPIDelivery {
    var name: String
    var method: String
    var path: String
    var headers: [String: String]
    var body: [UInt8]
    var secret: String
    var expectedSignature: String?
    var receivedAt: Int
    var verdict: String
    /// For the tampered example: the signature the received bytes really have.
    var signatureOfReceivedBody: String?

    static func load(_ name: String) throws -> GLPIDelivery {
        let url = Fixtures.root.appendingPathComponent("glpi/webhook-examples/\(name)")
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        let request = object["request"] as! [String: Any]
        let expected = object["expected"] as? [String: Any] ?? [:]
        let response = object["expected_response"] as? [String: Any] ?? [:]
        return GLPIDelivery(name: name, method: request["method"] as! String, path: request["path"] as! String,
                            headers: request["headers"] as! [String: String], body: Array((request["body_raw"] as? String ?? "").utf8),
                            secret: object["secret"] as! String,
                            expectedSignature: object["expected_signature"] as? String ?? response["body_raw"] as? String,
                            receivedAt: object["received_at_unix"] as? Int ?? 0,
                            verdict: expected["verdict"] as? String ?? "respond",
                            signatureOfReceivedBody: object["expected_signature_of_received_body"] as? String)
    }

    static func all() throws -> [GLPIDelivery] {
        try FileManager.default.contentsOfDirectory(atPath: Fixtures.root.appendingPathComponent("glpi/webhook-examples").path)
            .filter { $0.hasSuffix(".json") }.sorted().map(load)
    }

    /// The headers GLPI sends, minus Host and Content-Length, which the test client sets itself.
    var httpFields: HTTPFields {
        var fields = HTTPFields()
        for (name, value) in headers where !["host", "content-length"].contains(name.lowercased()) {
            fields[HTTPField.Name(name)!] = value
        }
        return fields
    }
}

/// A clock the test moves between deliveries, as the fixtures were received at different times.
final class TestClock: Sendable {
    private let now = Mutex(Date())
    func set(_ unix: Int) { now.withLock { $0 = Date(timeIntervalSince1970: TimeInterval(unix)) } }
    func set(_ date: Date) { now.withLock { $0 = date } }
    var read: @Sendable () -> Date { { self.now.withLock { $0 } } }
    var wall: WallClock { WallClock(read) }
}

@Suite struct GLPIWebhookTests {
    static let secret = "0123456789abcdefghijABCDEFGHIJ0123456789"

    func runtime(secrets: [String], directory: TemporaryDirectory, url: String = "http://127.0.0.1:9/apirest.php",
                 clock: WallClock = .system) throws -> Runtime {
        let file = directory.write("webhook-secret", secrets.joined(separator: "\n") + "\n")
        return try Runtime(configuration: try ConfigLoader.parse(configYAML(
            url: url, database: directory.path + "/ledger.sqlite",
            contracts: "  - {id: alpha, name: Alpha, entity: 1, quota_hours: 40, period: monthly, starts: 2026-01-01, timezone: UTC}",
            extraHelpdesk: "  webhook_secret_file: \(file)")), clock: clock)
    }

    @Test func signaturesMatchTheNotesTestVectorAndEveryExample() throws {
        let body = "{\n    \"item\": {\n        \"id\": 1,\n        \"name\": \"Laptop does not boot\"\n    },\n    \"event\": \"update\"\n}"
        #expect(GLPISignature.sign(body: Array(body.utf8), timestamp: "1763750000", secret: Self.secret)
            == "abb78193aec99150c5b3239f1a474504de0d4762f2aafb581d6c65ed39e4f5ed")
        let deliveries = try GLPIDelivery.all().filter { $0.method == "POST" }
        #expect(deliveries.count == 9)
        for delivery in deliveries {
            let timestamp = delivery.headers["X-GLPI-timestamp"]!
            #expect(GLPISignature.sign(body: delivery.body, timestamp: timestamp, secret: delivery.secret)
                == (delivery.signatureOfReceivedBody ?? delivery.expectedSignature), "\(delivery.name)")
            let matched = GLPISignature.matchingSecret(body: delivery.body, timestamp: timestamp, signature: delivery.headers["X-GLPI-signature"]!,
                                                       secrets: [delivery.secret])
            // The wrong-secret and tampered-body examples must not verify; the rest must.
            #expect((matched != nil) == !(delivery.name.hasPrefix("08") || delivery.name.hasPrefix("10")), "\(delivery.name)")
        }
        let challenge = try GLPIDelivery.load("07_cra_challenge.json")
        let token = String(challenge.path.split(separator: "=").last!)
        #expect(GLPISignature.hmac("validate_cra_challenge", secret: Self.secret) == token)
        #expect(GLPISignature.challengeAnswer(token: token, secrets: ["another-secret-entirely-0000000000000000", Self.secret]) == challenge.expectedSignature)
        #expect(GLPISignature.challengeAnswer(token: token, secrets: ["another-secret-entirely-0000000000000000"]) == nil)
    }

    /// The GLPI module judges each recorded delivery by itself, with no HTTP: the server only turns verdicts into answers.
    @Test func theVerifierJudgesEveryExampleWithoutHTTP() throws {
        let verifier = GLPIWebhookVerifier()
        for delivery in try GLPIDelivery.all() {
            let headers = Dictionary(delivery.headers.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { first, _ in first })
            let query = URLComponents(string: delivery.path)?.queryItems ?? []
            let request = WebhookRequest(headers: { headers[$0.lowercased()] }, query: { name in query.first { $0.name == name }?.value },
                                         body: delivery.body)
            let now = Date(timeIntervalSince1970: TimeInterval(delivery.receivedAt))
            let verdict = delivery.method == "GET" ? verifier.challenge(request, secrets: [Self.secret])
                : verifier.verify(request, secrets: [Self.secret], maxAgeSeconds: 300, now: now)
            switch delivery.name.prefix(2) {
            case "07": #expect(verdict == .challenge(answer: delivery.expectedSignature!), "\(delivery.name)")
            case "08", "10":
                guard case .refused(.badSignature, _)? = verdict else { Issue.record("\(delivery.name): \(String(describing: verdict))"); continue }
            case "09":
                guard case .refused(.staleTimestamp, _)? = verdict else { Issue.record("\(delivery.name): \(String(describing: verdict))"); continue }
            default:
                guard case .ticket(let ticket, let signature, _)? = verdict else { Issue.record("\(delivery.name): \(String(describing: verdict))"); continue }
                #expect(ticket == 42 && signature == delivery.headers["X-GLPI-signature"], "\(delivery.name)")
            }
        }
    }

    @Test func theExampleDeliveriesAreAnsweredAsGLPIExpectsAndOnlyValidOnesLeaveAHint() async throws {
        let directory = TemporaryDirectory()
        let clock = TestClock()
        let runtime = try runtime(secrets: [Self.secret], directory: directory, clock: clock.wall)
        let app = buildApplication(runtime: runtime)
        try await app.test(.router) { client in
            for delivery in try GLPIDelivery.all() {
                clock.set(delivery.receivedAt)
                let (status, body) = try await client.execute(uri: delivery.path, method: delivery.method == "GET" ? .get : .post,
                                                              headers: delivery.httpFields,
                                                              body: delivery.method == "GET" ? nil : ByteBuffer(bytes: delivery.body)) {
                    ($0.status, String(buffer: $0.body))
                }
                switch delivery.name.prefix(2) {
                case "07":
                    #expect(status == .ok)
                    #expect(body == delivery.expectedSignature)  // exactly the hex, no newline
                case "08", "10": #expect(status == .unauthorized, "\(delivery.name)")
                case "09": #expect(status == .forbidden, "\(delivery.name): \(body)")
                default: #expect(status == .ok, "\(delivery.name): \(body)")
                }
            }
            // GLPI resends a delivery with the same headers when our answer was lost: it is recognised, not applied twice.
            // The latest delivery is resent, as the server's clock only moves forward.
            let first = try GLPIDelivery.load("03_ticket_delete_trash.json")
            clock.set(first.receivedAt + 30)
            let replay = try await client.execute(uri: first.path, method: .post, headers: first.httpFields, body: ByteBuffer(bytes: first.body)) { $0.status }
            #expect(replay == .conflict)

            let metrics = try await client.execute(uri: "/metrics", method: .get) { String(buffer: $0.body) }
            for (outcome, count) in [("accepted", 6), ("bad_signature", 2), ("stale_timestamp", 1), ("replayed", 1), ("challenge", 1), ("malformed", 0)] {
                #expect(metrics.contains("hourledger_webhooks_total{helpdesk=\"glpi\",outcome=\"\(outcome)\"} \(count)\n"), "\(outcome)")
            }
            #expect(metrics.contains("hourledger_webhook_hints_pending 1.0\n"))
        }
        // Six accepted deliveries about ticket 42 and its task: one durable hint, counted six times.
        let hints = try runtime.ledger.pendingHints()
        #expect(hints.map(\.ticketID) == [42] && hints.first?.count == 6)
        #expect(runtime.ledger.hintsArrived.isPending)
    }

    static func signed(_ body: String, timestamp: String = "1795430000", secret: String = Self.secret) -> HTTPFields {
        [HTTPField.Name("X-GLPI-signature")!: GLPISignature.sign(body: Array(body.utf8), timestamp: timestamp, secret: secret),
         HTTPField.Name("X-GLPI-timestamp")!: timestamp]
    }

    @Test func refusalsAreDistinctAndTouchNothing() async throws {
        let directory = TemporaryDirectory()
        let clock = TestClock()
        let runtime = try runtime(secrets: [Self.secret], directory: directory, clock: clock.wall)
        clock.set(1_795_430_000)
        let app = buildApplication(runtime: runtime)
        try await app.test(.router) { client in
            func post(_ body: String, _ headers: HTTPFields) async throws -> (HTTPResponse.Status, String) {
                try await client.execute(uri: "/webhooks/glpi", method: .post, headers: headers, body: ByteBuffer(string: body)) {
                    ($0.status, String(buffer: $0.body))
                }
            }
            let ticket = #"{"item": {"id": 7, "type": 1, "status": {"id": 1, "name": "New"}, "entity": {"id": 1, "name": "A"}}, "event": "new"}"#
            let answer1 = try await post(ticket, [:]).0
            #expect(answer1 == .unauthorized)
            let answer2 = try await post(ticket, Self.signed(ticket, secret: "0123456789abcdefghijABCDEFGHIJ012345678X")).0
            #expect(answer2 == .unauthorized)
            let answer3 = try await post(ticket + " ", Self.signed(ticket)).0
            #expect(answer3 == .unauthorized)
            // Five minutes either way is the default window.
            let answer4 = try await post(ticket, Self.signed(ticket, timestamp: "1795429699")).0
            #expect(answer4 == .forbidden)
            let answer5 = try await post(ticket, Self.signed(ticket, timestamp: "1795430301")).0
            #expect(answer5 == .forbidden)
            let answer6 = try await post(ticket, Self.signed(ticket, timestamp: "17954300OO")).0
            #expect(answer6 == .forbidden)
            let notJSON = "{\"item\": {\"id\": 7"
            let (malformedStatus, malformedBody) = try await post(notJSON, Self.signed(notJSON))
            #expect(malformedStatus == .badRequest && malformedBody.contains("not JSON"))
            let noID = #"{"item": {"name": "x"}, "event": "new"}"#
            let (noIDStatus, noIDBody) = try await post(noID, Self.signed(noID))
            #expect(noIDStatus == .badRequest && noIDBody.contains("no item.id"))
            let huge = "{\"item\": {\"id\": 7}, \"pad\": \"" + String(repeating: "x", count: 256 * 1024) + "\"}"
            let answer7 = try await post(huge, Self.signed(huge)).0
            #expect(answer7 == .contentTooLarge)
            // A signed webhook about something else (an asset) is acknowledged, so GLPI does not retry it, and ignored.
            let computer = #"{"item": {"id": 12, "name": "PC-12"}, "event": "update"}"#
            let (ignoredStatus, ignoredBody) = try await post(computer, Self.signed(computer))
            #expect(ignoredStatus == .ok && ignoredBody.contains("not a Ticket"))
            #expect(try runtime.ledger.pendingHints().isEmpty)
            // The window edges themselves are inside.
            let answer8 = try await post(ticket, Self.signed(ticket, timestamp: "1795429700")).0
            #expect(answer8 == .ok)
            let answer9 = try await post(ticket, Self.signed(ticket, timestamp: "1795430300")).0
            #expect(answer9 == .ok)
            // A challenge made with a secret that is not ours, and a GET that is no challenge.
            let foreign = GLPISignature.hmac("validate_cra_challenge", secret: "someone-else")
            let answer10 = try await client.execute(uri: "/webhooks/glpi?crc_token=\(foreign)", method: .get) { $0.status }
            #expect(answer10 == .unauthorized)
            let answer11 = try await client.execute(uri: "/webhooks/glpi", method: .get) { $0.status }
            #expect(answer11 == .badRequest)
            // The iTop endpoint is not live on a GLPI daemon.
            let answer12 = try await client.execute(uri: "/webhooks/itop?token=\(Self.secret)", method: .post, body: ByteBuffer(string: "{\"id\": \"7\"}")) { $0.status }
            #expect(answer12 == .notFound)
        }
        #expect(try runtime.ledger.pendingHints().map(\.ticketID) == [7])
    }

    @Test func aRotatedSecretIsAcceptedUntilAReloadDropsIt() async throws {
        let directory = TemporaryDirectory()
        let newSecret = "NEWsecretNEWsecretNEWsecretNEWsecret0000"
        let clock = TestClock()
        let runtime = try runtime(secrets: [newSecret, Self.secret], directory: directory, clock: clock.wall)
        let app = buildApplication(runtime: runtime)
        let old = try GLPIDelivery.load("04_tickettask_new.json")
        let body = String(decoding: old.body, as: UTF8.self)
        let challenge = try GLPIDelivery.load("07_cra_challenge.json")
        let reloader = ConfigReloader(path: directory.path + "/hourledger.yaml", runtime: runtime, webhooks: runtime.webhooks,
                                      notifier: SystemdNotifier(environment: [:]))
        try await app.test(.router) { client in
            clock.set(old.receivedAt)
            let answer13 = try await client.execute(uri: old.path, method: .post, headers: old.httpFields, body: ByteBuffer(bytes: old.body)) { $0.status }
            #expect(answer13 == .ok)
            let signedWithNew: HTTPFields = [HTTPField.Name("X-GLPI-signature")!: GLPISignature.sign(body: old.body, timestamp: "1795428904", secret: newSecret),
                                             HTTPField.Name("X-GLPI-timestamp")!: "1795428904"]
            let answer14 = try await client.execute(uri: old.path, method: .post, headers: signedWithNew, body: ByteBuffer(string: body)) { $0.status }
            #expect(answer14 == .ok)
            let answer15 = try await client.execute(uri: challenge.path, method: .get) { String(buffer: $0.body) }
            #expect(answer15 == challenge.expectedSignature)

            // The rotation ends: the secret file now holds only the new secret, and the daemon is reloaded.
            _ = directory.write("webhook-secret", newSecret + "\n")
            _ = directory.write("hourledger.yaml", configYAML(
                url: "http://127.0.0.1:9/apirest.php", database: directory.path + "/ledger.sqlite",
                contracts: "  - {id: alpha, name: Alpha, entity: 1, quota_hours: 40, period: monthly, starts: 2026-01-01, timezone: UTC}",
                extraHelpdesk: "  webhook_secret_file: \(directory.path)/webhook-secret"))
            #expect(await reloader.reload())
            var resent = old.httpFields
            resent[HTTPField.Name("X-GLPI-timestamp")!] = "1795428905"
            resent[HTTPField.Name("X-GLPI-signature")!] = GLPISignature.sign(body: old.body, timestamp: "1795428905", secret: Self.secret)
            let answer16 = try await client.execute(uri: old.path, method: .post, headers: resent, body: ByteBuffer(bytes: old.body)) { $0.status }
            #expect(answer16 == .unauthorized)
            let answer17 = try await client.execute(uri: challenge.path, method: .get) { $0.status }
            #expect(answer17 == .unauthorized)
        }
        #expect(try runtime.ledger.pendingHints().first?.count == 2)
    }

    /// Thousands of random and mutated deliveries: every answer is a 4xx, nothing is stored, nothing crashes.
    @Test func fuzzedDeliveriesAreAllRefusedAndApplyNothing() async throws {
        let directory = TemporaryDirectory()
        let clock = TestClock()
        let runtime = try runtime(secrets: [Self.secret], directory: directory, clock: clock.wall)
        let examples = try GLPIDelivery.all().filter { $0.method == "POST" }
        let app = buildApplication(runtime: runtime)
        let rounds = 4000
        try await app.test(.router) { client in
            var random = SplitMix64(seed: 20261121)
            var statuses: [Int: Int] = [:]
            for round in 0..<rounds {
                let example = examples[Int(random.next() % UInt64(examples.count))]
                clock.set(example.receivedAt)
                var body = example.body
                var headers = example.httpFields
                let signature = HTTPField.Name("X-GLPI-signature")!, timestamp = HTTPField.Name("X-GLPI-timestamp")!
                switch round % 8 {
                case 0:  // flip bytes, keep GLPI's signature
                    for _ in 0...Int(random.next() % 8) where !body.isEmpty {
                        body[Int(random.next() % UInt64(body.count))] ^= UInt8(truncatingIfNeeded: random.next() | 1)
                    }
                case 1:  // random bytes, random signature
                    body = (0..<Int(random.next() % 4096)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                    headers[signature] = GLPISignature.hex((0..<32).map { _ in UInt8(truncatingIfNeeded: random.next()) })
                case 2:  // correctly signed, truncated JSON
                    body = Array(body.prefix(Int(random.next() % UInt64(max(body.count - 1, 1)))))
                    headers[signature] = GLPISignature.sign(body: body, timestamp: headers[timestamp]!, secret: Self.secret)
                case 3:  // correctly signed random bytes
                    body = (0..<Int(random.next() % 2048)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                    headers[signature] = GLPISignature.sign(body: body, timestamp: headers[timestamp]!, secret: Self.secret)
                case 4:  // mangled headers
                    let junk = String(decoding: (0..<Int(random.next() % 80)).map { _ in UInt8(33 + random.next() % 94) }, as: UTF8.self)
                    if random.next() % 2 == 0 { headers[signature] = junk } else { headers[timestamp] = junk }
                    if random.next() % 3 == 0 { headers[signature] = nil }
                case 5:  // valid signature, timestamp moved out of the window
                    let shift = Int(random.next() % 100_000) + 301
                    let moved = String(example.receivedAt + (random.next() % 2 == 0 ? shift : -shift))
                    headers[timestamp] = moved
                    headers[signature] = GLPISignature.sign(body: body, timestamp: moved, secret: Self.secret)
                case 6:  // upper-case or truncated signature of the right body
                    let right = GLPISignature.sign(body: body, timestamp: headers[timestamp]!, secret: Self.secret)
                    headers[signature] = random.next() % 2 == 0 ? right.uppercased() : String(right.dropLast(Int(random.next() % 63) + 1))
                default:  // signed with a near-miss secret
                    var secret = Array(Self.secret.utf8)
                    secret[Int(random.next() % UInt64(secret.count))] ^= 0x20
                    headers[signature] = GLPISignature.sign(body: body, timestamp: headers[timestamp]!, secret: String(decoding: secret, as: UTF8.self))
                }
                if random.next() % 5 == 0 { headers[.contentType] = ["application/json", "text/plain", "x/\u{7f}"][Int(random.next() % 3)] }
                let status = try await client.execute(uri: "/webhooks/glpi", method: .post, headers: headers, body: ByteBuffer(bytes: body)) { $0.status }
                statuses[status.code, default: 0] += 1
            }
            print("fuzz: \(rounds) deliveries answered \(statuses.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }.joined(separator: ", "))")
            #expect(statuses.values.reduce(0, +) == rounds)
            #expect(statuses.keys.allSatisfy { (400..<500).contains($0) }, "\(statuses)")
            #expect(Set(statuses.keys).isSuperset(of: [400, 401, 403]), "\(statuses)")
        }
        #expect(try runtime.ledger.pendingHints().isEmpty)
        #expect(try runtime.ledger.counts().entries == 0)
        #expect(!runtime.ledger.hintsArrived.isPending)
    }

    /// Hundreds of deliveries for many tickets become one sync, whose reads are batched searches by id, not one per hint.
    @Test func manyHintsBecomeBatchedSearches() async throws {
        let directory = TemporaryDirectory()
        let state = makeFixtureState()
        for id in 1...250 { state.addTicket(id, name: "T\(id)", entity: 1, category: 1, groups: [1]) }
        let server = try await FakeGLPIServer(state: state)
        defer { Task { await server.stop() } }
        let clock = TestClock()
        let runtime = try runtime(secrets: [Self.secret], directory: directory, url: server.url, clock: clock.wall)
        try await runtime.engine.syncOnce()
        // A later change moves the poll window past the 250 tickets.
        state.advance(seconds: 3600)
        state.addTicket(251, name: "Later", entity: 1, category: 1, groups: [1])
        try await runtime.engine.syncOnce()
        clock.set(1_795_430_000)
        let app = buildApplication(runtime: runtime)
        try await app.test(.router) { client in
            // 500 deliveries: each of 250 tickets twice, in reverse order the second time, as GLPI may.
            for (pass, id) in Array(1...250).map({ (0, $0) }) + (1...250).reversed().map({ (1, $0) }) {
                let body = "{\n    \"item\": {\n        \"id\": \(1000 + id),\n        \"tickets_id\": \(id),\n        \"duration\": 600\n    },\n    \"event\": \"update\"\n}"
                let stamp = String(1_795_430_000 - id % 7 - pass * 10)
                let status = try await client.execute(uri: "/webhooks/glpi", method: .post,
                                                      headers: [HTTPField.Name("X-GLPI-signature")!: GLPISignature.sign(body: Array(body.utf8), timestamp: stamp, secret: Self.secret),
                                                                HTTPField.Name("X-GLPI-timestamp")!: stamp],
                                                      body: ByteBuffer(string: body)) { $0.status }
                #expect(status == .ok)
            }
        }
        #expect(try runtime.ledger.pendingHints().count == 250)
        state.clearRequests()
        let report = try await runtime.engine.syncOnce()
        #expect(report.hintsServed == 250)
        let searches = state.requests.filter { $0.target.hasPrefix("/apirest.php/search/Ticket") }
        // One poll-window search, then the 250 hinted ids in three searches of at most 100 ids.
        #expect(searches.count == 4, "\(searches.map { String($0.target.prefix(300)) })")
        #expect(try runtime.ledger.pendingHints().isEmpty)
    }
}
