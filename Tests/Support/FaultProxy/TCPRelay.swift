import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A plain TCP relay on loopback that can be cut off as a network partition cuts a host off: while `partitioned`,
/// nothing passes either way and new connections hang unanswered, yet no connection is closed, so neither end
/// learns of it but by its own timeouts. What was sent meanwhile is lost, as it would be.
public final class TCPRelay: @unchecked Sendable {
    public let port: Int
    private let upstreamPort: Int
    private let sockets: LoopbackSockets
    private let lock = NSLock()
    private var cut = false

    public init(upstreamPort: Int) throws {
        self.upstreamPort = upstreamPort
        sockets = try LoopbackSockets()
        port = sockets.port
        sockets.accept { [self] client in
            // A connection made while cut off waits, unanswered, until the partition heals.
            while partitioned, !sockets.isStopped { usleep(50_000) }
            guard let upstream = sockets.connect(port: upstreamPort) else {
                sockets.forget(client)
                return
            }
            Thread { [self] in pump(from: upstream, to: client) }.start()
            pump(from: client, to: upstream)
        }
    }

    public var partitioned: Bool {
        get { lock.withLock { cut } }
        set { lock.withLock { cut = newValue } }
    }

    /// Closes everything: both ends see their connections reset.
    public func stop() { sockets.stop() }

    /// Copies `source` to `target` until either end closes; while cut off, what arrives is dropped.
    private func pump(from source: Int32, to target: Int32) {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, 65_536) }
            if count <= 0 { break }
            if partitioned { continue }
            var sent = 0
            while sent < count {
                let written = buffer.withUnsafeBytes { write(target, $0.baseAddress! + sent, count - sent) }
                if written <= 0 { break }
                sent += written
            }
            if sent < count { break }
        }
        shutdown(target, Int32(SHUT_RDWR))
        shutdown(source, Int32(SHUT_RDWR))
        sockets.forget(source)
    }
}
