import Foundation
import GRDB
import HourLedgerApp
import HourLedgerGLPI
import HourLedgerServer
import HourLedgerCore
import HourLedgerPostgres
import HourLedgerStore
import ServiceLifecycle

/// Signed GLPI 11 webhooks against the real HTTP stack and a real ledger file, driven by wrk on loopback.
///
///   hourledger-bench webhooks [--duration 10] [--connections 64] [--threads 2] [--postgres postgres://USER@HOST:PORT/DB]
///
/// With `--postgres` the signed run is repeated on a PostgreSQL ledger (a new schema; the password from
/// HOURLEDGER_DATABASE_PASSWORD), the same HTTP stack in front.
///
/// Each delivery is distinct (its own task id and signature), about 3 KB like GLPI's TicketTask payloads, and spread
/// over 5,000 tickets. In the same run wrk sends the same bodies unsigned, which the endpoint refuses before any
/// HMAC or disk work: that is the baseline of the HTTP stack alone on this machine.
enum WebhookBench {
    static let secret = "0123456789abcdefghijABCDEFGHIJ0123456789"

    static func run(duration: Int, connections: Int, threads: Int, postgres: String? = nil) async throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/wrk") else {
            print("wrk is not installed: apt-get install -y wrk")
            return
        }
        let directory = NSTemporaryDirectory() + "hourledger-webhook-bench-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let secretFile = directory + "/secret"
        try secret.write(toFile: secretFile, atomically: true, encoding: .utf8)
        let config = try ServedApp.configuration(
            directory: directory, helpdesk: "  webhook_secret_file: \(secretFile)", logLevel: "error",
            contracts: "  - {id: alpha, name: Alpha, entity: 1, quota_hours: 40, period: monthly, starts: 2026-01-01, timezone: UTC}")
        let runtime = try Runtime(configuration: config)
        let synchronous = try await (runtime.repository as! SQLiteLedger).writer.writeWithoutTransaction {
            // The writing connection's: a reader's own setting says nothing of how commits are synced.
            try String.fetchOne($0, sql: "PRAGMA synchronous") ?? "?"
        }
        let served = try await ServedApp(runtime)
        let port = served.port
        let url = "http://127.0.0.1:\(port)/webhooks/glpi"

        // Enough distinct deliveries for 40k/s over the whole run; wrk thread i reads file i.
        let perThread = 40_000 * duration / threads + 1000
        print("generating \(perThread * threads) signed deliveries ...")
        for thread in 0..<threads {
            try writeRequests(to: directory + "/requests-\(thread).txt", count: perThread, offset: thread * perThread)
        }
        try await breakdown(runtime: runtime)
        let script = directory + "/webhooks.lua"
        try luaScript(directory: directory).write(toFile: script, atomically: true, encoding: .utf8)

        print("baseline: the same bodies unsigned (refused before HMAC and disk) ...")
        let baseline = try wrk(url: url, script: script, signed: false, duration: duration, connections: connections, threads: threads)
        print("signed: verified, fresh, not replayed, hint committed before the 200 ...")
        let signed = try wrk(url: url, script: script, signed: true, duration: duration, connections: connections, threads: threads)

        let stored = try await (runtime.repository as! SQLiteLedger).writer.read { db in
            (try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM webhook_delivery") ?? 0,
             try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM ticket_hint") ?? 0,
             try Int.fetchOne(db, sql: "SELECT SUM(count) FROM ticket_hint") ?? 0)
        }
        try await served.stop(runtime)

        var onPostgres: (result: Wrk.Result, stored: Int)?
        if let postgres {
            let database = "{ kind: postgres, url: \"\(postgres)?schema=webhooks_\(getpid())&sslmode=disable\" }"
            let pgConfig = try ServedApp.configuration(
                directory: directory, helpdesk: "  webhook_secret_file: \(secretFile)", logLevel: "error",
                contracts: "  - {id: alpha, name: Alpha, entity: 1, quota_hours: 40, period: monthly, starts: 2026-01-01, timezone: UTC}",
                database: database)
            let pgRuntime = try Runtime(configuration: pgConfig)
            let pgServed = try await ServedApp(pgRuntime)
            print("signed, PostgreSQL ledger: the same, each hint committed in PostgreSQL before the 200 ...")
            let result = try wrk(url: "http://127.0.0.1:\(pgServed.port)/webhooks/glpi", script: script, signed: true, duration: duration,
                                 connections: connections, threads: threads)
            let count = try (pgRuntime.repository as! PostgresLedger).withWritingSession { session in
                try session.rows("SELECT COUNT(*)::bigint AS n FROM webhook_delivery").first.map { try $0["n"] as Int64 } ?? 0
            }
            try await pgServed.stop(pgRuntime)
            onPostgres = (result, Int(count))
        }

        print("""

            webhook benchmark: \(duration) s per run, wrk -t\(threads) -c\(connections), loopback, \(ProcessInfo.processInfo.activeProcessorCount) cores shared by wrk and the server
            SQLite: WAL, synchronous=\(synchronous) (\(synchronous == "2" ? "FULL: each commit is fsynced" : "see SQLite docs"))

            | run | requests/s | p50 | p99 | non-2xx |
            |---|---|---|---|---|
            | baseline (unsigned, refused) | \(baseline.rate) | \(baseline.p50) | \(baseline.p99) | \(baseline.non2xx) of \(baseline.requests) |
            | signed deliveries | \(signed.rate) | \(signed.p50) | \(signed.p99) | \(signed.non2xx) of \(signed.requests) |
            \(onPostgres.map { "| signed, PostgreSQL ledger | \($0.result.rate) | \($0.result.p50) | \($0.result.p99) | \($0.result.non2xx) of \($0.result.requests) |" } ?? "")

            ledger after the signed run: \(stored.0) delivery signatures, \(stored.1) tickets hinted, \(stored.2) hints folded in
            every 2xx is a committed signature: \(stored.0 >= signed.requests - signed.non2xx ? "yes" : "NO") (\(signed.requests - signed.non2xx) 2xx counted by wrk; up to \(connections) more were answered as wrk stopped)
            """)
        if let onPostgres {
            let answered = onPostgres.result.requests - onPostgres.result.non2xx
            print("PostgreSQL: \(onPostgres.stored) delivery signatures stored; every 2xx committed: \(onPostgres.stored >= answered ? "yes" : "NO") (\(answered) 2xx)")
        }
    }

    /// CPU per delivery of each step the endpoint takes, measured alone, to say what limits the rate.
    static func breakdown(runtime: Runtime) async throws {
        let count = 20_000
        let timestamp = String(Int(Date().timeIntervalSince1970))
        let bodies = (0..<count).map { Array(GLPITaskPayload.body(taskID: 10_000_000 + $0, ticketID: $0 % 5000 + 1).utf8) }
        let signatures = bodies.map { GLPISignature.sign(body: $0, timestamp: timestamp, secret: secret) }
        func perDelivery(_ start: ContinuousClock.Instant) -> String {
            let elapsed = ContinuousClock.now - start
            let micros = (Double(elapsed.components.seconds) * 1e6 + Double(elapsed.components.attoseconds) / 1e12) / Double(count)
            return String(format: "%.1f µs", micros)
        }
        var start = ContinuousClock.now
        var matched = 0
        for (body, signature) in zip(bodies, signatures) {
            matched += GLPISignature.matchingSecret(body: body, timestamp: timestamp, signature: signature, secrets: [secret]) ?? 0
        }
        let verify = perDelivery(start)
        start = .now
        var parsed = 0
        for body in bodies { if case .success = GLPIWebhookPayload.parse(body) { parsed += 1 } }
        let parse = perDelivery(start)
        start = .now
        for batch in stride(from: 0, to: count, by: 64) {
            _ = try await runtime.ledger.recordDeliveries(
                (batch..<min(batch + 64, count)).map { WebhookDelivery(ticketID: $0 % 5000 + 1, signature: signatures[$0]) },
                now: Date(), forgetBefore: Date().addingTimeInterval(-3600))
        }
        let commit = perDelivery(start)
        print("per delivery, alone: verify HMAC \(verify), parse JSON \(parse), store in commits of 64 \(commit) (\(matched + parsed - count) checks)")
    }

    /// Three lines per delivery: signature, timestamp, body with newlines written as `\n`.
    static func writeRequests(to path: String, count: Int, offset: Int) throws {
        FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        let timestamp = String(Int(Date().timeIntervalSince1970) + 60)
        var chunk = ""
        for index in 0..<count {
            let taskID = offset + index + 1
            let body = GLPITaskPayload.body(taskID: taskID, ticketID: taskID % 5000 + 1)
            chunk += GLPISignature.sign(body: Array(body.utf8), timestamp: timestamp, secret: secret) + "\n" + timestamp + "\n"
                + body.replacingOccurrences(of: "\n", with: "\\n") + "\n"
            if index % 2000 == 1999 {
                handle.write(Data(chunk.utf8))
                chunk = ""
            }
        }
        handle.write(Data(chunk.utf8))
    }

    static func luaScript(directory: String) -> String {
        """
        local counter = 0
        local threads = {}
        function setup(thread)
          thread:set("id", counter)
          counter = counter + 1
        end
        function init(args)
          signed = args[1] == "signed"
          file = io.open("\(directory)/requests-" .. id .. ".txt", "r")
        end
        function request()
          local signature = file:read("*l")
          local timestamp = file:read("*l")
          local body = file:read("*l")
          if body == nil then
            file:seek("set", 0)
            signature = file:read("*l"); timestamp = file:read("*l"); body = file:read("*l")
          end
          body = body:gsub("\\\\n", "\\n")
          if signed then
            return wrk.format("POST", nil, { ["X-GLPI-signature"] = signature, ["X-GLPI-timestamp"] = timestamp }, body)
          end
          return wrk.format("POST", nil, {}, body)
        end
        """
    }

    static func wrk(url: String, script: String, signed: Bool, duration: Int, connections: Int, threads: Int) throws -> Wrk.Result {
        try Wrk.run(["-t\(threads)", "-c\(connections)", "-d\(duration)s", "-s", script, url, "--", signed ? "signed" : "unsigned"])
    }
}

