import Mizu

/// Mounts a plain `HTTPHandler` as a route handler: `app.get("/ws", compat(server.handler()))`.
/// The route's path parameters stay readable in `request.pathParameters`, and the handler
/// may upgrade the connection.
public func compat(_ handler: any HTTPHandler) -> Handler {
    { ctx in try await handler.serveHTTP(ctx.writer, ctx.request) }
}

/// A plain middleware: wraps one HTTPHandler in another (Go's `func(http.Handler) http.Handler`).
public typealias HTTPMiddleware = @Sendable (any HTTPHandler) -> any HTTPHandler

/// Adapts plain middleware to Mizu middleware, so `app.use(compat(cors))` works.
public func compat(_ middleware: @escaping HTTPMiddleware) -> Middleware {
    { next in
        // The route handler the plain middleware wraps; the context it needs travels in the
        // request's path parameters and the writer, which are all a Ctx holds.
        let inner = HTTPHandlerFunc { writer, request in
            try await next(Ctx.make(request: request, writer: writer))
        }
        let wrapped = middleware(inner)
        return { ctx in try await wrapped.serveHTTP(ctx.writer, ctx.request) }
    }
}

/// A route handler as a plain HTTPHandler (the reverse of ``compat(_:)-(HTTPHandler)``).
public func plain(_ handler: @escaping Handler) -> any HTTPHandler {
    HTTPHandlerFunc { writer, request in try await handler(Ctx.make(request: request, writer: writer)) }
}
