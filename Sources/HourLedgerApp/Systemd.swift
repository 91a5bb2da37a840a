import Foundation
import HourLedgerUseCases
import Logging
import ServiceLifecycle
#if canImport(Glibc)
import Glibc
#endif

/// sd_notify without libsystemd: one datagram per message to `$NOTIFY_SOCKET`. Without that variable (not under
/// systemd, or `Type=` other than notify) every call is a no-op.
public struct SystemdNotifier: Sendable {
    /// The socket path; a leading `@` names an abstract socket.
    public let socketPath: String?

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        socketPath = environment["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Sends `state` (e.g. "READY=1", "STATUS=…"). Returns false if it could not be sent; systemd then acts on its
    /// own timeouts, which is what it would do with libsystemd too.
    @discardableResult
    public func notify(_ state: String) -> Bool {
        guard let socketPath else { return false }
        var path = Array(socketPath.utf8)
        if path.first == UInt8(ascii: "@") { path[0] = 0 }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.count < capacity else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: path)
        }
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + path.count)
        let bytes = Array(state.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                sendto(descriptor, bytes, bytes.count, Int32(MSG_NOSIGNAL), socketAddress, length)
            }
        }
        return sent == bytes.count
    }

    /// `WATCHDOG_USEC` as a duration, when systemd asks this process (`WATCHDOG_PID`, if set, is ours) for pings.
    public static func watchdogInterval(environment: [String: String] = ProcessInfo.processInfo.environment) -> Duration? {
        guard let text = environment["WATCHDOG_USEC"], let usec = Int64(text), usec > 0 else { return nil }
        if let pid = environment["WATCHDOG_PID"], pid != String(getpid()) { return nil }
        return .microseconds(usec)
    }

    /// `CLOCK_MONOTONIC` in microseconds, as `RELOADING=1` wants it in `MONOTONIC_USEC=`.
    static var monotonicMicroseconds: Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1000
    }
}

/// Feeds systemd's watchdog at half its interval, but only while the poller's loop is alive: a poller stuck for a
/// whole interval stops the pings, and systemd restarts the daemon. Also keeps `STATUS=` current and says
/// `STOPPING=1` as soon as shutdown begins.
public struct WatchdogService: Service {
    let notifier: SystemdNotifier
    let interval: Duration?
    let heartbeat: Heartbeat
    let status: @Sendable () async -> String
    let logger: Logger

    public init(notifier: SystemdNotifier, interval: Duration?, heartbeat: Heartbeat, logger: Logger,
                status: @escaping @Sendable () async -> String) {
        self.notifier = notifier
        self.interval = interval
        self.heartbeat = heartbeat
        self.status = status
        self.logger = logger
    }

    public func run() async throws {
        let tick = interval.map { $0 / 2 } ?? .seconds(15)
        var lastStatus = ""
        var stuckReported = false
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                if let interval {
                    if heartbeat.age < interval {
                        notifier.notify("WATCHDOG=1")
                        stuckReported = false
                    } else if !stuckReported {
                        stuckReported = true
                        logger.critical("poller loop silent; no longer feeding the systemd watchdog",
                                        metadata: ["silent_seconds": "\(heartbeat.age.components.seconds)"])
                    }
                }
                let line = await status()
                if line != lastStatus {
                    notifier.notify("STATUS=\(line)")
                    lastStatus = line
                }
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: tick) }
            }
        } onGracefulShutdown: {
            notifier.notify("STOPPING=1\nSTATUS=draining: finishing requests and the current write-back")
        }
    }
}
