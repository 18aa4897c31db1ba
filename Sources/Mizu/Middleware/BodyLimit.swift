extension Middlewares {
    /// Refuses request bodies over `bytes` with 413 (Go's body limit), for routes that take
    /// less than the server's `maxBodySize` (which bounds what is read at all).
    public static func bodyLimit(_ bytes: Int) -> Middleware {
        { next in
            { ctx in
                guard ctx.request.body.readableBytes <= bytes else {
                    throw HTTPError(.payloadTooLarge, "request body exceeds \(bytes) bytes")
                }
                try await next(ctx)
            }
        }
    }
}
