import FakeGLPI
import Foundation
import HourLedgerUseCases
import HourLedgerApp
import HourLedgerCore
import HourLedgerServer
import HourLedgerStore
import Hummingbird
import HummingbirdTesting
import Testing

/// Invoice previews and reports over HTTP, from time synced from the fake GLPI: one contract of each billing mode.
@Suite struct BillingAPITests {
    let contracts = """
      - { id: acme, name: ACME block, customer: "ACME Corp, Paris", entity: 1, quota_hours: 10, starts: 2026-01-01, timezone: Europe/Paris, billing: block,
          overage_rate: 12000, block_fee: 90000, rates: { by_technician: { 8: 15000 } },
          carry_over: { max_hours: 4, expires_after_periods: 1 }, alerts: { thresholds: [80, 100] } }
      - { id: beta, name: Beta PAYG, entity: 2, starts: 2026-01-01, billing: payg, rate: 9000, invoice_lines: ticket }
      - { id: gamma, name: Gamma unlimited, entity: 3, starts: 2026-01-01, billing: unlimited }
    """

    func object(_ buffer: ByteBuffer) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as! [String: Any]
    }

    /// A manager sells ACME five more hours in November, when it is an hour into overage: the top-up covers that hour,
    /// the balance and alerts count it, and the invoice shows the purchase as its own line, at the overage rate when it
    /// has no price. Technicians cannot add one; bad input is named.
    @Test func aTopUpBoughtOverTheAPICoversTheOverageAndIsInvoicedAsAPurchase() async throws {
        let directory = TemporaryDirectory()
        let glpi = try await FakeGLPIServer(state: makeFixtureState())
        defer { Task { await glpi.stop() } }
        let state = glpi.state
        state.addTicket(1, name: "Mail server", entity: 1, category: 1, groups: [1])
        state.addTask(ticket: 1, seconds: 2 * 3600, technician: 7, date: "2026-10-05 09:00:00")
        let november = state.addTask(ticket: 1, seconds: 10 * 3600, technician: 7, date: "2026-11-03 09:00:00")
        let overage = state.addTask(ticket: 1, seconds: 5 * 3600, technician: 7, date: "2026-11-20 09:00:00")
        let config = try ConfigLoader.parse(configYAML(url: glpi.url, database: directory.path + "/l.sqlite", contracts: contracts))
        let now = Date.utc("2026-11-21 12:00:00")
        let runtime = try Runtime(configuration: config, clock: WallClock { now })
        try await runtime.engine.syncOnce(now: now)
        let manager = try runtime.ledger.createToken(user: "boss", helpdeskUserID: 2, role: .manager)
        let technician = try runtime.ledger.createToken(user: "alice", helpdeskUserID: 7, role: .technician)
        let app = buildApplication(runtime: runtime)

        try await app.test(.router) { client in
            func call(_ method: HTTPRequest.Method, _ uri: String, token: String? = nil, body: String? = nil) async throws -> (HTTPResponse.Status, String) {
                var headers: HTTPFields = [.authorization: "Bearer \(token ?? manager)"]
                if body != nil { headers[.contentType] = "application/json" }
                return try await client.execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) {
                    ($0.status, String(buffer: $0.body))
                }
            }
            // 14 h available (10 h quota, 4 h carried from October), 15 h used: one hour over, and both alerts fired.
            var balance = try object(ByteBuffer(string: try await call(.get, "/api/v1/contracts/acme").1))["balance"] as! [String: Any]
            #expect((balance["overage_seconds"] as? Int, balance["remaining_seconds"] as? Int) == (3600, -3600))
            #expect(try runtime.ledger.alerts(contractID: "acme").map(\.threshold).sorted() == [80, 100])

            #expect(try await call(.post, "/api/v1/contracts/acme/top-ups", token: technician, body: #"{"hours": 5, "note": "PO 4711"}"#).0 == .forbidden)
            for (body, field) in [(#"{"hours": "5:7", "note": "PO"}"#, "hours"), (#"{"note": "PO"}"#, "hours"),
                                  (#"{"hours": 5, "seconds": 18000, "note": "PO"}"#, "hours"), (#"{"hours": 5}"#, "note"),
                                  (#"{"hours": 5, "note": "PO", "expires": "2026-11-31"}"#, "expires"),
                                  (#"{"hours": 5, "note": "PO", "expires": "2026-11-20"}"#, "expires")] {
                let (status, text) = try await call(.post, "/api/v1/contracts/acme/top-ups", body: body)
                #expect(status == .badRequest && text.contains("\"field\" : \"\(field)\""), "\(body): \(text)")
            }
            #expect(try await call(.post, "/api/v1/contracts/beta/top-ups", body: #"{"hours": 5, "note": "PO"}"#).0 == .badRequest)  // payg
            #expect(try await call(.post, "/api/v1/contracts/nope/top-ups", body: #"{"hours": 5, "note": "PO"}"#).0 == .notFound)

            var (status, text) = try await call(.post, "/api/v1/contracts/acme/top-ups", body: #"{"hours": 5, "note": "PO 4711", "expires": "2027-03-31"}"#)
            #expect(status == .created)
            let added = try object(ByteBuffer(string: text))
            #expect((added["seconds"] as? Int, added["note"] as? String, added["expires"] as? String, added["added_by"] as? String)
                    == (18000, "PO 4711", "2027-03-31", "boss"))
            let id = added["id"] as! Int

            // 19 h available now, 15 h used: 4 h left, no overage; 78.9 % is below the 80 % already fired this period.
            balance = try object(ByteBuffer(string: try await call(.get, "/api/v1/contracts/acme").1))["balance"] as! [String: Any]
            #expect((balance["top_up_seconds"] as? Int, balance["available_seconds"] as? Int, balance["overage_seconds"] as? Int,
                     balance["remaining_seconds"] as? Int, balance["percent_used"] as? Double) == (18000, 68400, 0, 14400, 78.95))

            (status, text) = try await call(.get, "/api/v1/invoices/accounting?period=2026-11&contract=acme&format=csv")
            #expect(text == """
                customer,contract_id,contract_name,period,description,quantity_hours,unit_price,amount,currency,entry_refs
                "ACME Corp, Paris",acme,ACME block,2026-11-01,"Block of 14:00 h and 5:00 h purchased, 15:00 h used",15.0000,,900.00,EUR,glpi_task:\(november) glpi_task:\(overage)
                "ACME Corp, Paris",acme,ACME block,2026-11-01,"Purchased hours: 5:00 h, top-up #\(id) (PO 4711)",5.0000,120.00,600.00,EUR,top-up-\(id)

                """)
            (status, text) = try await call(.get, "/api/v1/reports/blocks?from=2026-11-01&to=2026-12-01&timezone=Europe/Paris&contract=acme&format=csv")
            #expect(text.contains("\nacme,ACME block,block,2026-11-01,36000,14400,54000,0,0,14400,0,false,18000\n"), "\(text)")

            // Voided: the hour of overage is back, the line stays on record with who voided it and why.
            #expect(try await call(.post, "/api/v1/top-ups/\(id)/void", body: #"{}"#).0 == .badRequest)
            (status, text) = try await call(.post, "/api/v1/top-ups/\(id)/void", body: #"{"reason": "the PO was cancelled"}"#)
            #expect(status == .ok && text.contains("\"void_reason\" : \"the PO was cancelled\""))
            #expect(try await call(.post, "/api/v1/top-ups/\(id)/void", body: #"{"reason": "again"}"#).0 == .conflict)
            balance = try object(ByteBuffer(string: try await call(.get, "/api/v1/contracts/acme").1))["balance"] as! [String: Any]
            #expect((balance["top_up_seconds"] as? Int, balance["overage_seconds"] as? Int) == (0, 3600))
            (status, text) = try await call(.get, "/api/v1/contracts/acme/top-ups")
            let listed = try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [[String: Any]]
            #expect(listed.map { "\($0["id"]!) \($0["voided_by"]!)" } == ["\(id) boss"])
            #expect(try await call(.get, "/api/v1/contracts/acme/top-ups", token: technician).0 == .forbidden)
        }
    }

    /// Where the hours go: per ticket type (GLPI's incident or request) and per category, from the type and the
    /// category's name that the ticket search returns (the name HTML-encoded, as GLPI stores it), in JSON, CSV and
    /// table; a ticket whose type changes in GLPI moves at the next poll.
    @Test func reportsByTicketTypeAndCategoryAreExactToTheSecond() async throws {
        let directory = TemporaryDirectory()
        let glpi = try await FakeGLPIServer(state: makeFixtureState())
        defer { Task { await glpi.stop() } }
        let state = glpi.state
        state.addCategory(3, name: "Network & <VPN>")
        state.addTicket(1, name: "Mail server", entity: 1, category: 1, groups: [1], type: 1)
        state.addTicket(2, name: "New laptop", entity: 1, category: 3, groups: [1], type: 2)
        state.addTicket(3, name: "VPN access", entity: 1, category: 3, groups: [1], type: 2)
        state.addTicket(4, name: "Printer", entity: 2, category: 1, groups: [1], type: 2)
        state.addTask(ticket: 1, seconds: 7200, technician: 7, date: "2026-11-03 09:00:00")
        state.addTask(ticket: 2, seconds: 5400, technician: 7, date: "2026-11-04 09:00:00")
        state.addTask(ticket: 3, seconds: 2700, technician: 8, date: "2026-11-05 09:00:00")
        state.addTask(ticket: 4, seconds: 1200, technician: 7, date: "2026-11-06 09:00:00")
        let config = try ConfigLoader.parse(configYAML(url: glpi.url, database: directory.path + "/l.sqlite", contracts: contracts))
        let now = Date.utc("2026-11-21 12:00:00")
        let runtime = try Runtime(configuration: config, clock: WallClock { now })
        try await runtime.engine.syncOnce(now: now)
        _ = try await runtime.ledger.addEntry(NewEntry(ticketID: 1, technician: 7, startedAt: .utc("2026-11-04 10:00:00"), rawSeconds: 1800,
                                                       kind: .internal, note: "handover", createdBy: "alice"), now: now)
        let manager = try runtime.ledger.createToken(user: "boss", helpdeskUserID: 2, role: .manager)
        let app = buildApplication(runtime: runtime)
        let range = "from=2026-11-01&to=2026-12-01&timezone=Europe/Paris"

        try await app.test(.router) { client in
            func get(_ uri: String) async throws -> String {
                try await client.execute(uri: uri, method: .get, headers: [.authorization: "Bearer \(manager)"]) { response in
                    #expect(response.status == .ok, "\(uri)")
                    return String(buffer: response.body)
                }
            }
            #expect(try await get("/api/v1/reports/types?\(range)&format=csv") == """
                contract_id,type,ticket_count,billable_seconds,prepaid_seconds,internal_seconds,total_seconds,entry_count
                acme,Incident,1,7200,0,1800,9000,2
                acme,Request,2,8100,0,0,8100,2
                beta,Request,1,1200,0,0,1200,1

                """)
            #expect(try await get("/api/v1/reports/categories?\(range)&contract=acme&format=csv") == """
                contract_id,category,ticket_count,billable_seconds,prepaid_seconds,internal_seconds,total_seconds,entry_count
                acme,Hardware support,1,7200,0,1800,9000,2
                acme,Network & <VPN>,2,8100,0,0,8100,2

                """)
            let rows = try JSONSerialization.jsonObject(with: Data(try await get("/api/v1/reports/types?\(range)&contract=beta").utf8)) as! [[String: Any]]
            #expect(rows.count == 1 && rows[0]["group"] as? String == "Request" && rows[0]["ticket_count"] as? Int == 1)
            #expect((rows.first?["time"] as? [String: Any])?["billable_seconds"] as? Int == 1200)
            let tickets = try await get("/api/v1/reports/tickets?\(range)&contract=acme&format=csv")
            #expect(tickets.hasPrefix("ticket_id,name,contract_id,billable_seconds,prepaid_seconds,internal_seconds,total_seconds,entry_count,"
                                      + "first_worked_at,last_worked_at,type,category\n"), "\(tickets)")
            #expect(tickets.contains("\n2,New laptop,acme,5400,0,0,5400,1,2026-11-04T09:00:00Z,2026-11-04T09:00:00Z,Request,Network & <VPN>\n"), "\(tickets)")

            // The VPN ticket was an incident after all: GLPI bumps its date_mod, and the next poll moves its time.
            state.advance(seconds: 60)
            state.updateTicket(3) { $0.type = 1 }
            try await runtime.engine.syncOnce(now: now)
            #expect(try await get("/api/v1/reports/types?\(range)&contract=acme&format=csv").hasSuffix("""
                acme,Incident,2,9900,0,1800,11700,3
                acme,Request,1,5400,0,0,5400,1

                """))
        }
        let table = try Report.render(.categories, ledger: runtime.ledger, range: ReportRange(from: .utc("2026-10-31 23:00:00"), to: .utc("2026-11-30 23:00:00")),
                                      timeZone: TimeZone(identifier: "Europe/Paris")!, contractID: nil, format: "table")
        let lines = table.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ") }
        #expect(lines.first == "CONTRACT CATEGORY TICKETS BILLABLE PREPAID INTERNAL TOTAL BILLABLE %", "\(table)")
        #expect(lines.contains("acme Network & <VPN> 2 2:15:00 0:00:00 0:00:00 2:15:00 100.0%"), "\(table)")
        #expect(lines.contains("beta Hardware support 1 0:20:00 0:00:00 0:00:00 0:20:00 100.0%"), "\(table)")
    }

    /// `hourledger topup` from the shell on the daemon's ledger file: added, listed, voided with its reason; bad hours,
    /// a pay-as-you-go contract and an unknown top-up are refused with a message and change nothing.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: CrashSafetyTests.binary)))
    func theTopUpCommandAddsListsAndVoids() async throws {
        let directory = TemporaryDirectory()
        let glpi = try await FakeGLPIServer(state: makeFixtureState())
        defer { Task { await glpi.stop() } }
        let database = directory.path + "/l.sqlite"
        let config = directory.write("hourledger.yaml", configYAML(url: glpi.url, database: database, contracts: contracts))

        let bad = try await CLI.run(["topup", "--config", config, "--contract", "acme", "--hours", "5:7", "--note", "PO 4711"])
        #expect(bad.exitedNormally && bad.status != 0 && bad.output.contains("--hours must be hours such as 10, 2.5 or 1:30"), "\(bad.output)")
        let payg = try await CLI.run(["topup", "--config", config, "--contract", "beta", "--hours", "5", "--note", "PO 4711"])
        #expect(payg.status != 0 && payg.output.contains("block"), "\(payg.output)")

        let added = try await CLI.run(["topup", "--config", config, "--contract", "acme", "--hours", "2.5", "--note", "PO 4711",
                                       "--expires", "2099-12-31", "--price", "29000"])
        // What it prints to stdout, without the log lines (stderr, with a timestamp) that the pipe interleaves.
        func printed(_ run: CLI.Run) -> [String] { run.output.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("20") } }
        #expect(added.status == 0, "\(added.output)")
        #expect(printed(added).first == "top-up 1: 2:30 h added to acme, usable through 2099-12-31 (PO 4711)", "\(added.output)")
        #expect(printed(added).last?.hasPrefix("period ") == true && added.output.contains("top-up added"), "\(added.output)")
        let listed = try await CLI.run(["topup", "list", "--config", config, "--contract", "acme"])
        #expect(listed.output.contains("1  acme  2:30 h  added ") && listed.output.contains(" by cli  expires 2099-12-31  price 29000  PO 4711\n"),
                "\(listed.output)")

        let unknown = try await CLI.run(["topup", "void", "9", "--config", config, "--reason", "typo"])
        #expect(unknown.status != 0 && unknown.output.contains("9"), "\(unknown.output)")
        let voided = try await CLI.run(["topup", "void", "1", "--config", config, "--reason", "wrong customer"])
        #expect(voided.status == 0 && printed(voided) == ["top-up 1 of acme voided: 2:30 h no longer count"], "\(voided.output)")

        let ledger = try makeLedger(path: database)
        let kept = try ledger.topUps(contractID: "acme")
        #expect(kept.map { "\($0.id) \($0.seconds) \($0.price ?? -1) \($0.voidedBy ?? "-") \($0.voidReason ?? "-")" } == ["1 9000 29000 cli wrong customer"])
        #expect(try ledger.topUps(contractID: "beta").isEmpty)
    }

    @Test func invoicePreviewsAndReportsForEachBillingMode() async throws {
        let directory = TemporaryDirectory()
        let glpi = try await FakeGLPIServer(state: makeFixtureState())
        defer { Task { await glpi.stop() } }
        let state = glpi.state
        state.addTicket(1, name: "Mail server", entity: 1, category: 1, groups: [1])
        state.addTicket(2, name: "Printer", entity: 2, category: 1, groups: [1])
        state.addTicket(3, name: "Paris office move", entity: 3, category: 1, groups: [1])
        state.addTask(ticket: 1, seconds: 2 * 3600, technician: 7, date: "2026-10-05 09:00:00")
        let november = state.addTask(ticket: 1, seconds: 10 * 3600, technician: 7, date: "2026-11-03 09:00:00")
        let overage = state.addTask(ticket: 1, seconds: 5 * 3600, technician: 8, date: "2026-11-20 09:00:00")
        let payg1 = state.addTask(ticket: 2, seconds: 5400, technician: 7, date: "2026-11-04 09:00:00")
        let payg2 = state.addTask(ticket: 2, seconds: 1200, technician: 7, date: "2026-11-05 09:00:00")
        state.addTask(ticket: 3, seconds: 3 * 3600, technician: 7, date: "2026-11-06 09:00:00")
        let config = try ConfigLoader.parse(configYAML(url: glpi.url, database: directory.path + "/l.sqlite", contracts: contracts))
        let now = Date.utc("2026-11-21 12:00:00")
        let runtime = try Runtime(configuration: config, clock: WallClock { now })
        try await runtime.engine.syncOnce(now: now)
        let internalTime = try await runtime.ledger.addEntry(
            NewEntry(ticketID: 1, technician: 7, startedAt: .utc("2026-11-04 10:00:00"), rawSeconds: 1800, kind: .internal, note: "handover",
                     createdBy: "alice"), now: now)
        let manager = try runtime.ledger.createToken(user: "boss", helpdeskUserID: 2, role: .manager)
        let technician = try runtime.ledger.createToken(user: "alice", helpdeskUserID: 7, role: .technician)
        let app = buildApplication(runtime: runtime)
        if ProcessInfo.processInfo.environment["PRINT_README_EXAMPLES"] != nil {
            let range = ReportRange(from: .utc("2026-09-30 22:00:00"), to: .utc("2026-11-30 23:00:00"))
            print(try Report.render(.blocks, ledger: runtime.ledger, range: range, timeZone: TimeZone(identifier: "Europe/Paris")!,
                                    contractID: "acme", format: "table", now: now))
            for id in ["acme", "beta"] {
                print(Report.invoice(try runtime.ledger.invoicePreview(config.contracts.first { $0.id == id }!, at: now, now: now)!, format: "table"))
            }
        }

        try await app.test(.router) { client in
            func get(_ uri: String, token: String?) async throws -> (HTTPResponse.Status, String) {
                var headers: HTTPFields = [:]
                if let token { headers[.authorization] = "Bearer \(token)" }
                return try await client.execute(uri: uri, method: .get, headers: headers) { ($0.status, String(buffer: $0.body)) }
            }
            func get(_ uri: String) async throws -> (HTTPResponse.Status, String) { try await get(uri, token: manager) }
            // Block: October's 8 unused hours carry 4 (the cap) into November; 15 h against 14 h is one hour of overage,
            // at technician 8's own rate because it was his task that went over.
            var (status, text) = try await get("/api/v1/contracts/acme/invoice-preview?period=2026-11")
            #expect(status == .ok)
            var preview = try object(ByteBuffer(string: text))
            let lines = preview["lines"] as! [[String: Any]]
            #expect(lines.map { $0["kind"] as? String } == ["block", "overage"])
            #expect((lines[0]["seconds"] as? Int, lines[0]["amount"] as? Int) == (14 * 3600, 90000))
            #expect(lines[0]["entries"] as? [String] == ["glpi_task:\(november)", "glpi_task:\(overage)"])
            #expect((lines[1]["seconds"] as? Int, lines[1]["rate_per_hour"] as? Int, lines[1]["amount"] as? Int) == (3600, 15000, 15000))
            #expect(lines[1]["entries"] as? [String] == ["glpi_task:\(overage)"])
            #expect(preview["total_amount"] as? Int == 105_000)
            #expect(preview["unbilled_entries"] as? [String] == [internalTime.key])
            #expect(preview["partial"] as? Bool == true)  // November is still running: month to date

            // Pay as you go, one line per ticket, as CSV.
            (status, text) = try await get("/api/v1/contracts/beta/invoice-preview?period=2026-11&format=csv")
            #expect(status == .ok)
            #expect(text == """
                kind,description,ticket_id,technician,seconds,rate_per_hour,amount,currency,entries
                time,Ticket 2 Printer,2,,6600,9000,16500,EUR,glpi_task:\(payg1) glpi_task:\(payg2)

                """)
            // The accounting export: every contract's lines for November, in the import's columns, exact to the cent
            // and the second; the same as JSON in minor units.
            (status, text) = try await get("/api/v1/invoices/accounting?period=2026-11&format=csv")
            #expect(status == .ok)
            #expect(text == """
                customer,contract_id,contract_name,period,description,quantity_hours,unit_price,amount,currency,entry_refs
                "ACME Corp, Paris",acme,ACME block,2026-11-01,"Block of 14:00 h, 14:00 h used",14.0000,,900.00,EUR,glpi_task:\(november) glpi_task:\(overage)
                "ACME Corp, Paris",acme,ACME block,2026-11-01,"Overage, technician 8",1.0000,150.00,150.00,EUR,glpi_task:\(overage)
                Beta PAYG,beta,Beta PAYG,2026-11-01,Ticket 2 Printer,1.8333,90.00,165.00,EUR,glpi_task:\(payg1) glpi_task:\(payg2)

                """)
            (status, text) = try await get("/api/v1/invoices/accounting?period=2026-11&contract=beta&format=json")
            let exported = try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [[String: Any]]
            #expect(exported.map { "\($0["customer"]!) \($0["quantity_seconds"]!) \($0["quantity_hours"]!) \($0["unit_price"]!) \($0["amount"]!) \($0["period_start"]!)" }
                    == ["Beta PAYG 6600 1.8333 9000 16500 2026-11-01T00:00:00Z"])
            #expect(try await get("/api/v1/invoices/accounting?period=2026-11", token: technician).0 == .forbidden)
            (status, text) = try await get("/api/v1/invoices/accounting?period=last-month")
            #expect(status == .badRequest && text.contains("\"field\" : \"period\""))
            #expect(try await get("/api/v1/invoices/accounting?contract=nope").0 == .notFound)
            // Unlimited: time is recorded, nothing is invoiced.
            (status, text) = try await get("/api/v1/contracts/gamma/invoice-preview?period=current")
            preview = try object(ByteBuffer(string: text))
            #expect((preview["lines"] as? [Any])?.isEmpty == true && preview["unbilled_seconds"] as? Int == 3 * 3600)

            // The block usage report explains both months line by line. September left 4 h (the cap) for October; October
            // used 2 h of them, September's other 2 h expire with it, and 6 h of October's own 10 h are over the cap.
            (status, text) = try await get("/api/v1/reports/blocks?from=2026-10-01&to=2026-12-01&timezone=Europe/Paris&contract=acme&format=csv")
            #expect(status == .ok)
            #expect(text == """
                contract_id,name,mode,period_key,quota_seconds,carried_in_seconds,used_seconds,overage_seconds,expired_seconds,remaining_seconds,carried_out_seconds,closed,top_up_seconds
                acme,ACME block,block,2026-10-01,36000,14400,7200,0,28800,14400,14400,true,0
                acme,ACME block,block,2026-11-01,36000,14400,54000,3600,0,-3600,0,false,0

                """)
            // Billable against internal per technician.
            (status, text) = try await get("/api/v1/reports/technicians?from=2026-11-01&to=2026-12-01")
            let rows = try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [[String: Any]]
            #expect(rows.map { $0["technician"] as? Int } == [7, 8])
            let alice = rows[0]["time"] as! [String: Int]
            #expect((alice["billable_seconds"], alice["internal_seconds"], alice["entry_count"]) == (10 * 3600 + 6600 + 3 * 3600, 1800, 5))

            // The balance shows the carry-over, the overage and the forecast.
            (status, text) = try await get("/api/v1/contracts/acme", token: technician)
            let balance = try object(ByteBuffer(string: text))["balance"] as! [String: Any]
            #expect((balance["carried_in_seconds"] as? Int, balance["overage_seconds"] as? Int, balance["remaining_seconds"] as? Int) == (14400, 3600, -3600))
            #expect((balance["forecast"] as? [String: Any])?["already_depleted"] as? Bool == true)

            // Money needs a manager; bad input is named.
            #expect(try await get("/api/v1/contracts/acme/invoice-preview", token: technician).0 == .forbidden)
            #expect(try await get("/api/v1/reports/contracts", token: nil).0 == .unauthorized)
            (status, text) = try await get("/api/v1/contracts/acme/invoice-preview?period=2025-06")
            #expect(status == .badRequest && text.contains("\"field\" : \"period\""))
            #expect(try await get("/api/v1/reports/everything").0 == .notFound)
            #expect(try await get("/api/v1/reports/tickets?from=2026-13-01").0 == .badRequest)
            // Alerts fired by the sync are listed, with their deliveries.
            (status, text) = try await get("/api/v1/alerts?contract=acme")
            let alerts = try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [[String: Any]]
            #expect(alerts.map { ($0["alert"] as? [String: Any])?["threshold"] as? Int } == [100, 80])
        }
    }
}
