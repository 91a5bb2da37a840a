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
                contract_id,name,mode,period_key,quota_seconds,carried_in_seconds,used_seconds,overage_seconds,expired_seconds,remaining_seconds,carried_out_seconds,closed
                acme,ACME block,block,2026-10-01,36000,14400,7200,0,28800,14400,14400,true
                acme,ACME block,block,2026-11-01,36000,14400,54000,3600,0,-3600,0,false

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
