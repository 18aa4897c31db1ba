/// Cross-origin resource sharing (the Fetch standard's CORS protocol), as Go mizu's CORS
/// middleware: which origins may call, with which methods and headers.
public struct CORSOptions: Sendable {
    /// Allowed origins (`https://app.example.com`), or `["*"]` for any. Empty: none.
    public var allowedOrigins: [String]
    /// Methods a preflight allows (`Access-Control-Allow-Methods`).
    public var allowedMethods: [String] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
    /// Request headers a preflight allows (`Access-Control-Allow-Headers`).
    public var allowedHeaders: [String] = ["Content-Type", "Authorization"]
    /// Response headers the page may read besides the CORS-safelisted ones.
    public var exposedHeaders: [String] = []
    /// Cookies and credentials. Never together with `*`: that would let every site make
    /// credentialed calls (the Fetch standard forbids the pair), so ``Middlewares/cors(_:)``
    /// refuses it; list the origins instead.
    public var allowCredentials = false
    /// How long a browser may cache a preflight answer, in seconds.
    public var maxAge: Int? = 600

    /// Options allowing `allowedOrigins`, with the default methods, headers and cache time.
    public init(allowedOrigins: [String]) {
        self.allowedOrigins = allowedOrigins
    }
}

extension Middlewares {
    /// Answers preflights (`OPTIONS` with `Access-Control-Request-Method`) with 204 and the
    /// allowed methods and headers, and marks other responses to allowed origins. A request
    /// from an origin not allowed goes on unmarked (the browser then blocks the page's read).
    ///
    /// - Precondition: not `"*"` together with `allowCredentials` (a configuration error,
    ///   refused when the middleware is made, before any request).
    public static func cors(_ options: CORSOptions) -> Middleware {
        let anyOrigin = options.allowedOrigins.contains("*")
        precondition(
            !(anyOrigin && options.allowCredentials),
            "CORSOptions: allowedOrigins [\"*\"] with allowCredentials would let any site make credentialed calls; list the origins")
        let allowed = Set(options.allowedOrigins.map { $0.lowercased() })
        return { next in
            { ctx in
                // The answer depends on Origin whether or not this request has one: caches must know.
                ctx.writer.addHeader("vary", "Origin")
                guard let origin = ctx.request.header("origin") else { return try await next(ctx) }
                guard anyOrigin || allowed.contains(origin.lowercased()) else { return try await next(ctx) }
                ctx.writer.setHeader("access-control-allow-origin", anyOrigin ? "*" : origin)
                if options.allowCredentials { ctx.writer.setHeader("access-control-allow-credentials", "true") }
                let isPreflight = ctx.request.method == .OPTIONS && ctx.request.header("access-control-request-method") != nil
                guard isPreflight else {
                    if !options.exposedHeaders.isEmpty {
                        ctx.writer.setHeader("access-control-expose-headers", options.exposedHeaders.joined(separator: ", "))
                    }
                    return try await next(ctx)
                }
                ctx.writer.setHeader("access-control-allow-methods", options.allowedMethods.joined(separator: ", "))
                ctx.writer.setHeader("access-control-allow-headers", options.allowedHeaders.joined(separator: ", "))
                if let maxAge = options.maxAge { ctx.writer.setHeader("access-control-max-age", String(maxAge)) }
                ctx.writer.status = .noContent
            }
        }
    }
}
