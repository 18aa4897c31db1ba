import Logging

/// Built-in middleware.
public enum Middlewares {
    /// Turns an error thrown further in into a response through `errorHandler` (the app's
    /// default handler, logging to `mizu`, unless given), so outer middleware sees a finished response with its
    /// status instead of an error. Swift has no panics to recover from; thrown errors are
    /// what this catches.
    public static func recover(_ errorHandler: App.ErrorHandler? = nil) -> Middleware {
        let handle = errorHandler ?? App.defaultErrorHandler(logger: Logger(label: "mizu"))
        return { next in
            { ctx in
                do {
                    try await next(ctx)
                } catch {
                    guard !ctx.writer.headSent else { throw error }
                    await handle(ctx, error)
                }
            }
        }
    }
}
