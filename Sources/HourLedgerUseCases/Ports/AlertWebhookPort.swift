import Foundation

/// An outgoing alert webhook, with its secret resolved.
public struct AlertTarget: Sendable, Equatable {
    public var name: String
    public var url: String
    public var secret: String?
    public var timeout: Duration

    public init(name: String, url: String, secret: String?, timeout: Duration = .seconds(10)) {
        self.name = name
        self.url = url
        self.secret = secret
        self.timeout = timeout
    }
}

/// Posts an alert's JSON to a webhook, signed when the target has a secret. Answers other than 2xx are errors.
public protocol AlertWebhookPort: Sendable {
    /// `deliveryID` lets the receiver de-duplicate a retry (`X-HourLedger-Delivery`).
    func post(_ body: [UInt8], to target: AlertTarget, deliveryID: String, now: Date) async throws
}
