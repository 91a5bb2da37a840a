import FakeGLPI
import Foundation
import HourLedgerUseCases
import HourLedgerHTTPClient
import Testing

/// The libcurl client against loopback servers: timeouts, refused connections and headers.
@Suite struct HTTPClientTests {
    @Test func totalTimeoutNamesTheHostAndWhatFailed() async throws {
        let server = try await FakeGLPIServer(state: makeFixtureState())
        defer { Task { await server.stop() } }
        // The server would answer after 10 s; the client gives up at 0.5 s. "Well before 10 s" holds on a loaded
        // machine too (the whole suite on two cores), where the wake-up after the timeout can take a second or two.
        server.state.failNext(1, status: 500, delay: .seconds(10))
        var configuration = HTTPClientConfiguration()
        configuration.totalTimeout = .milliseconds(500)
        let client = CurlHTTPClient(configuration: configuration)
        let started = ContinuousClock.now
        let error = await #expect(throws: HTTPClientError.self) {
            _ = try await client.send(HTTPRequest(url: server.url + "/initSession"))
        }
        #expect(error?.kind == .timedOut)
        #expect(error?.description.hasPrefix("GET to 127.0.0.1 failed:") == true)
        #expect(ContinuousClock.now - started < .seconds(5))
    }

    /// A request's total timeout counts from when it was sent, not from when a transfer thread took it: with every
    /// thread held by a slow server, a request gives up on time instead of waiting for a thread and then its timeout.
    @Test func theTotalTimeoutCoversTheWaitForATransferThread() async throws {
        let server = try await FakeGLPIServer(state: makeFixtureState())
        defer { Task { await server.stop() } }
        // The one thread is held 8 s; waiting for it would take over 7 s, giving up on time well under 4 s, even on a
        // loaded machine (the whole suite on two cores took 1.9 s for the 0.5 s timeout once).
        server.state.failNext(1, status: 500, delay: .seconds(8))
        let client = CurlHTTPClient(configuration: HTTPClientConfiguration(), transferThreads: 1)
        let slow = Task { try? await client.send(HTTPRequest(url: server.url + "/initSession")) }
        try await Task.sleep(for: .milliseconds(300))
        let started = ContinuousClock.now
        let error = await #expect(throws: HTTPClientError.self) {
            _ = try await client.send(HTTPRequest(url: server.url + "/initSession", timeout: .milliseconds(500)))
        }
        #expect(error?.kind == .timedOut)
        #expect(ContinuousClock.now - started < .seconds(4))
        _ = await slow.value
    }

    @Test func refusedConnectionIsTyped() async throws {
        let client = CurlHTTPClient()
        let error = await #expect(throws: HTTPClientError.self) {
            _ = try await client.send(HTTPRequest(url: "http://127.0.0.1:9/apirest.php/initSession"))
        }
        #expect(error?.kind == .couldNotConnect)
    }

    @Test func responseHeadersStatusAndBodyComeBack() async throws {
        let state = makeFixtureState()
        let server = try await FakeGLPIServer(state: state)
        defer { Task { await server.stop() } }
        let client = CurlHTTPClient()
        let response = try await client.send(HTTPRequest(url: server.url + "/initSession", headers: [("App-Token", state.appToken)]))
        #expect(response.status == 400)
        #expect(response.header("content-type") == "application/json; charset=UTF-8")
        #expect(String(decoding: response.body, as: UTF8.self).contains("ERROR_LOGIN_PARAMETERS_MISSING"))
        // The client offers compression and names itself.
        let sent = try #require(state.requests.last)
        #expect(sent.headers["accept-encoding"]?.contains("gzip") == true)
        #expect(sent.headers["user-agent"] == "HourLedger/\(HourLedgerVersion.current) (libcurl)")
    }

    @Test func manyConcurrentTransfersDoNotStarveEachOther() async throws {
        let state = makeFixtureState()
        let server = try await FakeGLPIServer(state: state)
        defer { Task { await server.stop() } }
        state.failNext(2, status: 503, delay: .milliseconds(800))
        let client = CurlHTTPClient()
        // Two slow transfers block their threads, not Swift's cooperative pool: 40 quick ones still finish meanwhile.
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<42 { group.addTask { try await client.send(HTTPRequest(url: server.url + "/initSession")).status } }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(statuses.filter { $0 == 503 }.count == 2)
        #expect(statuses.filter { $0 == 400 }.count == 40)
    }
}
