import NIOCore
import NIOHTTP1

extension Middlewares {
    /// Gives each request `duration` (Go's timeout middleware). A handler that has not started
    /// its response by then is cancelled and the client gets 503 with `message` (plain text;
    /// headers set by outer middleware are kept); whatever the handler writes afterwards is
    /// refused. A response already streaming is cut: the connection closes without the body's
    /// end, so the client sees it incomplete. Cancellation is cooperative: the next request on
    /// the connection waits until the handler returns.
    public static func timeout(_ duration: TimeAmount, message: String = "Service Unavailable") -> Middleware {
        { next in
            { ctx in
                let outerHeaders = ctx.writer.headers
                try await withThrowingTaskGroup(of: Bool.self) { group in
                    group.addTask {
                        try await next(ctx)
                        return true
                    }
                    group.addTask {
                        try await Task.sleep(nanoseconds: UInt64(max(0, duration.nanoseconds)))
                        return false
                    }
                    defer { group.cancelAll() }
                    guard let handlerFinished = try await group.next(), !handlerFinished else { return }
                    // The deadline came first: answer now, not when the handler notices.
                    group.cancelAll()
                    if try await ctx.writer.finishEarly(.serviceUnavailable, text: message, headers: outerHeaders) { return }
                    ctx.writer.cut()  // closed now, and the handler's later writes are refused
                    throw TimeoutError.responseCut
                }
            }
        }
    }

    /// A streaming response was still going at the deadline.
    public enum TimeoutError: Error, Equatable {
        /// The response had started: its body was cut (no terminating chunk), so the client
        /// sees it incomplete.
        case responseCut
    }
}
