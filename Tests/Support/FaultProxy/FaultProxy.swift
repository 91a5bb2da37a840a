import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A TCP proxy on 127.0.0.1 that passes HTTP/1.1 to a server and injects the faults of a real network and a busy
/// helpdesk: a request held before it is forwarded (and forwarded even when its client has gone, as a request queued
/// behind busy PHP workers still runs), an answer dropped after the server applied the request, a connection reset in
/// the middle of an answer.
///
/// Blocking sockets and two threads per connection: the proxy serves a test's few connections and must be obvious.
public final class FaultProxy: @unchecked Sendable {
    public enum Fault: Sendable, Equatable, CustomStringConvertible {
        case pass
        /// Forward the request only after this long, whatever its client does meanwhile.
        case hold(Duration)
        /// Forward the request; once the server answers, reset the client's connection instead of passing it on.
        case dropAnswer
        /// Hold, then drop the answer.
        case holdThenDrop(Duration)
        /// Pass the first half of the answer's first bytes, then reset the client's connection.
        case resetMidBody

        public var description: String {
            switch self {
            case .pass: "pass"
            case .hold: "hold"
            case .dropAnswer: "drop_answer"
            case .holdThenDrop: "hold_then_drop"
            case .resetMidBody: "reset_mid_body"
            }
        }
    }

    /// One request as it passes: enough for a fault plan to tell reads from writes.
    public struct Request: Sendable {
        public let method: String
        public let target: String
        public let body: String
    }

    public let port: Int
    private let upstreamPort: Int
    private let decide: @Sendable (Request) -> Fault
    private let sockets: LoopbackSockets
    private let lock = NSLock()
    private var counts: [String: Int] = [:]

    /// Starts listening on a free port of 127.0.0.1; `decide` picks each request's fault.
    public init(upstreamPort: Int, decide: @escaping @Sendable (Request) -> Fault) throws {
        self.upstreamPort = upstreamPort
        self.decide = decide
        sockets = try LoopbackSockets()
        port = sockets.port
        sockets.accept { [self] client in Connection(proxy: self, client: client).clientPump() }
    }

    /// How often each fault was applied.
    public var faultsApplied: [String: Int] { lock.withLock { counts } }

    /// Stops accepting and cuts every open connection.
    public func stop() { sockets.stop() }

    fileprivate func forget(_ fd: Int32) { sockets.forget(fd) }

    fileprivate func count(_ fault: Fault) { lock.withLock { counts[fault.description, default: 0] += 1 } }

    fileprivate func choose(_ request: Request) -> Fault { decide(request) }

    fileprivate func connectUpstream() -> Int32? { sockets.connect(port: upstreamPort) }
}

/// One client connection and its upstream connection. Each pump owns one socket and alone closes it; the other pump
/// only shuts it down (which wakes a blocked read), so a descriptor is never closed under a reader.
private final class Connection: @unchecked Sendable {
    let proxy: FaultProxy
    let client: Int32
    var upstream: Int32 = -1
    let state = NSLock()
    /// The fault of the request whose answer is awaited.
    var fault: FaultProxy.Fault = .pass
    var awaitingAnswer = false
    var clientGone = false
    /// Set by the upstream pump: the client's connection is to end with a reset.
    var resetClient = false
    var clientClosed = false
    var upstreamClosed = false

    init(proxy: FaultProxy, client: Int32) {
        self.proxy = proxy
        self.client = client
    }

