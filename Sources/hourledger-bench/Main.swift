import FakeGLPI
import Foundation
import HourLedgerHTTPClient

@main struct Bench {
    static func main() async throws {
        let state = FakeGLPIState()
        state.addEntity(1, name: "A")
        state.addTicket(1, name: "x", entity: 1, category: 0, groups: [])
        let server = try await FakeGLPIServer(state: state)
        let client = CurlHTTPClient()
        let start = Date()
        for _ in 0..<20 {
            _ = try await client.send(HTTPRequest(url: server.url + "/initSession", headers: [("App-Token", "fixture-app-token"), ("Authorization", "user_token fixture-user-token")]))
        }
        print("20 requests:", Date().timeIntervalSince(start))
    }
}
