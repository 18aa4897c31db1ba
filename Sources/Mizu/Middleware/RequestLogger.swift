import Logging
import NIOCore

extension Middlewares {
    /// Logs one line per request: method, path, status and duration.
    public static func logger(_ logger: Logger = Logger(label: "mizu.request")) -> Middleware {
        { next in
            { ctx in
                let start = NIODeadline.now()
                var failure: (any Error)?
                do {
                    try await next(ctx)
                } catch {
                    failure = error
                }
                let micros = (NIODeadline.now() - start).nanoseconds / 1000
                let status = failure == nil ? ctx.writer.status.code : (failure as? HTTPError)?.status.code ?? 500
                var metadata: Logger.Metadata = [:]
                if let failure { metadata["error"] = "\(LogSafe("\(failure)"))" }
                if let id = ctx.values[.requestID] { metadata["request_id"] = "\(LogSafe(id))" }
                logger.info("\(ctx.request.method.rawValue) \(LogSafe(ctx.request.path)) \(status) \(micros)us", metadata: metadata)
                if let failure { throw failure }
            }
        }
    }
}
