import CCurl
import Foundation

/// One HTTP request, as the connectors build it.
public struct HTTPRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [(String, String)]
    public var body: [UInt8]?
    /// Overrides the client's total timeout for this request.
    public var timeout: Duration?

    public init(method: String = "GET", url: String, headers: [(String, String)] = [], body: [UInt8]? = nil, timeout: Duration? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
    }
}

public struct HTTPResponse: Sendable {
    public var status: Int
    /// Response headers in arrival order, as sent (names keep their case).
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(name: String, value: String)], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The last value of a header, compared case-insensitively.
    public func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.last(where: { $0.name.lowercased() == lower })?.value
    }
}

/// Sends requests; connectors depend on this protocol so tests and benchmarks can count or fake traffic.
public protocol HTTPSending: Sendable {
    func send(_ request: HTTPRequest) async throws -> HTTPResponse
}

/// A transport failure: the host, what was being done, and libcurl's own words.
public struct HTTPClientError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        case couldNotConnect, timedOut, tls, dns, responseTooLarge, other
    }
    public let host: String
    public let method: String
    public let kind: Kind
    public let curlCode: Int
    public let detail: String

    public var description: String {
        "\(method) to \(host) failed: \(detail) (curl error \(curlCode))"
    }
}

public struct HTTPClientConfiguration: Sendable {
    public var connectTimeout: Duration = .seconds(10)
    public var totalTimeout: Duration = .seconds(60)
    /// TLS peer and host verification; off only when an operator says so.
    public var verifyTLS: Bool = true
    public var caBundlePath: String?
    /// Explicit proxy; when nil, libcurl reads http_proxy, https_proxy, all_proxy and no_proxy from the environment.
    public var proxy: String?
    public var userAgent: String = "HourLedger/\(HourLedgerVersion.current) (libcurl)"
    /// Responses larger than this are refused rather than exhausting memory.
    public var maxResponseBytes: Int = 256 * 1024 * 1024

    public init() {}
}

public enum HourLedgerVersion {
    public static let current = "0.1.0"
}

/// HTTP client over libcurl's easy interface. Transfers run on HourLedger's own threads, never on Swift's
/// cooperative pool nor on libdispatch's (which that pool shares on Linux), so a slow helpdesk blocks nothing else.
/// Finished easy handles go back to a pool so connections are kept alive.
public final class CurlHTTPClient: HTTPSending, @unchecked Sendable {
    public let configuration: HTTPClientConfiguration
    private let threads: TransferThreads
    private let lock = NSLock()
    private var idleHandles: [UnsafeMutableRawPointer] = []

    private static let globalInit: Void = {
        curl_global_init(Int(CURL_GLOBAL_DEFAULT))
    }()

    public init(configuration: HTTPClientConfiguration = .init()) {
        _ = Self.globalInit
        self.configuration = configuration
        threads = TransferThreads.shared
    }

    /// A client with transfer threads of its own, which live as long as the process: for tests that hold them all.
    package init(configuration: HTTPClientConfiguration, transferThreads: Int) {
        _ = Self.globalInit
        self.configuration = configuration
        threads = TransferThreads(count: transferThreads)
    }

