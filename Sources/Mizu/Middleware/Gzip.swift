extension Middlewares {
    /// Go mizu's `compress.Gzip()`: response bodies of `contentTypes` compressed with gzip
    /// (the system zlib) for clients whose `Accept-Encoding` takes it, when at least `minSize`
    /// bytes (a streamed body always, each write flushed so it arrives at once). Adds `Vary:
    /// Accept-Encoding`; leaves alone a response that has a `Content-Encoding`, a range answer
    /// (206), and bodies of other types (images, archives: already compressed).
    public static func gzip(level: Int = 6, minSize: Int = 1024, contentTypes: [String] = gzipContentTypes) -> Middleware {
        let settings = ResponseCompression.Settings(level: level, minSize: max(0, minSize), contentTypes: contentTypes.map { $0.lowercased() })
        return { next in
            { ctx in
                ctx.writer.compressBody(settings, acceptEncoding: ctx.request.header("accept-encoding"))
                try await next(ctx)
            }
        }
    }

    /// What ``gzip(level:minSize:contentTypes:)`` compresses by default (Go's list).
    public static let gzipContentTypes = [
        "text/html", "text/css", "text/plain", "text/javascript", "text/xml", "application/json", "application/javascript",
        "application/xml", "application/xhtml+xml", "application/rss+xml", "application/atom+xml", "image/svg+xml",
    ]
}