    /// Client to upstream: frames requests by Content-Length, applies each one's hold, forwards it.
    func clientPump() {
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        reading: while true {
            let count = read(client, &chunk, chunk.count)
            if count <= 0 || state.withLock({ resetClient }) { break }
            buffer.append(contentsOf: chunk[0..<count])
            while let (request, length) = Self.frame(buffer) {
                let bytes = Array(buffer[0..<length])
                buffer.removeFirst(length)
                let fault = proxy.choose(request)
                proxy.count(fault)
                switch fault {
                case .hold(let delay), .holdThenDrop(let delay):
                    // Held in flight: forwarded after the delay even if the client has gone by then.
                    Thread.sleep(forTimeInterval: Double(delay.components.seconds) + Double(delay.components.attoseconds) / 1e18)
                default:
                    break
                }
                guard forward(bytes, fault: fault) else {
                    state.withLock { resetClient = true }
                    break reading
                }
            }
        }
        state.withLock {
            clientGone = true
            if resetClient {
                var hard = linger(l_onoff: 1, l_linger: 0)
                setsockopt(client, SOL_SOCKET, SO_LINGER, &hard, socklen_t(MemoryLayout<linger>.size))
            }
            clientClosed = true
            proxy.forget(client)
            // Nothing in flight: the upstream connection has nothing left to carry. A request in flight keeps it
            // open until the server has answered, as a request queued at a busy server still runs.
            if !awaitingAnswer, upstream >= 0, !upstreamClosed { shutdown(upstream, Int32(SHUT_RDWR)) }
        }
    }

    private func forward(_ bytes: [UInt8], fault: FaultProxy.Fault) -> Bool {
        if upstream < 0 {
            guard let fd = proxy.connectUpstream() else { return false }
            upstream = fd
            Thread { self.upstreamPump() }.start()
        }
        state.withLock {
            self.fault = fault
            awaitingAnswer = true
        }
        return Self.writeAll(upstream, bytes)
    }

    /// Upstream to client: passes answers on, or drops or cuts them.
    func upstreamPump() {
        var chunk = [UInt8](repeating: 0, count: 65536)
        pumping: while true {
            let count = read(upstream, &chunk, chunk.count)
            if count <= 0 { break }
            let (fault, gone) = state.withLock { () -> (FaultProxy.Fault, Bool) in
                awaitingAnswer = false
                return (self.fault, clientGone)
            }
            if gone { break }
            switch fault {
            case .pass, .hold:
                let passed = state.withLock { !clientClosed && Self.writeAll(client, Array(chunk[0..<count])) }
                guard passed else { break pumping }
            case .dropAnswer, .holdThenDrop:
                cutClient()
                break pumping
            case .resetMidBody:
                state.withLock { if !clientClosed { _ = Self.writeAll(client, Array(chunk[0..<max(1, count / 2)])) } }
                cutClient()
                break pumping
            }
        }
        // The server closed, or the answer was cut: the client's connection ends too.
        state.withLock {
            if !clientClosed { shutdown(client, Int32(SHUT_RD)) }
            upstreamClosed = true
            proxy.forget(upstream)
        }
    }

    /// Asks the client pump to end the client's connection with a reset, waking its read.
    private func cutClient() {
        state.withLock {
            resetClient = true
            if !clientClosed { shutdown(client, Int32(SHUT_RD)) }
        }
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written <= 0 { return false }
            offset += written
        }
        return true
    }

    /// A complete request at the start of `buffer`, and its length; nil until all of it has arrived.
    static func frame(_ buffer: [UInt8]) -> (FaultProxy.Request, Int)? {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard buffer.count >= 4, let end = (0...(buffer.count - 4)).first(where: { Array(buffer[$0..<($0 + 4)]) == separator }) else { return nil }
        let head = String(decoding: buffer[0..<end], as: UTF8.self)
        let lines = head.components(separatedBy: "\r\n")
        let requestLine = lines.first?.split(separator: " ") ?? []
        var length = 0
        for line in lines.dropFirst() {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "content-length" {
                length = Int(parts[1].trimmingCharacters(in: .whitespaces)) ?? 0
            }
        }
        let total = end + 4 + length
        guard buffer.count >= total else { return nil }
        let request = FaultProxy.Request(method: requestLine.first.map(String.init) ?? "", target: requestLine.count > 1 ? String(requestLine[1]) : "",
                                         body: String(decoding: buffer[(end + 4)..<total], as: UTF8.self))
        return (request, total)
    }
}
