import Foundation
import HourLedgerApp
import HourLedgerCore
import HourLedgerHelpdeskKit
import HourLedgerHTTPClient
import HourLedgerMemoryStore
import HourLedgerUseCases
import Hummingbird
import HummingbirdTesting
import Testing
@_exported import TestKit

public func configYAML(url: String, database: String, contracts: String, extraHelpdesk: String = "") -> String {
    configYAML(helpdesk: """
      kind: glpi
      url: \(url)
      app_token: fixture-app-token
      user_token: fixture-user-token
      poll_interval_seconds: 60
    """, database: database, contracts: contracts, extraHelpdesk: extraHelpdesk)
}

/// A config with the given helpdesk keys, the test timeouts, a ledger file, loopback HTTP and the contracts.
public func configYAML(helpdesk: String, database: String, contracts: String, extraHelpdesk: String = "") -> String {
    """
    helpdesk:
    \(helpdesk)
      overlap_seconds: 120
      timeout_seconds: 5
      connect_timeout_seconds: 2
    \(extraHelpdesk)
    database:
      path: \(database)
    http:
      host: 127.0.0.1
      port: 0
    contracts:
    \(contracts)
    """
}


/// One answer of the API, its JSON decoded.
public struct APIAnswer {
    public var status: HTTPResponse.Status
    public var headers: HTTPFields
    public var text: String
    public var json: Any? { try? JSONSerialization.jsonObject(with: Data(text.utf8)) }
    public var object: [String: Any] { json as? [String: Any] ?? [:] }
    public var list: [[String: Any]] { json as? [[String: Any]] ?? [] }
    public var field: String? { object["field"] as? String }
}

extension TestClientProtocol {
    /// Sends a request with an optional bearer token and JSON body.
    public func call(_ method: HTTPRequest.Method, _ uri: String, token: String? = nil, body: String? = nil) async throws -> APIAnswer {
        var headers: HTTPFields = [:]
        if body != nil { headers[.contentType] = "application/json" }
        if let token { headers[.authorization] = "Bearer \(token)" }
        return try await execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) { response in
            APIAnswer(status: response.status, headers: response.headers, text: String(buffer: response.body))
        }
    }
}

/// A helpdesk that is never reached: API tests that must not open a socket fail loudly if anything tries.
public struct NoHelpdesk: HTTPSending {
    public init() {}

    public func send(_ request: HourLedgerHTTPClient.HTTPRequest) async throws -> HourLedgerHTTPClient.HTTPResponse {
        Issue.record("the API test reached the helpdesk: \(request.method) \(request.url)")
        throw HelpdeskError(.unreachable, operation: "test", detail: "no helpdesk in API tests")
    }
}

/// The API on the in-memory ledger with no helpdesk behind it: tickets are given as the poller would have stored
/// them, and `app.test(.router)` answers without a socket.
public struct APIHarness {
    public let runtime: Runtime
    public var ledger: Ledger { runtime.ledger }
    public var contracts: [Contract] { runtime.configuration.contracts }

    public static func start(contracts: String, tickets: [TicketFacts], tasks: [TaskFacts] = [], clock: WallClock = .system) async throws -> APIHarness {
        let config = try ConfigLoader.parse(configYAML(url: "http://127.0.0.1:9/apirest.php", database: "/nonexistent/unused.sqlite",
                                                       contracts: contracts))
        let runtime = try Runtime(configuration: config, repository: MemoryLedger(), http: NoHelpdesk(), clock: clock)
        _ = try await runtime.ledger.apply(tickets.map { ticket in
            TicketUpdate(ticket: ticket, dateMod: "2026-11-20 08:00:00",
                         match: ContractMatcher.match(ticket, contracts: config.contracts, entities: EntityTree(), terms: .glpi),
                         tasks: tasks.filter { $0.ticketID == ticket.id })
        })
        return APIHarness(runtime: runtime)
    }

    public func application() -> some ApplicationProtocol { buildApplication(runtime: runtime) }
}
