import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A child process started with `posix_spawn`, for tests that run the real daemon or CLI.
///
/// Not Foundation's `Process`: on Linux its `run()` reads past a `dirent` while listing /proc/self/fd and crashes
/// the test process now and then (swift-corelibs-foundation#5472, still in Swift 6.3.1), the more often the more
/// descriptors are open, as in a test suite full of servers.
public final class ChildProcess: Sendable {
    public enum Output: Sendable {
        /// Discarded.
        case null
        /// Appended to a file (created if missing).
        case file(String)
        /// Captured: read it with `readAll()`.
        case pipe
    }

    public struct Spawn: Error, CustomStringConvertible {
        public let description: String
    }

    public let pid: pid_t
    private let outputFD: Int32?
    /// The wait status once the child has been reaped.
    private let reaped = Mutex<Int32?>(nil)

    public init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil, output: Output = .null) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var pipeEnds: [Int32] = [-1, -1]
        switch output {
        case .null:
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        case .file(let path):
            posix_spawn_file_actions_addopen(&actions, 1, path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        case .pipe:
            guard pipe(&pipeEnds) == 0 else { throw Spawn(description: "pipe: \(String(cString: strerror(errno)))") }
            posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], 1)
            posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], 2)
            posix_spawn_file_actions_addclose(&actions, pipeEnds[0])
            posix_spawn_file_actions_addclose(&actions, pipeEnds[1])
        }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let env = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        defer { env?.forEach { free($0) } }
        var child: pid_t = 0
        let status = env.map { env in posix_spawn(&child, executable, &actions, nil, argv, env) }
            ?? posix_spawn(&child, executable, &actions, nil, argv, environ)
        if case .pipe = output { close(pipeEnds[1]) }
        guard status == 0 else {
            if case .pipe = output { close(pipeEnds[0]) }
            throw Spawn(description: "posix_spawn \(executable): \(String(cString: strerror(status)))")
        }
        pid = child
        if case .pipe = output { outputFD = pipeEnds[0] } else { outputFD = nil }
    }

    deinit {
        if let outputFD { close(outputFD) }
    }

    /// Everything the child wrote, until it closed its output (usually: exited).
    public func readAll() -> String {
        guard let outputFD else { return "" }
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = read(outputFD, &buffer, buffer.count)
            if count > 0 { data += buffer[0..<count] } else if count < 0, errno == EINTR { continue } else { break }
        }
        return String(decoding: data, as: UTF8.self)
    }

    public var isRunning: Bool {
        reaped.withLock { reaped in
            guard reaped == nil else { return false }
            var status: Int32 = 0
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid { reaped = status }
            return result == 0
        }
    }

    public func signal(_ number: Int32) { if isRunning { kill(pid, number) } }
    public func terminate() { signal(SIGTERM) }

    /// Blocks until the child exits; returns its wait status (see `exitCode`, `exitedNormally`).
    @discardableResult
    public func waitUntilExit() -> Int32 {
        while true {
            if let status = reaped.withLock({ $0 }) { return status }
            var status: Int32 = 0
            let result = waitpid(pid, &status, 0)
            if result == pid {
                reaped.withLock { $0 = $0 ?? status }
            } else if errno != EINTR {
                // Reaped meanwhile by `isRunning` on another thread: its status is stored.
                return reaped.withLock { $0 } ?? status
            }
        }
    }

    /// The exit code of a child that exited, or 128 + the signal that ended it (as a shell reports it).
    public var exitCode: Int32 {
        let status = waitUntilExit()
        return status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    public var exitedNormally: Bool { waitUntilExit() & 0x7f == 0 }
}
