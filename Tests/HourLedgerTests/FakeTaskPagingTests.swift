import FakeGLPI
import Foundation
import HourLedgerGLPI
import HourLedgerHTTPClient
import Testing

/// The fake's `getItems TicketTask` answers as the recordings getItems_TicketTask_paged, _sort_date_mod_desc and
/// _range_past_total do (status, paging headers, encoded content, the error array), over the real libcurl client,
/// and the order it keeps between pages follows every task change.
@Suite struct FakeTaskPagingTests {
    @Test func taskPagesAnswerAsTheRecordingsAndFollowChanges() async throws {
        let state = makeFixtureState()
        state.addTicket(1, name: "Laptop", entity: 1, category: 1, groups: [1])
        state.addTicket(2, name: "Printer", entity: 2, category: 1, groups: [1])
        var ids: [Int] = []
        for n in 0..<7 {
            state.advance(seconds: 60)
            ids.append(state.addTask(ticket: 1 + n % 2, seconds: 600 + n, content: "<p>R&D step \(n)</p>"))
        }
        let server = try await FakeGLPIServer(state: state)
        defer { Task { await server.stop() } }
        let client = CurlHTTPClient()
        let login = try await client.send(HTTPRequest(url: server.url + "/initSession",
                                                      headers: [("App-Token", "fixture-app-token"), ("Authorization", "user_token fixture-user-token")]))
        let token = try GLPIConnector.decode(login, operation: "initSession")["session_token"]!.string!
        let headers = [("App-Token", "fixture-app-token"), ("Session-Token", token)]
        func get(_ query: String) async throws -> (status: Int, headers: HTTPResponse, body: Any) {
            let response = try await client.send(HTTPRequest(url: server.url + "/TicketTask?" + query, headers: headers))
            return (response.status, response, try JSONSerialization.jsonObject(with: Data(response.body)))
        }

        // Newest change first, five at a time: 206, Accept-Range and Content-Range as GLPI sends them.
        var page = try await get("range=0-4&sort=date_mod&order=DESC&expand_dropdowns=false")
        #expect(page.status == 206)
        #expect(page.headers.header("Accept-Range") == "TicketTask 1000" && page.headers.header("Content-Range") == "0-4/7")
        var rows = try #require(page.body as? [[String: Any]])
        #expect(rows.map { $0["id"] as? Int } == ids.reversed().prefix(5).map { $0 })
        // GLPI stores and returns <, > and & as numeric entities.
        #expect(rows.first?["content"] as? String == "&#60;p&#62;R&#38;D step 6&#60;/p&#62;")
        // Every column GLPI returns, and its HATEOAS links: a fake that sent less would make a page cheaper to read
        // than a real one.
        let recorded = try JSONSerialization.jsonObject(with: Data(contentsOf: Fixtures.root.appendingPathComponent("glpi/getItems_TicketTask_paged.json")))
        let recordedTask = try #require(((recorded as? [String: Any])?["response"] as? [String: Any])?["body"] as? [[String: Any]]).first
        #expect(Set(rows.first?.keys.map { $0 } ?? []) == Set(recordedTask?.keys.map { $0 } ?? []))
        let links = (rows.first?["links"] as? [[String: String]])?.map { $0["rel"] ?? "" }
        // A link for each id that is not 0, as GLPI makes them (these tasks have no category).
        #expect(links == ["Ticket", "User", "User", "Document_Item"], "\(links ?? [])")
        #expect((rows.first?["links"] as? [[String: String]])?.first?["href"] == "http://127.0.0.1:8091/apirest.php/Ticket/1")

        // Editing the oldest task makes it the newest change: the kept order follows.
        state.advance(seconds: 60)
        state.editTask(ids[0]) { $0.seconds = 900 }
        page = try await get("range=0-4&sort=date_mod&order=DESC&expand_dropdowns=false")
        rows = try #require(page.body as? [[String: Any]])
        #expect(rows.first?["id"] as? Int == ids[0] && rows.first?["actiontime"] as? Int == 900)
        // A deleted task leaves the list and the total.
        state.deleteTask(ids[6])
        page = try await get("range=0-99&expand_dropdowns=false")
        #expect(page.status == 200 && page.headers.header("Content-Range") == "0-5/6")
        #expect((page.body as? [[String: Any]])?.map { $0["id"] as? Int } == ids.prefix(6).map { $0 })

        // Past the end: 400 and GLPI's two-element error array.
        page = try await get("range=20000-20999&expand_dropdowns=false")
        #expect(page.status == 400)
        #expect(page.body as? [String] == ["ERROR_RANGE_EXCEED_TOTAL",
                                           "Provided range exceed total count of data: 6; view documentation in your browser at http://127.0.0.1:8091/apirest.php/#ERROR_RANGE_EXCEED_TOTAL"])
    }
}
