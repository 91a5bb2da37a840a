import FakeGLPI
import HourLedgerCore
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

    /// The fake GLPI with ticket 1, "Laptop" on entity 1, holding one task of 1,000 s.
    func laptopGLPI() async throws -> FakeGLPIServer {
        let server = try await FakeGLPIServer(state: makeFixtureState())
        server.state.addTicket(1, name: "Laptop", entity: 1, category: 1, groups: [1])
        server.state.addTask(ticket: 1, seconds: 1000)
        return server
    }

    func json(_ buffer: ByteBuffer) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView))
    }

    /// The contract list and `/status` keep what they wrote while nothing changed; an entry, a second process's
    /// write, a reload, the next minute and a month end each show at the next read, and every answer equals the
    /// balances worked out afresh.
    @Test func theKeptListFollowsEveryWriteReloadMinuteAndMonthEnd() async throws {
        let directory = TemporaryDirectory()
        let server = try await laptopGLPI()
        defer { Task { await server.stop() } }
        let clock = TestClock()
        clock.set(Date.utc("2026-11-30 22:58:10"))  // 23:58:10 in Paris, two minutes before December
        let config = try ConfigLoader.parse(configYAML(url: server.url, database: directory.path + "/l.sqlite", contracts: contracts))
        let runtime = try Runtime(configuration: config, clock: clock.wall)
        try await runtime.engine.syncOnce(now: Date.utc("2026-11-21 19:00:00"))
        let token = try runtime.ledger.createToken(user: "ops", helpdeskUserID: 2, role: .manager)
        let auth: HTTPFields = [.authorization: "Bearer \(token)"]
        let app = buildApplication(runtime: runtime)
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        try await app.test(.router) { client in
            /// The list and /status's contracts, each checked against the balances worked out afresh at the clock's instant.
            func read() async throws -> [ContractBalance] {
                var listed: [ContractBalance] = []
                try await client.execute(uri: "/api/v1/contracts", method: .get, headers: auth) { response in
                    listed = try decoder.decode([ContractBalance].self, from: Data(buffer: response.body))
                }
                try await client.execute(uri: "/status", method: .get) { response in
                    let status = try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as! [String: Any]
                    let contracts = try JSONSerialization.data(withJSONObject: status["contracts"]!)
                    #expect(try decoder.decode([ContractBalance].self, from: contracts) == listed)
                }
                let fresh = try runtime.ledger.currentBalances(at: clock.read()).balances.map { ContractBalance(contract: $0.0, row: $0.1, now: clock.read()) }
                #expect(listed == fresh)
                return listed
            }
            let first = try await read()
            #expect(first.map(\.usedSeconds) == [1800] && first.first?.periodKey == "2026-11-01")
            clock.set(Date.utc("2026-11-30 22:58:40"))
            #expect(try await read() == first)

            // An entry through the API's ledger.
            _ = try await runtime.ledger.addEntry(NewEntry(ticketID: 1, technician: 7, startedAt: .utc("2026-11-21 09:00:00"), rawSeconds: 600,
                                                           kind: .billable, note: "", createdBy: "test"), now: clock.read())
            #expect(try await read().map(\.usedSeconds) == [2700])

            // A second process on the same file.
            let other = try Runtime(configuration: config, clock: clock.wall)
            _ = try await other.ledger.addEntry(NewEntry(ticketID: 1, technician: 7, startedAt: .utc("2026-11-22 09:00:00"), rawSeconds: 900,
                                                         kind: .billable, note: "", createdBy: "test"), now: clock.read())
            #expect(try await read().map(\.usedSeconds) == [3600])

            // A reload that renames the contract.
            var renamed = runtime.ledger.book.contracts
            renamed[0].name = "ACME Corp"
            await runtime.engine.updateContracts(renamed)
            #expect(try await read().map(\.name) == ["ACME Corp"])

            // The next minute moves the forecast; midnight in Paris starts December's period.
            let before = try await read()
            clock.set(Date.utc("2026-11-30 22:59:00"))
            let next = try await read()
            #expect(next.first?.forecast != nil && next.first?.forecast != before.first?.forecast)
            clock.set(Date.utc("2026-11-30 23:00:00"))
            let december = try await read()
            #expect(december.first?.periodKey == "2026-12-01" && december.first?.usedSeconds == 0)
        }
    }

    @Test func statusContractsAndHealthAfterASync() async throws {
        let directory = TemporaryDirectory()
        let server = try await laptopGLPI()
        defer { Task { await server.stop() } }
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
                == "id,period_start,period_end,quota_seconds,used_seconds,raw_seconds,remaining_seconds,percent_used,entry_count,carried_in_seconds,expired_seconds,overage_seconds,depletes_at,top_up_seconds")
    }
}
