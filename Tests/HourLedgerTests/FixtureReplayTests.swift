import FakeGLPI
import Foundation
import HourLedgerHTTPClient
import HourLedgerGLPI
import HourLedgerHelpdeskKit
import HourLedgerITop
import HourLedgerUseCases
import Testing

/// Every response recorded from the real GLPI 10.0.14 goes through the connector's own parsing.
@Suite struct FixtureReplayTests {
    static func response(_ fixture: [String: Any]) throws -> HTTPResponse {
        let recorded = fixture["response"] as! [String: Any]
        let headers = (recorded["headers"] as! [[String]]).map { (name: $0[0], value: $0[1]) }
        let body = try JSONSerialization.data(withJSONObject: recorded["body"] ?? NSNull(), options: [.fragmentsAllowed])
        return HTTPResponse(status: recorded["status"] as! Int, headers: headers, body: Array(body))
    }

    /// A search row's type and category as the reports show them: option 14 raw (1, 2) by name, a label kept as it
    /// reads, none empty; the category's HTML-encoded name decoded once.
    @Test func aSearchRowNamesItsTypeAndDecodesItsCategory() throws {
        func row(_ json: String) throws -> GLPIConnector.SearchRow {
            try #require(GLPIConnector.SearchRow(try JSONValue.parse(Array(json.utf8))))
        }
        #expect(try row(#"{"2": 5, "14": 1, "7": "Network &#38; &#60;VPN&#62;"}"#).type == "Incident")
        #expect(try row(#"{"2": 5, "14": 2}"#).type == "Request")
        #expect(try row(#"{"2": 5, "14": "Request"}"#).type == "Request")
        #expect(try row(#"{"2": 5, "14": 7}"#).type == "type 7")
        #expect(try row(#"{"2": 5}"#).type == "")
        #expect(try row(#"{"2": 5, "7": "Network &#38; &#60;VPN&#62;"}"#).category == "Network & <VPN>")
    }

    @Test func everyRecordedResponseParsesOrBecomesATypedError() throws {
        let files = try Fixtures.glpiFiles()
        #expect(files.count >= 70, "fixtures not found at \(Fixtures.root.path)")
        var parsed = 0, errors = 0
        for file in files where file.lastPathComponent != "webhook-notes.md" {
            let fixture = try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as! [String: Any]
            guard fixture["response"] != nil else { continue }
            let response = try Self.response(fixture)
            if (200..<300).contains(response.status) {
                let value = try GLPIConnector.decode(response, operation: file.lastPathComponent)
                // The connector reads rows keyed by search option id; uid_cols/withindexes answers are a shape it never asks for.
                let path = (fixture["request"] as! [String: Any])["path_decoded"] as! String
                if let data = value["data"]?.array, file.lastPathComponent.hasPrefix("search_Ticket_"), !path.contains("uid_cols") {
                    for row in data { #expect(GLPIConnector.SearchRow(row) != nil, "\(file.lastPathComponent) \(row)") }
                }
                if let range = response.header("Content-Range") {
                    #expect(GLPIConnector.contentRange(range) != nil, "\(file.lastPathComponent): \(range)")
                }
                parsed += 1
            } else {
                do {
                    _ = try GLPIConnector.decode(response, operation: "replay")
                    Issue.record("\(file.lastPathComponent): an error status parsed as success")
                } catch let error as HelpdeskError {
                    let recordedCode = ((fixture["response"] as! [String: Any])["body"] as? [Any])?.first as? String
                    #expect(error.code == recordedCode, "\(file.lastPathComponent)")
                    #expect(!error.description.contains("view documentation"))
                    errors += 1
                }
            }
        }
        #expect(parsed > 40 && errors >= 20)
    }

    @Test func errorKindsFollowTheRecordedStatuses() throws {
        func kind(_ name: String) throws -> HelpdeskError.Kind? {
            do {
                _ = try GLPIConnector.decode(try Self.response(try Fixtures.glpi(name)), operation: "x")
                return nil
            } catch let error as HelpdeskError { return error.kind }
        }
        #expect(try kind("error_01_bad_app_token.json") == .authentication)
        #expect(try kind("error_03_bad_credentials.json") == .authentication)
        #expect(try kind("error_05_bad_session_token.json") == .authentication)
        #expect(try kind("error_07_unknown_item_id.json") == .notFound)
        #expect(try kind("error_09_search_bad_field.json") == .rejected)
        #expect(try kind("error_16_rights_getItem_Contract.json") == .permission)
        #expect(try kind("search_Ticket_03_range_exceeds_total.json") == .rejected)
    }

    @Test func searchRowsCarryNamesAndMultiValuedGroups() throws {
        let value = try GLPIConnector.decode(try Self.response(try Fixtures.glpi("search_Ticket_02_date_mod_since_page2.json")), operation: "x")
        let rows = try #require(value["data"]?.list.compactMap(GLPIConnector.SearchRow.init))
        #expect(rows.map(\.id) == [1, 5, 6])
        #expect(rows[2].groups == ["Tech Team Alpha", "Tech Team Beta"])
        #expect(rows[0].entity == "Root entity > Customer A")
        #expect(rows[0].dateMod == "2026-11-21 18:33:03")
        let withTasks = try GLPIConnector.decode(try Self.response(try Fixtures.glpi("search_Ticket_09_task_columns.json")), operation: "x")
        let summary = try #require(withTasks["data"]?.list.first.flatMap(GLPIConnector.SearchRow.init))
        #expect(summary.taskCount == 1)
        // A digest of the columns (count, total, durations, dates, privacy), short enough to be kept inline.
        #expect(summary.taskFingerprint == GLPIConnector.SearchRow.fingerprint(count: 1, total: "", durations: ["3600"],
                                                                               dates: ["2026-11-21 18:33:03"], privates: ["0"]))
        #expect(summary.taskFingerprint?.utf8.count == 15)
        #expect(summary.taskFingerprint != GLPIConnector.SearchRow.fingerprint(count: 1, total: "", durations: ["3601"],
                                                                               dates: ["2026-11-21 18:33:03"], privates: ["0"]))
        #expect(rows[0].taskCount == nil)
        let page = try Self.response(try Fixtures.glpi("search_Ticket_01_date_mod_since_page1.json"))
        #expect(page.status == 206)
        #expect(GLPIConnector.contentRange(page.header("content-range")!)! == (0, 2, 6))
    }

    @Test func tasksComeOutInSecondsWithPlainText() throws {
        let value = try GLPIConnector.decode(try Self.response(try Fixtures.glpi("getSubItems_Ticket_TicketTask.json")), operation: "x")
        let task = try GLPIConnector.task(from: try #require(value.array?.first), ticketID: 1, timeZone: TimeZone(identifier: "UTC")!)
        #expect(task.id == 1 && task.seconds == 1800 && task.technician == 7 && !task.isPrivate)
        #expect(task.content == "Diagnosed power supply")
        #expect(task.date == .utc("2026-11-21 18:33:03"))
        let expanded = try GLPIConnector.decode(try Self.response(try Fixtures.glpi("getItem_Ticket_expand_dropdowns.json")), operation: "x")
        #expect(HTMLEntities.decode(expanded["entities_id"]!.string!) == "Root entity > Customer A")
    }
}