    deinit {
        for handle in idleHandles { curl_easy_cleanup(handle) }
    }

    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        // The total timeout counts from here: a request that waited for a free transfer thread has that much less.
        let deadline = ContinuousClock.now + (request.timeout ?? configuration.totalTimeout)
        let gate = QueuedTransfer()
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<HTTPResponse, any Error>) in
            threads.submit {
                guard gate.start() else { return }
                continuation.resume(with: Result { try self.perform(request, deadline: deadline) })
            }
            // Still queued at the deadline: the request gives up on time, and its job is skipped when its turn comes.
            gate.watch(Task {
                try? await Task.sleep(until: deadline, clock: .continuous)
                guard !Task.isCancelled, gate.abandon() else { return }
                let host = URLComponents(string: request.url)?.host ?? request.url
                continuation.resume(throwing: HTTPClientError(host: host, method: request.method, kind: .timedOut, curlCode: 28,
                                                              detail: "timed out waiting for a free transfer thread (every one was busy)"))
            })
        }
    }

    private func checkoutHandle() -> UnsafeMutableRawPointer? {
        lock.lock()
        defer { lock.unlock() }
        if let handle = idleHandles.popLast() { return handle }
        return curl_easy_init()
    }

    private func checkin(_ handle: UnsafeMutableRawPointer) {
        curl_easy_reset(handle)
        lock.lock()
        defer { lock.unlock() }
        if idleHandles.count < 16 { idleHandles.append(handle) } else { curl_easy_cleanup(handle) }
    }

    /// Blocking transfer; only ever called on a transfer thread.
    private func perform(_ request: HTTPRequest, deadline: ContinuousClock.Instant) throws -> HTTPResponse {
        let host = URLComponents(string: request.url)?.host ?? request.url
        let remaining = deadline - ContinuousClock.now
        guard remaining >= .milliseconds(1) else {
            throw HTTPClientError(host: host, method: request.method, kind: .timedOut, curlCode: 28,
                                  detail: "timed out waiting for a free transfer thread (every one was busy)")
        }
        guard let handle = checkoutHandle() else {
            throw HTTPClientError(host: host, method: request.method, kind: .other, curlCode: -1, detail: "curl_easy_init failed")
        }
        defer { checkin(handle) }

        let sink = ResponseSink(limit: configuration.maxResponseBytes)
        let sinkPointer = Unmanaged.passRetained(sink)
        defer { sinkPointer.release() }

        var headerList: UnsafeMutablePointer<curl_slist>? = nil
        for (name, value) in request.headers {
            headerList = curl_slist_append(headerList, "\(name): \(value)")
        }
        // libcurl adds "Expect: 100-continue" to larger bodies; helpdesks behind PHP don't need the extra round trip.
        headerList = curl_slist_append(headerList, "Expect:")
        defer { curl_slist_free_all(headerList) }

        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        let code: CURLcode = errorBuffer.withUnsafeMutableBufferPointer { errorPointer in
            _ = hl_setopt_string(handle, HL_OPT_URL, request.url)
            _ = hl_setopt_long(handle, HL_OPT_NOSIGNAL, 1)
            _ = hl_setopt_long(handle, HL_OPT_TCP_KEEPALIVE, 1)
            _ = hl_setopt_pointer(handle, HL_OPT_ERRORBUFFER, errorPointer.baseAddress)
            _ = hl_setopt_long(handle, HL_OPT_CONNECTTIMEOUT_MS, Self.milliseconds(configuration.connectTimeout))
            _ = hl_setopt_long(handle, HL_OPT_TIMEOUT_MS, Self.milliseconds(remaining))
            _ = hl_setopt_long(handle, HL_OPT_SSL_VERIFYPEER, configuration.verifyTLS ? 1 : 0)
            _ = hl_setopt_long(handle, HL_OPT_SSL_VERIFYHOST, configuration.verifyTLS ? 2 : 0)
            if let ca = configuration.caBundlePath { _ = hl_setopt_string(handle, HL_OPT_CAINFO, ca) }
            if let proxy = configuration.proxy { _ = hl_setopt_string(handle, HL_OPT_PROXY, proxy) }
            _ = hl_setopt_string(handle, HL_OPT_USERAGENT, configuration.userAgent)
            // Empty string: offer every encoding this libcurl can decode (gzip, deflate, ...).
            _ = hl_setopt_string(handle, HL_OPT_ACCEPT_ENCODING, "")
            _ = hl_setopt_slist(handle, HL_OPT_HTTPHEADER, headerList)
            _ = hl_setopt_callback(handle, HL_OPT_WRITEFUNCTION, { pointer, size, count, userdata in
                guard let userdata else { return 0 }
                let sink = Unmanaged<ResponseSink>.fromOpaque(userdata).takeUnretainedValue()
                let length = size * count
                return sink.appendBody(UnsafeRawBufferPointer(start: pointer, count: length)) ? length : 0
            })
            _ = hl_setopt_pointer(handle, HL_OPT_WRITEDATA, sinkPointer.toOpaque())
            _ = hl_setopt_callback(handle, HL_OPT_HEADERFUNCTION, { pointer, size, count, userdata in
                guard let userdata else { return 0 }
                let sink = Unmanaged<ResponseSink>.fromOpaque(userdata).takeUnretainedValue()
                let length = size * count
                sink.appendHeaderLine(UnsafeRawBufferPointer(start: pointer, count: length))
                return length
            })
            _ = hl_setopt_pointer(handle, HL_OPT_HEADERDATA, sinkPointer.toOpaque())

            switch request.method {
            case "GET":
                _ = hl_setopt_long(handle, HL_OPT_HTTPGET, 1)
            case "HEAD":
                _ = hl_setopt_long(handle, HL_OPT_NOBODY, 1)
            default:
                _ = hl_setopt_string(handle, HL_OPT_CUSTOMREQUEST, request.method)
                // libcurl sends a request again, silently, when the reused connection it went out on dies before
                // the first byte of the answer: for a write the helpdesk already ran, that is a second task. A
                // write therefore always gets a connection of its own, never reused, so it leaves this client once.
                _ = hl_setopt_long(handle, HL_OPT_FRESH_CONNECT, 1)
                _ = hl_setopt_long(handle, HL_OPT_FORBID_REUSE, 1)
            }
            if let body = request.body {
                _ = hl_setopt_off_t(handle, HL_OPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count))
                if body.isEmpty {
                    _ = hl_setopt_string(handle, HL_OPT_POSTFIELDS, "")
                } else {
                    body.withUnsafeBufferPointer { buffer in
                        // COPYPOSTFIELDS copies the bytes, so the buffer need not outlive this call.
                        _ = hl_setopt_pointer(handle, HL_OPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: buffer.baseAddress))
                    }
                }
                if request.method != "POST" {
                    _ = hl_setopt_string(handle, HL_OPT_CUSTOMREQUEST, request.method)
                }
            }
            return curl_easy_perform(handle)
        }

        guard code == CURLE_OK else {
            let message = String(decoding: errorBuffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let detail = message.isEmpty ? String(cString: curl_easy_strerror(code)) : message
            throw HTTPClientError(
                host: host, method: request.method, kind: sink.overflowed ? .responseTooLarge : Self.kind(of: code),
                curlCode: Int(code.rawValue), detail: sink.overflowed ? "response larger than \(configuration.maxResponseBytes) bytes" : detail)
        }
        var status = 0
        _ = hl_getinfo_long(handle, HL_INFO_RESPONSE_CODE, &status)
        return HTTPResponse(status: status, headers: sink.finalHeaders(), body: sink.body)
    }

    private static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }

    private static func kind(of code: CURLcode) -> HTTPClientError.Kind {
        switch code {
        case CURLE_COULDNT_CONNECT: return .couldNotConnect
        case CURLE_OPERATION_TIMEDOUT: return .timedOut
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY: return .dns
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_CERTPROBLEM: return .tls
        default: return .other
        }
    }
}

