import Foundation
import HourLedgerApp
import HourLedgerServer
import Hummingbird
import HummingbirdTesting
import Testing
import Yams

@Suite struct OpenAPITests {
    /// Every route the router serves is documented, with its method, and the document names no route that does not exist.
    @Test func theDocumentAndTheRouterAgree() async throws {
        let directory = TemporaryDirectory()
        let runtime = try Runtime(configuration: try ConfigLoader.parse(configYAML(
            url: "http://127.0.0.1:9/apirest.php", database: directory.path + "/ledger.sqlite",
            contracts: "  - {id: alpha, name: Alpha, entity: 1, quota_hours: 40, period: monthly, starts: 2026-01-01, timezone: UTC}")))
        let routed = Set(buildRouter(runtime: runtime).routes.map { "\($0.method.rawValue) \($0.path)" })
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