/// The fake answers the recorded requests as the real GLPI did: same status, same error code, same paging headers.
@Suite struct FakeFidelityTests {
    @Test func fakeAnswersRecordedRequestsLikeGLPI() async throws {
        let state = makeFixtureState()
        let server = try await FakeGLPIServer(state: state)
        defer { Task { await server.stop() } }
        // Tickets as in the recording: 1 and 3 with Alpha, 2, 4 and 5 with Beta, 6 with both; 1-3 in entity 1, 4-6 in 2.
        for id in 1...6 { state.addTicket(id, name: "T\(id)", entity: id <= 3 ? 1 : 2, category: 1, groups: id == 6 ? [1, 2] : [1, 3].contains(id) ? [1] : [2]) }
        let client = CurlHTTPClient()
        let login = try await client.send(HTTPRequest(url: server.url + "/initSession", headers: [("App-Token", state.appToken), ("Authorization", "user_token \(state.userToken)")]))
        let token = try GLPIConnector.decode(login, operation: "x")["session_token"]!.string!

        let names = ["error_01_bad_app_token.json", "error_02_missing_app_token.json", "error_03_bad_credentials.json",
                     "error_04_bad_user_token.json", "error_05_bad_session_token.json", "error_06_missing_session_token.json",
                     "error_07_unknown_item_id.json", "error_09_search_bad_field.json", "error_11_search_bad_searchtype.json",
                     "search_Ticket_01_date_mod_since_page1.json", "search_Ticket_02_date_mod_since_page2.json",
                     "search_Ticket_03_range_exceeds_total.json", "search_Ticket_05_by_assigned_group_and_entity.json",
                     "session_09_after_kill.json"]
        for name in names {
            let fixture = try Fixtures.glpi(name)
            let request = fixture["request"] as! [String: Any]
            let recorded = try FixtureReplayTests.response(fixture)
            var headers: [(String, String)] = []
            for (key, value) in request["headers"] as! [String: String] {
                switch key {
                case "App-Token": headers.append((key, value == "5bf8b8845f3161ef2811dc7e60464ace85f7cf19" ? state.appToken : value))
                case "Session-Token": headers.append((key, value.hasPrefix("8dtb") ? token : value))
                case "Authorization" where value.hasPrefix("Basic c3ZjLWhvdXJzOkZpeHR1cmUtUGFzcy0x"): headers.append((key, value))
                default: headers.append((key, value))
                }
            }
            let path = (request["path"] as! String).replacingOccurrences(of: "/apirest.php", with: "")
            let answer = try await client.send(HTTPRequest(method: request["method"] as! String, url: server.url + path, headers: headers))
            #expect(answer.status == recorded.status, "\(name)")
            let recordedCode = (try? JSONValue.parse(recorded.body))?.array?.first?.string
            let fakeCode = (try? JSONValue.parse(answer.body))?.array?.first?.string
            #expect(fakeCode == recordedCode, "\(name)")
            if let range = recorded.header("Content-Range") {
                #expect(answer.header("Content-Range") == range, "\(name)")
                #expect(answer.header("Accept-Range") == recorded.header("Accept-Range"), "\(name)")
            }
        }
    }
}