/// Collects one transfer's bytes; touched only by libcurl's callbacks on the transfer's thread.
private final class ResponseSink {
    let limit: Int
    var body: [UInt8] = []
    var overflowed = false
    private var headers: [(name: String, value: String)] = []

    init(limit: Int) { self.limit = limit }

    func appendBody(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard body.count + bytes.count <= limit else {
            overflowed = true
            return false
        }
        body.append(contentsOf: bytes)
        return true
    }

    func appendHeaderLine(_ bytes: UnsafeRawBufferPointer) {
        var end = bytes.count
        while end > 0, bytes[end - 1] == 0x0A || bytes[end - 1] == 0x0D || bytes[end - 1] == 0x20 { end -= 1 }
        if end >= 5, bytes[0] == UInt8(ascii: "H"), bytes[1] == UInt8(ascii: "T"), bytes[2] == UInt8(ascii: "T"), bytes[3] == UInt8(ascii: "P"),
           bytes[4] == UInt8(ascii: "/") {
            // A new status line (redirect or 100-continue): only the final response's headers count.
            headers.removeAll()
            return
        }
        guard let colon = bytes[0..<end].firstIndex(of: UInt8(ascii: ":")) else { return }
        var valueStart = colon + 1
        while valueStart < end, bytes[valueStart] == 0x20 || bytes[valueStart] == 0x09 { valueStart += 1 }
        let name = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[0..<colon]), as: UTF8.self)
        let value = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[valueStart..<end]), as: UTF8.self)
        headers.append((name, value))
        // The body's room taken at once: grown by doubling, a 4.5 MB task page held 8 MB and was copied on the way.
        // A server's word is trusted for 64 MB at most (and never past the limit); a larger body grows as it comes.
        if body.isEmpty, name.lowercased() == "content-length", let length = Int(value), length > 0 {
            body.reserveCapacity(min(length, limit, 64 << 20))
        }
    }

    func finalHeaders() -> [(name: String, value: String)] { headers }
}

/// A transfer waiting in the queue: either a thread starts it or its deadline abandons it, never both.
private final class QueuedTransfer: @unchecked Sendable {
    private let lock = NSLock()
    private var decided = false
    private var watchdog: Task<Void, Never>?

    func watch(_ task: Task<Void, Never>) {
        lock.lock()
        defer { lock.unlock() }
        if decided { task.cancel() } else { watchdog = task }
    }

    /// True when the transfer may run; its watchdog is then cancelled.
    func start() -> Bool { decide() }

    /// True when the transfer had not started: it never will.
    func abandon() -> Bool { decide() }

    private func decide() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard !decided else { return false }
        decided = true
        watchdog?.cancel()
        watchdog = nil
        return true
    }
}

/// Threads that run blocking transfers, fed by a FIFO queue. A job that finds every thread busy starts another,
/// up to `maximum`: a request then waits for a thread only past that many transfers at once, and its total timeout
/// (which counts from the send) is not spent in the queue because slow answers hold the threads.
final class TransferThreads: @unchecked Sendable {
    /// Enough for every connector's parallel reads, the outbox and the alert webhooks at once; more wait their turn.
    static let shared = TransferThreads(count: 16, maximum: 64)

    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var head = 0
    private var threads = 0
    private var idle = 0
    private let maximum: Int

    init(count: Int, maximum: Int? = nil) {
        self.maximum = max(count, maximum ?? count)
        condition.lock()
        for _ in 0..<count { startThread() }
        condition.unlock()
    }

    /// Called with the lock held.
    private func startThread() {
        let thread = Thread { [unowned self] in self.work() }
        thread.name = "hourledger-curl-\(threads)"
        threads += 1
        thread.start()
    }

    func submit(_ job: @escaping @Sendable () -> Void) {
        condition.lock()
        jobs.append(job)
        if jobs.count - head > idle, threads < maximum { startThread() }
        condition.signal()
        condition.unlock()
    }

    private func work() {
        while true {
            condition.lock()
            idle += 1
            while head == jobs.count { condition.wait() }
            idle -= 1
            let job = jobs[head]
            head += 1
            if head > 1024, head * 2 > jobs.count {
                jobs.removeFirst(head)
                head = 0
            }
            condition.unlock()
            job()
        }
    }
}
