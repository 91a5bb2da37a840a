import CoreMetrics
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypes
import Synchronization

/// Limits on the HTTP listener's connections, shared by every connection's guard.
public final class ConnectionLimits: Sendable {
    /// Connections beyond this get a 503 and are closed at once: idle sockets cannot exhaust the daemon's descriptors.
    public let maxConnections: Int
    /// A connection must deliver a complete request head this soon after it opened or after its last answer, or it
    /// is closed: an idle keep-alive, or a client sending its headers a byte at a time.
    public let requestHeadTimeout: Duration
    let open = Atomic<Int>(0)
    let refused: Counter
    let timedOut: Counter

    public init(maxConnections: Int, requestHeadTimeout: Duration, metrics: any MetricsFactory = NOOPMetricsHandler.instance) {
        self.maxConnections = maxConnections
        self.requestHeadTimeout = requestHeadTimeout
        refused = Counter(label: "hourledger_http_connections_refused_total", factory: metrics)
        timedOut = Counter(label: "hourledger_http_connections_timed_out_total", factory: metrics)
    }

    /// Connections open now.
    public var current: Int { open.load(ordering: .relaxed) }
}

/// One connection's guard, in the pipeline right after HTTP decoding: counts the connection against the cap and
/// closes it when its request head does not arrive in time.
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let limits: ConnectionLimits
    private var counted = false
    private var refusing = false
    private var timer: Scheduled<Void>?

    init(limits: ConnectionLimits) { self.limits = limits }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    private func start(_ context: ChannelHandlerContext) {
        guard !counted else { return }
        counted = true
        let open = limits.open.wrappingAdd(1, ordering: .relaxed).newValue
        if open > limits.maxConnections {
            refusing = true
            limits.refused.increment()
            let body = ByteBuffer(string: #"{"error":"too many connections; try again shortly"}"#)
            let head = HTTPResponse(status: .serviceUnavailable, headerFields: [
                .contentType: "application/json; charset=utf-8", .contentLength: "\(body.readableBytes)", .retryAfter: "5", .connection: "close",
            ])
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(body)), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
            return
        }
        arm(context)
    }

    /// Waits for the next request head.
    private func arm(_ context: ChannelHandlerContext) {
        timer?.cancel()
        let limits = limits
        let channel = context.channel
        let nanoseconds = limits.requestHeadTimeout.components.seconds * 1_000_000_000 + limits.requestHeadTimeout.components.attoseconds / 1_000_000_000
        timer = context.eventLoop.scheduleTask(in: .nanoseconds(nanoseconds)) {
            limits.timedOut.increment()
            channel.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refusing else { return }
        if case .head = unwrapInboundIn(data) {
            timer?.cancel()
            timer = nil
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if !refusing, case .end = unwrapOutboundIn(data) { arm(context) }
        context.write(data, promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        if counted {
            counted = false
            limits.open.wrappingSubtract(1, ordering: .relaxed)
        }
        context.fireChannelInactive()
    }
}

extension ConnectionLimits {
    /// The server setup for the daemon's listener: the guard on every connection, and Hummingbird's idle timeout.
    public var server: HTTPServerBuilder {
        let limits = self
        let nanoseconds = requestHeadTimeout.components.seconds * 1_000_000_000 + requestHeadTimeout.components.attoseconds / 1_000_000_000
        return .http1(configuration: .init(additionalChannelHandlers: [ConnectionGuard(limits: limits)], idleTimeout: .nanoseconds(nanoseconds)))
    }
}
