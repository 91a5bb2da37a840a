import Foundation
import AppTestKit
import HourLedgerMemoryStore
import HourLedgerUseCases
import HourLedgerApp
import HourLedgerServer
import Hummingbird
import HummingbirdTesting
import Testing
import Yams

@Suite struct OpenAPITests {
    /// Every route the router serves is documented, with its method, and the document names no route that does not exist.
    @Test func theDocumentAndTheRouterAgree() async throws {
        let runtime = try await APIHarness.start(
            contracts: "  - {id: alpha, name: Alpha, entity: 1, quota_hours: 40, period: monthly, starts: 2026-01-01, timezone: UTC}", tickets: []).runtime
        let all = Set(buildRouter(runtime: runtime).routes.map { "\($0.method.rawValue) \($0.path)" })
        // The dashboard's pages are HTML for browsers, not the API: the document covers the router without them.
        var withoutDashboard = runtime.configuration
        withoutDashboard.dashboard.enabled = false
        let apiRuntime = try Runtime(configuration: withoutDashboard, repository: MemoryLedger(), http: NoHelpdesk())
        let routed = Set(buildRouter(runtime: apiRuntime).routes.map { "\($0.method.rawValue) \($0.path)" })
        let pages = all.subtracting(routed)
        #expect(pages.contains("GET /contracts") && pages.contains("POST /sign-in"))
        #expect(pages.allSatisfy { !$0.contains(" /api/") && !$0.contains(" /webhooks/") }, "\(pages.sorted())")
        let document = try #require(try Yams.load(yaml: OpenAPIRoutes.document) as? [String: Any])
        #expect(document["openapi"] as? String == "3.1.0")
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        var documented: Set<String> = []
        for (path, operations) in paths {
            for method in operations.keys where ["get", "post", "put", "patch", "delete"].contains(method) {
                documented.insert("\(method.uppercased()) \(path)")
            }
        }
        #expect(routed.count >= 25)
        #expect(routed.subtracting(documented).isEmpty, "routes without documentation: \(routed.subtracting(documented).sorted())")
        #expect(documented.subtracting(routed).isEmpty, "documented routes that do not exist: \(documented.subtracting(routed).sorted())")
        // Every $ref points at something the document defines.
        let refs = OpenAPIRoutes.document.matches(of: /\$ref: "#\/components\/(\w+)\/(\w+)"/).map { (String($0.1), String($0.2)) }
        let components = try #require(document["components"] as? [String: [String: Any]])
        for (section, name) in refs { #expect(components[section]?[name] != nil, "\(section)/\(name)") }

        // It is served as it is written.
        try await buildApplication(runtime: runtime).test(.router) { client in
            let served = try await client.execute(uri: "/openapi.yaml", method: .get) { String(buffer: $0.body) }
            #expect(served == OpenAPIRoutes.document)
        }
    }
}

/// The document names every answer a client can get: 401 wherever a token is needed, 404 wherever a path names a
/// thing, 400 wherever a body is read, and the bounds the API enforces.
@Suite struct OpenAPIAnswersTests {
    @Test func everyOperationDocumentsItsRefusals() throws {
        let document = try #require(try Yams.load(yaml: OpenAPIRoutes.document) as? [String: Any])
        #expect((document["servers"] as? [[String: Any]])?.first?["url"] as? String == "http://127.0.0.1:8470")
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        for (path, operations) in paths {
            for (method, value) in operations {
                guard let operation = value as? [String: Any], let responses = operation["responses"] as? [String: Any] else { continue }
                let name = "\(method.uppercased()) \(path)"
                if operation["security"] != nil { #expect(responses["401"] != nil, "\(name) needs a token but documents no 401") }
                if path.hasPrefix("/api/"), path.contains("{") { #expect(responses["404"] != nil, "\(name) names a thing but documents no 404") }
                if operation["requestBody"] != nil, path.hasPrefix("/api/") { #expect(responses["400"] != nil, "\(name) reads a body but documents no 400") }
            }
        }
        // The bounds the API enforces are in the schemas.
        let patch = try #require(((paths["/api/v1/entries/{key}"]?["patch"] as? [String: Any])?["requestBody"] as? [String: Any]))
        let schema = (((patch["content"] as? [String: Any])?["application/json"] as? [String: Any])?["schema"] as? [String: Any])
        let duration = (schema?["properties"] as? [String: Any])?["duration_seconds"] as? [String: Any]
        #expect(duration?["minimum"] as? Int == 0 && duration?["maximum"] as? Int == 86400)
    }

    @Test func anOutOfRangeLimitIsRefusedNotClamped() async throws {
        let h = try await APIHarness.start(contracts: "  - { id: acme, name: ACME, entity: 1, quota_hours: 20, starts: 2026-01-01 }", tickets: [])
        let token = try h.runtime.ledger.createToken(user: "boss", helpdeskUserID: 2, role: .manager)
        try await buildApplication(runtime: h.runtime).test(.router) { client in
            for limit in ["1001", "0", "-5", "ten"] {
                let answer = try await client.call(.get, "/api/v1/alerts?limit=\(limit)", token: token)
                #expect(answer.status == .badRequest && answer.field == "limit", "limit=\(limit)")
            }
            #expect(try await client.call(.get, "/api/v1/alerts?limit=1000", token: token).status == .ok)
        }
    }
}
