import CoreMetrics
import Foundation
import HourLedgerUseCases
import Hummingbird
import Logging

/// Every answer of 500 or above has a JSON body, a log line and a count in `/metrics`. A failure to write the
/// ledger (a full disk) is a 503 with Retry-After: the caller tries again later, and nothing was acknowledged that
/// is not on disk.
struct FailureMiddleware<Context: RequestContext>: RouterMiddleware {
    let ledger: Ledger
    let logger: Logger
    let metrics: any MetricsFactory

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            let response = try await next(request, context)
            if response.status.code >= 500 {
                count(response.status)
                logger.warning("answered \(response.status.code)", metadata: ["method": "\(request.method)", "path": "\(request.uri.path)"])
            }
            return response
        } catch let error as any HTTPResponseError where error.status.code < 500 {
            throw error
        } catch let busy as ReadPool.Busy {
            count(.serviceUnavailable)
            logger.notice("long reads queued beyond the limit; answered 503", metadata: ["path": "\(request.uri.path)"])
            var response = try JSONBody.error(.serviceUnavailable, busy.description)
            response.headers[.retryAfter] = "2"
            return response
        } catch let error as LedgerUnavailable {
                ledger.health.noteFailure(error, at: ledger.clock.now())
                let reason = error.reason
                count(.serviceUnavailable)
                logger.error("the ledger cannot be written; answered 503", metadata: [
                    "method": "\(request.method)", "path": "\(request.uri.path)", "reason": "\(reason)", "error": "\(error)",
                ])
                var response = try JSONBody.error(.serviceUnavailable, "the ledger cannot be written (\(reason)); nothing was stored, try again later")
                response.headers[.retryAfter] = "30"
                return response
        } catch {
            let reference = String(UUID().uuidString.prefix(8)).lowercased()
            count(.internalServerError)
            logger.error("request failed", metadata: ["method": "\(request.method)", "path": "\(request.uri.path)", "reference": "\(reference)",
                                                      "error": "\(error)"])
            return try JSONBody.error(.internalServerError, "internal error (reference \(reference), in the daemon's log)")
        }
    }

    private func count(_ status: HTTPResponse.Status) {
        Counter(label: "hourledger_http_errors_total", dimensions: [("status", "\(status.code)")], factory: metrics).increment()
    }
}

/// The middleware that gives every 5xx a JSON body, a log line and a count.
public func failureMiddleware<Context: RequestContext>(ledger: Ledger, logger: Logger, metrics: any MetricsFactory) -> some RouterMiddleware<Context> {
    FailureMiddleware<Context>(ledger: ledger, logger: logger, metrics: metrics)
}
