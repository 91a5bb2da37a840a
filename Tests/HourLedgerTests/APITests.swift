import FakeGLPI
import Foundation
import HourLedgerUseCases
import HourLedgerApp
@testable import HourLedgerServer
import HourLedgerStore
import Hummingbird
import HummingbirdTesting
import Testing

@Suite struct APITests {
    let contracts = """
      - { id: acme-2026, name: ACME, entity: 1, quota_hours: 2, starts: 2026-01-01, timezone: Europe/Paris,
          rounding: { increment_minutes: 15, mode: up } }
    """

    func json(_ buffer: ByteBuffer) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView))
    }

    @Test func statusContractsAndHealthAfterASync() async throws {
        let directory = TemporaryDirectory()
        let server = try await FakeGLPIServer(state: makeFixtureState())
        defer { Task { await server.stop() } }
        server.state.addTicket(1, name: "Laptop", entity: 1, category: 1, groups: [1])
        server.state.addTask(ticket: 1, seconds: 1000)
        let config = try ConfigLoader.parse(configYAML(url: server.url, database: directory.path + "/l.sqlite", contracts: contracts))
        let runtime = try Runtime(configuration: config)
        try await runtime.engine.syncOnce()

        let token = try runtime.ledger.createToken(user: "ops", helpdeskUserID: 2, role: .technician)
        let auth: HTTPFields = [.authorization: "Bearer \(token)"]
        let app = buildApplication(runtime: runtime)
        try await app.test(.router) { client in
            try await client.execute(uri: "/status", method: .get) { response in
                #expect(response.status == .ok)
                let body = try json(response.body) as! [String: Any]
                let helpdesk = body["helpdesk"] as! [String: Any]
                #expect(helpdesk["reachable"] as? Bool == true)
                #expect(helpdesk["url"] as? String == server.url)
                #expect(helpdesk["last_successful_poll"] is String)
                #expect(body["tickets_seen"] as? Int == 1)
                #expect(body["unmatched_tickets"] as? Int == 0)
                let text = String(buffer: response.body)
                #expect(!text.contains("fixture-app-token") && !text.contains("fixture-user-token"))
                // Its contracts are written by hand into the encoded rest: the same bytes as encoding it whole.
                let decoder = JSONDecoder()
                decoder.dateDecodingStrategy = .iso8601
                let status = try decoder.decode(StatusBody.self, from: Data(text.utf8))
                #expect(status.contracts.map(\.id) == ["acme-2026"])
                #expect(text == String(decoding: try JSONBody.encode(status), as: UTF8.self))
            }
            try await client.execute(uri: "/api/v1/contracts", method: .get, headers: auth) { response in
                let text = String(buffer: response.body)
                let decoder = JSONDecoder()
                decoder.dateDecodingStrategy = .iso8601
                let balances = try decoder.decode([ContractBalance].self, from: Data(text.utf8))
                #expect(balances.map(\.id) == ["acme-2026"])
                #expect(text == String(decoding: try JSONBody.encode(balances), as: UTF8.self))
                #expect(response.headers[.contentType] == "application/json; charset=utf-8")
            }
            try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/api/v1/contracts/acme-2026?at=2026-11-21T19:00:00Z", method: .get, headers: auth) { response in
                #expect(response.status == .ok)
                let body = try json(response.body) as! [String: Any]
                let balance = body["balance"] as! [String: Any]
                #expect(balance["used_seconds"] as? Int == 1800)
                #expect(balance["raw_seconds"] as? Int == 1000)
                #expect(balance["remaining_seconds"] as? Int == 5400)
                #expect(balance["period_start"] as? String == "2026-11-01T00:00:00+01:00")
                let tickets = body["tickets"] as! [[String: Any]]
                #expect(tickets.map { $0["ticket_id"] as? Int } == [1])
            }
            try await client.execute(uri: "/api/v1/contracts/nope", method: .get, headers: auth) { response in
                #expect(response.status == .notFound)
                let body = try json(response.body) as! [String: Any]
                #expect(body["field"] as? String == "id")
            }
            try await client.execute(uri: "/api/v1/contracts/acme-2026?at=yesterday", method: .get, headers: auth) { #expect($0.status == .badRequest) }
        }
    }

    @Test func healthIsUnavailableWhenTheHelpdeskWasNeverReached() async throws {
        let directory = TemporaryDirectory()
        // Nothing listens on port 9 of loopback.
        let config = try ConfigLoader.parse(configYAML(url: "http://127.0.0.1:9/apirest.php", database: directory.path + "/l.sqlite", contracts: contracts))
        let runtime = try Runtime(configuration: config)
        for _ in 0..<3 { _ = try? await runtime.engine.syncOnce() }
        let app = buildApplication(runtime: runtime)
        try await app.test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .serviceUnavailable) }
            try await client.execute(uri: "/status", method: .get) { response in
                let body = try json(response.body) as! [String: Any]
                let helpdesk = body["helpdesk"] as! [String: Any]
                #expect(helpdesk["reachable"] as? Bool == false)
                #expect((helpdesk["last_error"] as? String)?.contains("initSession") == true)
            }
        }
    }

    @Test func balancesJSONHasTheKeysScriptsUse() throws {
        let config = try ConfigLoader.parse(configYAML(url: "http://x/apirest.php", database: "/nonexistent/unused.sqlite", contracts: contracts))
        let store = try makeLedger(contracts: config.contracts)
        let text = Report.balances(try store.contractBalances(at: .utc("2026-11-21 12:00:00")).balances, format: "json")
        let rows = try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [[String: Any]]
        #expect(rows.count == 1)
        for key in ["id", "period_start", "period_end", "quota_seconds", "used_seconds", "raw_seconds", "remaining_seconds"] {
            #expect(rows[0][key] != nil, "missing \(key)")
        }
        #expect(rows[0]["quota_seconds"] as? Int == 7200)
        let csv = Report.balances(try store.contractBalances(at: .utc("2026-11-21 12:00:00")).balances, format: "csv")
        #expect(csv.split(separator: "\n").first 
                == "id,period_start,period_end,quota_seconds,used_seconds,raw_seconds,remaining_seconds,percent_used,entry_count,carried_in_seconds,expired_seconds,overage_seconds,depletes_at")
    }
}
