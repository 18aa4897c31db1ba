import Logging
import NIOCore

/// Runs one request's handler in its own task on the connection's loop (started at once, in
/// the caller's stack, until it first waits), and makes sure the
/// response ends whatever the handler does: a thrown error before the head becomes a 500, one
/// after it cuts the body short (no terminating chunk), so the client sees it as incomplete.
struct HTTPRequestRunner {
    let handler: any HTTPHandler
    let logger: Logger
    let metrics: HTTPMetrics

    /// `finished` gets whether the response failed (the connection must then close).
    func start(_ request: Request, writer: ResponseWriter, on eventLoop: any EventLoop, finished: @escaping @Sendable (Bool) -> Void) {
        let handler = self.handler
        let logger = self.logger
        let metrics = self.metrics
        let started = NIODeadline.now()
        Task.startingNow(on: eventLoop) {
            var failed = false
            do {
                try await handler.serveHTTP(writer, request)
            } catch {
                logger.error("handler failed", metadata: ["path": "\(LogSafe(request.path))", "error": "\(error)"])
                if writer.headSent {
                    failed = true
                    writer.abandon()
                } else {
                    writer.status = .internalServerError
                    writer.headers = ["content-type": "text/plain; charset=utf-8"]
                    try? await writer.write("internal server error\n")
                }
            }
            do {
                try await writer.finish()
            } catch {
                failed = true
            }
            metrics.requestFinished(method: request.method, status: writer.status, nanoseconds: (NIODeadline.now() - started).nanoseconds)
            finished(failed)
        }
    }
}
