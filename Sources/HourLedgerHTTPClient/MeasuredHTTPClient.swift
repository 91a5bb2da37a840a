import CoreMetrics

/// Counts and times every helpdesk request, by outcome, for `/metrics`; and tells `onResponse` that the helpdesk
/// answered, which keeps the watchdog fed during a long sync.
public struct MeasuredHTTPClient: HTTPSending {
    private let inner: any HTTPSending
    private let outcomes: [String: Counter]
    private let latency: Timer
    private let onResponse: @Sendable () -> Void

    public init(_ inner: any HTTPSending, helpdesk: String, factory: any MetricsFactory, onResponse: @escaping @Sendable () -> Void = {}) {
        self.inner = inner
        self.onResponse = onResponse
        var outcomes: [String: Counter] = [:]
        for outcome in ["ok", "client_error", "server_error", "transport_error"] {
            outcomes[outcome] = Counter(label: "hourledger_helpdesk_requests_total",
                                        dimensions: [("helpdesk", helpdesk), ("outcome", outcome)], factory: factory)
        }
        self.outcomes = outcomes
        latency = Timer(label: "hourledger_helpdesk_request_duration_seconds", dimensions: [("helpdesk", helpdesk)], factory: factory)
    }

    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        let started = ContinuousClock.now
        do {
            let response = try await inner.send(request)
            latency.recordInterval(since: started)
            outcomes[response.status >= 500 ? "server_error" : response.status >= 400 ? "client_error" : "ok"]?.increment()
            onResponse()
            return response
        } catch {
            latency.recordInterval(since: started)
            outcomes["transport_error"]?.increment()
            throw error
        }
    }
}

extension Timer {
    func recordInterval(since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
    }
}
