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
