import Hummingbird
import Logging
import ServiceLifecycle

/// A Hummingbird router served on 127.0.0.1, for the fake helpdesks: started, bound and stoppable from a test.
public struct LoopbackServer: Sendable {
    private let task: Task<Void, any Error>
    private let group: ServiceGroup
    public let port: Int

    /// Starts listening on a free port (or `port`) and returns once the socket is bound.
    public init(router: Router<BasicRequestContext>, label: String, port: Int = 0) async throws {
        let (stream, continuation) = AsyncStream.makeStream(of: Int.self)
        var logger = Logger(label: label)
        logger.logLevel = .critical
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: nil),
            onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) },
            logger: logger)
        let group = ServiceGroup(services: [app], gracefulShutdownSignals: [], logger: logger)
        self.group = group
        task = Task { try await group.run() }
        var iterator = stream.makeAsyncIterator()
        guard let bound = await iterator.next(), bound > 0 else { throw CouldNotBind() }
        self.port = bound
    }

    /// Stops gracefully: the listener closes, and every connection already accepted is served and closed. Cancelling
    /// the serving task instead can drop a connection NIO accepted but had not handed over, which traps
    /// ("Deinited NIOAsyncWriter without calling finish()", swift-nio#2637). A request still held after 10 s is cut.
    public func stop() async {
        await group.triggerGracefulShutdown()
        let task = self.task
        let deadline = Task {
            try await Task.sleep(for: .seconds(10))
            task.cancel()
        }
        _ = try? await task.value
        deadline.cancel()
    }

    public struct CouldNotBind: Error {}

    /// `a=1&b=x+y` as pairs, in order, with `+` and percent escapes decoded.
    public static func parseForm(_ text: String) -> [(String, String)] {
        text.split(separator: "&").map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).replacingOccurrences(of: "+", with: " ") }
            return (parts[0].removingPercentEncoding ?? parts[0], (parts.count > 1 ? parts[1] : "").removingPercentEncoding ?? "")
        }
    }
}
