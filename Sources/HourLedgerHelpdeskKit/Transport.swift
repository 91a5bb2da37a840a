import Foundation
import HourLedgerHTTPClient
import HourLedgerUseCases

extension HelpdeskError {
    /// A transport failure, knowing whether the request left this machine.
    public init(transport error: HTTPClientError, operation: String) {
        self.init(.unreachable, operation: operation, detail: error.description,
                  requestNeverSent: [.couldNotConnect, .dns, .tls].contains(error.kind))
    }
}

/// `application/x-www-form-urlencoded` (and query strings): only unreserved characters go unescaped.
public enum FormEncoding {
    public static func encode(_ pairs: [(String, String)]) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return pairs.map { key, value in
            key.addingPercentEncoding(withAllowedCharacters: allowed)! + "=" + value.addingPercentEncoding(withAllowedCharacters: allowed)!
        }.joined(separator: "&")
    }
}

/// Runs `body` for every item, at most `concurrency` at once, and returns the results in the items' order: how both
/// adapters read the pages after a list's first, and GLPI the tasks of many tickets. The first error cancels the rest.
public func concurrentMap<Item: Sendable, Result: Sendable>(_ items: [Item], concurrency: Int,
                                                          _ body: @escaping @Sendable (Item) async throws -> Result) async throws -> [Result] {
    var results = [Result?](repeating: nil, count: items.count)
    try await withThrowingTaskGroup(of: (Int, Result).self) { group in
        var next = items.indices.makeIterator()
        for _ in 0..<max(1, concurrency) {
            guard let index = next.next() else { break }
            group.addTask { (index, try await body(items[index])) }
        }
        while let (index, result) = try await group.next() {
            results[index] = result
            if let index = next.next() { group.addTask { (index, try await body(items[index])) } }
        }
    }
    return results.map { $0! }
}
