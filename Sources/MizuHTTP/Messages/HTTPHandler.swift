/// The plain handler layer: one method that serves a request and answers through a writer.
///
/// This is the `net/http` `Handler` analogue. ``HTTPServer`` runs any `HTTPHandler`, with or
/// without a router; `App` (Mizu's) is one.
public protocol HTTPHandler: Sendable {
    /// Serves one request. A thrown error becomes a 500 when nothing was written yet,
    /// otherwise the connection is closed (the response cannot be completed honestly).
    func serveHTTP(_ writer: ResponseWriter, _ request: Request) async throws
}

/// An ``HTTPHandler`` made from a closure.
public struct HTTPHandlerFunc: HTTPHandler {
    private let body: @Sendable (ResponseWriter, Request) async throws -> Void

    /// Wraps `body` as a handler.
    public init(_ body: @escaping @Sendable (ResponseWriter, Request) async throws -> Void) {
        self.body = body
    }

    public func serveHTTP(_ writer: ResponseWriter, _ request: Request) async throws {
        try await self.body(writer, request)
    }
}
