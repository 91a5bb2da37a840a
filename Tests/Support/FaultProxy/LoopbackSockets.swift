import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The sockets of a test's loopback proxy: the listener on a free port of 127.0.0.1, each connection it accepted or
/// made upstream, and a stop that cuts them all. Blocking sockets, a thread per accepted connection.
final class LoopbackSockets: @unchecked Sendable {
    let port: Int
    private let listener: Int32
    private let lock = NSLock()
    private var stopped = false
    private var open: Set<Int32> = []

    init() throws {
        (listener, port) = try Self.listenOnLoopback()
    }

    var isStopped: Bool { lock.withLock { stopped } }

    /// Calls `handle` on a thread of its own for each connection accepted, until `stop`.
    func accept(_ handle: @escaping @Sendable (Int32) -> Void) {
        Thread { [self] in
            while true {
                let client = Glibc.accept(listener, nil, nil)
                if client < 0 {
                    if isStopped { return }
                    continue
                }
                track(client)
                Thread { handle(client) }.start()
            }
        }.start()
    }

    /// A connection to 127.0.0.1:`port`, tracked; nil when nothing listens there.
    func connect(port: Int) -> Int32? {
        guard let fd = Self.connectLoopback(port: port) else { return nil }
        track(fd)
        return fd
    }

    /// Closes a socket this set tracks (once, whoever asks).
    func forget(_ fd: Int32) {
        if lock.withLock({ open.remove(fd) != nil }) { close(fd) }
    }

    /// Stops accepting and shuts every open connection down (their owners close them).
    func stop() {
        let sockets = lock.withLock { () -> Set<Int32> in
            stopped = true
            return open
        }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        for fd in sockets { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    private func track(_ fd: Int32) { lock.withLock { _ = open.insert(fd) } }

    static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    /// A listening socket on a free port of 127.0.0.1, and that port.
    static func listenOnLoopback() throws -> (Int32, Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 128) == 0 else {
            close(fd)
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EADDRINUSE)
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }

    /// A connection to 127.0.0.1:`port`, or nil when nothing listens there.
    static func connectLoopback(port: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = loopback(port: UInt16(port))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            return nil
        }
        return fd
    }

}
