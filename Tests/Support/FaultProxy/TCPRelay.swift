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
    private let listener: Int32
    private let lock = NSLock()
    private var cut = false
    private var stopped = false
    private var sockets: Set<Int32> = []

    public init(upstreamPort: Int) throws {
        self.upstreamPort = upstreamPort
        (listener, port) = try FaultProxy.listenOnLoopback()
        Thread { [self] in acceptLoop() }.start()
    }

    public var partitioned: Bool {
        get { lock.withLock { cut } }
        set { lock.withLock { cut = newValue } }
    }

    /// Closes everything: both ends see their connections reset.
    public func stop() {
        let open = lock.withLock { () -> Set<Int32> in
            stopped = true
            return sockets
        }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        for fd in open { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 {
                if lock.withLock({ stopped }) { return }
                continue
            }
            track(client)
            Thread { [self] in
                // A connection made while cut off waits, unanswered, until the partition heals.
                while partitioned, !lock.withLock({ stopped }) { usleep(50_000) }
                guard let upstream = connectUpstream() else {
                    forget(client)
                    return
                }
                Thread { [self] in pump(from: upstream, to: client) }.start()
                pump(from: client, to: upstream)
            }.start()
        }
    }

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
        forget(source)
    }

    private func track(_ fd: Int32) { lock.withLock { _ = sockets.insert(fd) } }

    private func forget(_ fd: Int32) {
        let known = lock.withLock { sockets.remove(fd) != nil }
        if known { close(fd) }
    }

    private func connectUpstream() -> Int32? {
        guard let fd = FaultProxy.connectLoopback(port: upstreamPort) else { return nil }
        track(fd)
        return fd
    }
}
