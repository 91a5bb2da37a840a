import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One process owns a ledger at a time: the daemon (`serve`) and a one-off sync each hold an exclusive lock on a file
/// beside the ledger for as long as they run. Two pollers and two outboxes on one ledger would write every task twice.
///
/// The lock is `flock(2)`, so the kernel releases it when the holder exits, however it exits (kill -9 included); the
/// file names the holder, so a refused start can say who has it. Commands that only read, or that write one entry
/// (`entry add`, `token create`), do not take it: SQLite serialises their transactions with the daemon's.
public final class LedgerLock: Sendable {
    public let path: String
    private let descriptor: Int32

    public struct Busy: Error, CustomStringConvertible {
        public let ledger: String
        public let holder: String
        public var description: String {
            "the ledger \(ledger) is in use by \(holder.isEmpty ? "another process" : holder); one process may own a ledger at a time: "
                + "stop it first (systemctl stop hourledger), or give this one its own database.path"
        }
    }

    /// Takes the lock of the ledger at `databasePath`, or throws `Busy` naming the process that holds it.
    public init(databasePath: String, command: String) throws {
        path = databasePath + ".lock"
        let directory = URL(fileURLWithPath: databasePath).deletingLastPathComponent().path
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else {
            throw StoreError(description: "cannot open the ledger lock \(path): \(String(cString: strerror(errno)))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            var buffer = [UInt8](repeating: 0, count: 512)
            let count = pread(fd, &buffer, buffer.count, 0)
            close(fd)
            guard code == EWOULDBLOCK else {
                throw StoreError(description: "cannot lock the ledger \(databasePath): \(String(cString: strerror(code)))")
            }
            let holder = String(decoding: buffer[0..<max(0, count)], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw Busy(ledger: databasePath, holder: holder)
        }
        descriptor = fd
        let host = ProcessInfo.processInfo.hostName
        let since = ISO8601DateFormatter().string(from: Date())
        let text = "hourledger \(command) (pid \(getpid()) on \(host), since \(since))\n"
        ftruncate(fd, 0)
        _ = text.withCString { pwrite(fd, $0, strlen($0), 0) }
    }

    deinit {
        ftruncate(descriptor, 0)
        close(descriptor)
    }
}