/// A TicketTask `update` delivery shaped like GLPI 11's default payload (4-space pretty JSON, about 3 KB).
enum GLPITaskPayload {
    static func body(taskID: Int, ticketID: Int) -> String {
        let ticket = """
                "id": \(ticketID),
                "name": "Laptop does not boot \\u2013 black screen",
                "content": "<p>Since this morning my laptop (LT-0042) stays on a black screen right after the logo.<\\/p>",
                "is_deleted": false,
                "urgency": 3,
                "impact": 3,
                "priority": 3,
                "actiontime": 5400,
                "date_creation": "2026-11-23T08:47:12+00:00",
                "date_mod": "2026-11-23T10:15:03+00:00",
                "date": "2026-11-23T08:47:12+00:00",
                "type": 1,
                "external_id": null,
                "status": {
                    "id": 2,
                    "name": "Processing (assigned)"
                },
                "category": {
                    "id": 1,
                    "name": "Hardware support"
                },
                "location": null,
                "request_type": {
                    "id": 1,
                    "name": "Helpdesk"
                },
                "entity": {
                    "id": 1,
                    "name": "Customer A",
                    "completename": "Root entity > Customer A"
                },
                "team": []
        """
        return """
            {
                "item": {
                    "id": \(taskID),
                    "uuid": "0b6f3c52-8d1e-4a7f-9b24-\(String(format: "%012d", taskID))",
                    "content": "<p>Replaced the failed SSD (Samsung 980 \\u2013 512 GB) and reinstalled the OS; boot OK.<\\/p>",
                    "is_private": false,
                    "date": "2026-11-23T10:15:03+00:00",
                    "date_creation": "2026-11-23T10:15:03+00:00",
                    "date_mod": "2026-11-23T10:31:27+00:00",
                    "duration": 7200,
                    "planned_begin": null,
                    "planned_end": null,
                    "state": 2,
                    "timeline_position": 1,
                    "tickets_id": \(ticketID),
                    "source_item_id": 0,
                    "source_of_item_id": 0,
                    "user": {
                        "id": 7,
                        "name": "tech.alice"
                    },
                    "user_editor": null,
                    "category": {
                        "id": 1,
                        "name": "Contract hours"
                    }
                },
                "event": "update",
                "parent_item": {
            \(ticket)
                }
            }
            """
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
