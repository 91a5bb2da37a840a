import Crypto
import Foundation
import HourLedgerHTTPClient
import HourLedgerUseCases

/// Posts alert webhooks over libcurl, signed with each target's secret.
struct AlertWebhookClient: AlertWebhookPort {
    let http: any HTTPSending

    func post(_ body: [UInt8], to target: AlertTarget, deliveryID: String, now: Date) async throws {
        var headers: [(String, String)] = [
            ("Content-Type", "application/json"), ("User-Agent", "HourLedger"), ("X-HourLedger-Event", "alert"),
            ("X-HourLedger-Delivery", deliveryID),
        ]
        if let secret = target.secret {
            let timestamp = String(Int(now.timeIntervalSince1970))
            headers.append(("X-HourLedger-Timestamp", timestamp))
            headers.append(("X-HourLedger-Signature", "sha256=" + Self.signature(secret: secret, timestamp: timestamp, body: body)))
        }
        let response = try await http.send(HTTPRequest(method: "POST", url: target.url, headers: headers, body: body, timeout: target.timeout))
        guard (200..<300).contains(response.status) else {
            throw AlertDeliveryError("webhook '\(target.name)' answered HTTP \(response.status)")
        }
    }

    /// Lowercase hex HMAC-SHA256 over `<timestamp>.<body>`: the receiver recomputes it to know the alert is genuine and fresh.
    static func signature(secret: String, timestamp: String, body: [UInt8]) -> String {
        var message = Array(timestamp.utf8)
        message.append(UInt8(ascii: "."))
        message += body
        let mac = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: Array(secret.utf8)))
        return mac.map { String(format: "%02x", $0) }.joined()
    }
}
