import Foundation
import HourLedgerPostgres
#if canImport(Glibc)
import Glibc
#endif

/// A real PostgreSQL server (Debian's postgresql-15) of the tests' own: a new cluster in a temporary directory,
/// listening on a free loopback port, with a password (SCRAM) as production has. It is started once per test process;
/// a watchdog shell stops it and removes its directory as soon as the test process is gone, however it ends.
/// Each test gets a schema of its own, so tests run side by side on one server.
public final class PostgresTestServer: Sendable {
    public let port: Int
    public let password = "hourledger-test-password"
    public let directory: String
    /// The CA that signed the server's TLS certificate (for 127.0.0.1); nil when openssl could not make one.
    public let caFile: String?
    private let schemas = SchemaCounter()

    /// The server, started at first use; the error says what is missing when it cannot start.
    public static let shared: Result<PostgresTestServer, PostgresTestServerError> = Result { try PostgresTestServer() }
        .mapError { $0 as? PostgresTestServerError ?? PostgresTestServerError(description: "\($0)") }

    public static func start() throws -> PostgresTestServer { try shared.get() }

    /// A location no other test uses: a new schema in the server's database.
    public func freshLocation() -> PostgresLocation {
        PostgresLocation(host: "127.0.0.1", port: port, user: "postgres", password: password, database: "postgres",
                         schema: "t\(getpid())_\(schemas.next())", tls: .disable)
    }

    private init() throws {
        guard let bin = Self.binDirectory() else {
            throw PostgresTestServerError(description: "PostgreSQL's server is not installed: apt-get install -y postgresql-15 (the README's test command does)")
        }
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("hourledger-pg-\(getpid())-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        directory = base
        let data = base + "/data", passwordFile = base + "/password"
        try password.write(toFile: passwordFile, atomically: true, encoding: .utf8)
        // PostgreSQL refuses to run as root: as root, the cluster belongs to the postgres user Debian's package made.
        let asRoot = getuid() == 0
        if asRoot { try Self.shell("chown -R postgres:postgres '\(base)' && chmod 700 '\(base)'") }
        let prefix = asRoot ? "runuser -u postgres -- " : ""
        try Self.shell("\(prefix)'\(bin)/initdb' -D '\(data)' -U postgres --pwfile='\(passwordFile)' --auth-local=trust --auth-host=scram-sha-256 "
                       + "-E UTF8 --locale=C.UTF-8 >'\(base)/initdb.log' 2>&1")
        port = try Self.freePort()
        // TLS with a certificate of a CA of the tests' own, for 127.0.0.1: what a server with a private CA looks like.
        // The server takes plain connections too, as most do.
        caFile = try? Self.makeCertificates(in: base, owner: asRoot ? "postgres" : nil)
        let tls = caFile == nil ? "" : " -c ssl=on -c ssl_cert_file='\(base)/server.crt' -c ssl_key_file='\(base)/server.key'"
        let options = "-c listen_addresses=127.0.0.1 -p \(port) -k '\(base)' -c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            + "-c max_connections=200 -c shared_buffers=64MB" + tls
        // The watchdog: the server runs while this process does, then stops and its directory goes.
        let script = base + "/watchdog.sh"
        try """
            '\(bin)/postgres' -D '\(data)' \(options) >'\(base)/server.log' 2>&1 &
            pg=$!
            while [ -d /proc/\(getpid()) ] && kill -0 $pg 2>/dev/null; do sleep 0.5; done
            kill -INT $pg 2>/dev/null
            wait $pg
            rm -rf '\(base)'
            """.write(toFile: script, atomically: true, encoding: .utf8)
        if asRoot { try Self.shell("chown postgres '\(script)'") }
        // Started and left running (not waited for): it ends on its own when this process is gone.
        let watchdog = Process()
        watchdog.executableURL = URL(fileURLWithPath: asRoot ? "/usr/sbin/runuser" : "/bin/sh")
        watchdog.arguments = asRoot ? ["-u", "postgres", "--", "sh", script] : [script]
        watchdog.standardInput = FileHandle.nullDevice
        watchdog.standardOutput = FileHandle.nullDevice
        watchdog.standardError = FileHandle.nullDevice
        try watchdog.run()
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if let pid = try? String(contentsOfFile: data + "/postmaster.pid", encoding: .utf8), pid.contains("ready") { return }
            usleep(100_000)
        }
        let log = (try? String(contentsOfFile: base + "/server.log", encoding: .utf8)) ?? ""
        throw PostgresTestServerError(description: "PostgreSQL did not start within 60 s: \(log.suffix(2000))")
    }

    /// A CA, and a server certificate it signed for 127.0.0.1; returns the CA's file.
    static func makeCertificates(in base: String, owner: String?) throws -> String {
        try "subjectAltName=IP:127.0.0.1\n".write(toFile: base + "/san.ext", atomically: true, encoding: .utf8)
        let key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
        try shell("cd '\(base)' && openssl req -x509 \(key) -days 3 -subj '/CN=HourLedger test CA' -keyout ca.key -out ca.crt >tls.log 2>&1 "
                  + "&& openssl req \(key) -subj '/CN=127.0.0.1' -keyout server.key -out server.csr >>tls.log 2>&1 "
                  + "&& openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3 -extfile san.ext -out server.crt >>tls.log 2>&1 "
                  + "&& chmod 600 server.key" + (owner.map { " && chown \($0) server.key server.crt ca.crt" } ?? ""))
        return base + "/ca.crt"
    }

    static func binDirectory() -> String? {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).compactMap(Int.init).sorted(by: >)
        return versions.map { "\(root)/\($0)/bin" }.first { FileManager.default.isExecutableFile(atPath: $0 + "/postgres") }
    }

    private static func shell(_ command: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw PostgresTestServerError(description: "`\(command)` exited with \(process.terminationStatus)")
        }
    }

    /// A port the kernel just handed out and took back.
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw PostgresTestServerError(description: "no free loopback port: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

public struct PostgresTestServerError: Error, CustomStringConvertible {
    public let description: String
}

private final class SchemaCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func next() -> Int { lock.lock(); defer { lock.unlock() }; value += 1; return value }
}
