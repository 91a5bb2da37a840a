import Foundation
import HourLedgerUseCases
import HourLedgerApp
import HourLedgerCore
import AppTestKit
import Hummingbird
import HummingbirdTesting
import Testing

/// Timers, entries and approvals over HTTP, on the in-memory ledger: no socket, no helpdesk.
@Suite struct WorkAPITests {
    let contracts = """
      - { id: acme-2026, name: ACME, entity: 1, quota_hours: 2, starts: 2026-01-01, rounding: { increment_minutes: 15, mode: up } }
    """

    func object(_ buffer: ByteBuffer) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as! [String: Any]
    }

    func json(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    static let laptop = TicketFacts(id: 1, name: "Laptop", entity: 1, groups: [1], category: 1)

    @Test func timersAndEntriesOverHTTPWithTokens() async throws {
        let runtime = try await APIHarness.start(contracts: contracts, tickets: [Self.laptop]).runtime
        let alice = try runtime.ledger.createToken(user: "tech.alice", helpdeskUserID: 7, role: .technician)
        let manager = try runtime.ledger.createToken(user: "boss", helpdeskUserID: 2, role: .manager)
        let app = buildApplication(runtime: runtime)

        try await app.test(.router) { client in
            func post(_ uri: String, _ body: String, token: String? = alice) async throws -> (HTTPResponse.Status, [String: Any]) {
                var headers: HTTPFields = [.contentType: "application/json"]
                if let token { headers[.authorization] = "Bearer \(token)" }
                return try await client.execute(uri: uri, method: .post, headers: headers, body: json(body)) { response in
                    (response.status, try object(response.body))
                }
            }
            // No token, a wrong token.
            #expect(try await post("/api/v1/timers", #"{"ticket":1}"#, token: nil).0 == .unauthorized)
            #expect(try await post("/api/v1/timers", #"{"ticket":1}"#, token: "hl_nope").0 == .unauthorized)
            // Bad input names the field and writes nothing.
            var (status, body) = try await post("/api/v1/timers", #"{"ticket":"one"}"#)
            #expect(status == .badRequest && body["field"] as? String == "ticket")
            (status, body) = try await post("/api/v1/timers", #"{"ticket":999}"#)
            #expect(status == .notFound && body["field"] as? String == "ticket")
            (status, body) = try await post("/api/v1/timers", "{not json")
            #expect(status == .badRequest && body["field"] as? String == "body")
            (status, body) = try await post("/api/v1/timers", #"{"ticket":1,"technician":8}"#)
            #expect(status == .forbidden && body["field"] as? String == "technician")
            (status, body) = try await post("/api/v1/timers", #"{"ticket":1,"pad":""# + String(repeating: "x", count: 70_000) + #""}"#)
            #expect(status == .contentTooLarge)
            #expect(try runtime.ledger.timers(openOnly: false).isEmpty)

            // Start, then a second start: 409 with the running timer.
            (status, body) = try await post("/api/v1/timers", #"{"ticket":1}"#)
            #expect(status == .created && body["status"] as? String == "running" && body["technician"] as? Int == 7)
            let id = try #require(body["id"] as? Int)
            (status, body) = try await post("/api/v1/timers", #"{"ticket":1}"#)
            #expect(status == .conflict)
            #expect((body["timer"] as? [String: Any])?["id"] as? Int == id)
            // Invalid transition, another technician's timer.
            (status, body) = try await post("/api/v1/timers/\(id)/resume", "")
            #expect(status == .conflict && (body["error"] as? String)?.contains("cannot resume a running timer") == true)
            let bob = try runtime.ledger.createToken(user: "tech.bob", helpdeskUserID: 8, role: .technician)
            #expect(try await post("/api/v1/timers/\(id)/stop", "", token: bob).0 == .forbidden)
            (status, body) = try await post("/api/v1/timers/\(id)/stop", #"{"kind":"overtime"}"#)
            #expect(status == .badRequest && body["field"] as? String == "kind")
            (status, body) = try await post("/api/v1/timers/\(id)/stop", #"{"note":"done","kind":"prepaid"}"#)
            #expect(status == .ok)
            let entry = try #require(body["entry"] as? [String: Any])
            #expect(entry["kind"] as? String == "prepaid" && entry["note"] as? String == "done" && entry["contract_id"] as? String == "acme-2026")

            // Manual entries: negative durations refused by field; a manager may log for a technician.
            (status, body) = try await post("/api/v1/entries", #"{"ticket":1,"started_at":"2026-11-20T08:00:00Z","duration_seconds":-5}"#)
            #expect(status == .badRequest && body["field"] as? String == "duration_seconds")
            (status, body) = try await post("/api/v1/entries", #"{"ticket":1,"started_at":"yesterday","duration_seconds":5}"#)
            #expect(status == .badRequest && body["field"] as? String == "started_at")
            (status, body) = try await post("/api/v1/entries",
                                            #"{"ticket":1,"technician":8,"started_at":"2026-11-20T08:00:00Z","duration_seconds":450,"description":"call","billable":true}"#,
                                            token: manager)
            #expect(status == .created && body["billed_seconds"] as? Int == 900 && body["technician"] as? Int == 8)

            try await client.execute(uri: "/api/v1/entries?ticket=1", method: .get, headers: [.authorization: "Bearer \(alice)"]) { response in
                let list = try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as! [[String: Any]]
                #expect(list.count == 2)
            }
            try await client.execute(uri: "/status", method: .get) { response in
                let outbox = try object(response.body)["outbox"] as? [String: Any]
                #expect(outbox?["depth"] as? Int == 2)
            }
            // A revoked token stops working at once.
            #expect(try runtime.ledger.revokeTokens(user: "tech.alice") == 1)
            #expect(try await post("/api/v1/timers", #"{"ticket":1}"#).0 == .unauthorized)
        }
    }
}

@Suite struct ApprovalTests {
    @Test func entriesOnAnApprovalContractCountOnlyOnceApproved() async throws {
        let runtime = try await APIHarness.start(contracts: """
              - { id: acme-2026, name: ACME, entity: 1, quota_hours: 2, starts: 2026-01-01, approval: required }
            """, tickets: [WorkAPITests.laptop]).runtime
        let config = runtime.configuration
        let alice = try runtime.ledger.createToken(user: "tech.alice", helpdeskUserID: 7, role: .technician)
        let boss = try runtime.ledger.createToken(user: "boss", helpdeskUserID: 2, role: .manager)
        let at = Date.utc("2026-11-20 08:00:00")
        let app = buildApplication(runtime: runtime)
        try await app.test(.router) { client in
            func post(_ uri: String, _ body: String, _ token: String) async throws -> (HTTPResponse.Status, [String: Any]) {
                try await client.execute(uri: uri, method: .post, headers: [.authorization: "Bearer \(token)"], body: ByteBuffer(string: body)) {
                    ($0.status, (try? JSONSerialization.jsonObject(with: Data($0.body.readableBytesView)) as? [String: Any]) ?? [:])
                }
            }
            var (status, body) = try await post("/api/v1/entries", #"{"ticket":1,"started_at":"2026-11-20T08:00:00Z","duration_seconds":1800}"#, alice)
            #expect(status == .created && body["approval"] as? String == "pending")
            let first = try #require(body["key"] as? String)
            (_, body) = try await post("/api/v1/entries", #"{"ticket":1,"started_at":"2026-11-20T09:00:00Z","duration_seconds":600}"#, alice)
            let second = try #require(body["key"] as? String)
            #expect(try runtime.ledger.balance(of: config.contracts[0], at: at)?.usedSeconds == 0)
            #expect(try runtime.ledger.outboxStats(now: at).depth == 0)

            #expect(try await post("/api/v1/entries/\(first)/approve", "", alice).0 == .forbidden)
            (status, body) = try await post("/api/v1/entries/\(first)/approve", "", boss)
            #expect(status == .ok && body["approval"] as? String == "approved")
            #expect(try await post("/api/v1/entries/\(first)/approve", "", boss).0 == .conflict)
            (status, body) = try await post("/api/v1/entries/\(second)/reject", "", boss)
            #expect(status == .badRequest && body["field"] as? String == "note")
            #expect(try await post("/api/v1/entries/\(second)/reject", #"{"note":"wrong ticket"}"#, boss).0 == .ok)
            #expect(try runtime.ledger.balance(of: config.contracts[0], at: at)?.usedSeconds == 1800)
            #expect(try runtime.ledger.outboxStats(now: at).depth == 1)
            // The technician fixes the rejected entry: it goes back to pending.
            let resubmitted = try await runtime.ledger.editEntry(key: second, change: EntryChange(note: "moved from ticket 2"), reason: "",
                                                                actor: "tech.alice", actingAs: 7, now: at)
            #expect(resubmitted.approval == .pending)
            #expect(try runtime.ledger.balanceDiscrepancies() == [])
            let trail = try runtime.ledger.auditTrail(ticketID: 1).map { "\($0.actor) \($0.field) \($0.oldValue ?? "-")>\($0.newValue ?? "-") \($0.reason)" }
            #expect(trail == ["boss approval pending>approved ", "boss approval pending>rejected wrong ticket",
                              "tech.alice approval rejected>pending ", "tech.alice note >moved from ticket 2 "])
        }
    }
}

/// The token middleware guards the whole `/api/v1` group: no route of it answers anything but 401 without a valid
/// token, whatever the method, and the manager's routes answer a technician 403. On the in-memory ledger, no socket.
@Suite struct AuthenticationTests {
    @Test func everyAPIRouteRefusesAMissingOrRevokedTokenAndManagerRoutesRefuseATechnician() async throws {
        let h = try await APIHarness.start(contracts: "  - { id: acme, name: ACME, entity: 1, quota_hours: 2, starts: 2026-01-01 }",
                                           tickets: [WorkAPITests.laptop])
        let routes = buildRouter(runtime: h.runtime).routes.filter { $0.path.description.hasPrefix("/api/v1/") }
            .map { (method: $0.method, path: $0.path.description) }
        #expect(routes.count >= 20)
        let technician = try h.ledger.createToken(user: "tech.alice", helpdeskUserID: 7, role: .technician)
        let revoked = try h.ledger.createToken(user: "gone", helpdeskUserID: 9, role: .admin)
        _ = try h.ledger.revokeTokens(user: "gone")
        let managerOnly = ["/api/v1/approvals", "/api/v1/outbox", "/api/v1/outbox/{id}/retry", "/api/v1/outbox/{id}/discard",
                           "/api/v1/entries/{key}/approve", "/api/v1/entries/{key}/reject", "/api/v1/reports/{kind}",
                           "/api/v1/contracts/{id}/invoice-preview"]
        try await h.application().test(.router) { client in
            for route in routes {
                let uri = route.path.replacingOccurrences(of: "{id}", with: "1").replacingOccurrences(of: "{key}", with: "k")
                    .replacingOccurrences(of: "{kind}", with: "tickets")
                for token in [nil, "hl_not-a-token", revoked] {
                    let answer = try await client.call(route.method, uri, token: token)
                    #expect(answer.status == .unauthorized, "\(route.method) \(uri) with \(token ?? "no token")")
                    #expect(answer.object["field"] as? String == "Authorization" && answer.object["error"] is String)
                }
                if managerOnly.contains(route.path) {
                    let answer = try await client.call(route.method, uri, token: technician)
                    #expect(answer.status == .forbidden, "\(route.method) \(uri) as a technician")
                }
            }
        }
        #expect(try h.ledger.counts().entries == 0 && h.ledger.timers(openOnly: false).isEmpty)
    }
}

/// Request bodies are decoded into types: every refusal is 400 in the one error shape, names the field, and writes
/// nothing. On the in-memory ledger, no socket.
@Suite struct BodyRefusalTests {
    @Test(arguments: [
        ("/api/v1/timers", #"{}"#, "ticket", "ticket is required"),
        ("/api/v1/timers", #"{"ticket":null}"#, "ticket", "ticket is required"),
        ("/api/v1/timers", #"{"ticket":1.5}"#, "ticket", "ticket must be an integer"),
        ("/api/v1/timers", #"{"ticket":99999999999999999999}"#, "ticket", "ticket must be an integer"),
        ("/api/v1/timers", #"[1]"#, "body", "the body must be a JSON object"),
        ("/api/v1/timers", "", "body", "the body must be a JSON object"),
        ("/api/v1/entries", #"{"ticket":1,"started_at":"2026-11-20T08:00:00Z","duration_seconds":60,"billable":"yes"}"#, "billable",
         "billable must be true or false"),
        ("/api/v1/entries", #"{"ticket":1,"started_at":"2026-11-20T08:00:00Z"}"#, "duration_seconds", "duration_seconds is required"),
        ("/api/v1/entries", #"{"ticket":1,"started_at":42,"duration_seconds":60}"#, "started_at", "started_at must be a string"),
        ("/api/v1/entries", #"{"ticket":1,"started_at":"2026-11-20T08:00:00Z","duration_seconds":60,"description":"a\u0007b"}"#, "description",
         nil),
        ("/api/v1/entries", #"{"ticket":1,"started_at":"2026-11-20T08:00:00Z","duration_seconds":60,"description":""# + String(repeating: "é", count: 2001) + #""}"#,
         "description", "description is longer than 4000 bytes"),
        ("/api/v1/timers/1/stop", #"{"kind":7}"#, "kind", "kind must be billable, internal or prepaid"),
    ] as [(String, String, String, String?)])
    func aBadBodyIsRefusedNamingTheField(_ uri: String, _ body: String, _ field: String, _ message: String?) async throws {
        let h = try await APIHarness.start(contracts: "  - { id: acme, name: ACME, entity: 1, quota_hours: 2, starts: 2026-01-01 }",
                                           tickets: [WorkAPITests.laptop], clock: WallClock { .utc("2026-11-21 12:00:00") })
        let alice = try h.ledger.createToken(user: "tech.alice", helpdeskUserID: 7, role: .technician)
        try await h.application().test(.router) { client in
            let answer = try await client.call(.post, uri, token: alice, body: body)
            #expect(answer.status == .badRequest, "\(answer.text)")
            #expect(answer.object["field"] as? String == field)
            if let message { #expect(answer.object["error"] as? String == message) }
            #expect(Set(answer.object.keys) == ["error", "field"])
        }
        #expect(try h.ledger.counts().entries == 0 && h.ledger.timers(openOnly: false).isEmpty && h.ledger.auditTrail().isEmpty)
    }
}
