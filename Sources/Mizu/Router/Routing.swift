import NIOConcurrencyHelpers
import NIOHTTP1

/// Registers routes. ``App`` and the routers made by ``prefix(_:)``, ``with(_:)`` and
/// ``group(_:_:)`` all conform.
public protocol Routing: Sendable {
    /// Registers `handler` for `method` at `pattern` (`/users/{id}`, `/files/{path...}`).
    func handle(_ method: HTTPMethod, _ pattern: String, _ handler: @escaping Handler)
    /// Adds middleware to the routes registered after this call (on an ``App``: to every request).
    func use(_ middleware: Middleware...)
    /// A router whose routes also run `middleware`.
    func with(_ middleware: Middleware...) -> Router
    /// A router whose patterns start with `prefix`.
    func prefix(_ prefix: String) -> Router
}

extension Routing {
    /// Registers a GET route (it also answers HEAD, without the body).
    public func get(_ pattern: String, _ handler: @escaping Handler) { self.handle(.GET, pattern, handler) }
    /// Registers a HEAD route.
    public func head(_ pattern: String, _ handler: @escaping Handler) { self.handle(.HEAD, pattern, handler) }
    /// Registers a POST route.
    public func post(_ pattern: String, _ handler: @escaping Handler) { self.handle(.POST, pattern, handler) }
    /// Registers a PUT route.
    public func put(_ pattern: String, _ handler: @escaping Handler) { self.handle(.PUT, pattern, handler) }
    /// Registers a PATCH route.
    public func patch(_ pattern: String, _ handler: @escaping Handler) { self.handle(.PATCH, pattern, handler) }
    /// Registers a DELETE route.
    public func delete(_ pattern: String, _ handler: @escaping Handler) { self.handle(.DELETE, pattern, handler) }
    /// Registers a CONNECT route.
    public func connect(_ pattern: String, _ handler: @escaping Handler) { self.handle(.CONNECT, pattern, handler) }
    /// Registers a TRACE route.
    public func trace(_ pattern: String, _ handler: @escaping Handler) { self.handle(.TRACE, pattern, handler) }
    /// Registers an OPTIONS route.
    public func options(_ pattern: String, _ handler: @escaping Handler) { self.handle(.OPTIONS, pattern, handler) }

    /// Registers routes under `prefix` in `body`; middleware used inside stays inside.
    public func group(_ prefix: String, _ body: (Router) -> Void) {
        body(self.prefix(prefix))
    }

    /// Mounts a plain handler for every method at `pattern` and below it.
    public func mount(_ pattern: String, _ handler: any HTTPHandler) {
        let base = pattern.hasSuffix("/") ? String(pattern.dropLast()) : pattern
        let serve: Handler = { ctx in try await handler.serveHTTP(ctx.writer, ctx.request) }
        for method in Router.mountMethods {
            self.handle(method, base.isEmpty ? "/" : base, serve)
            self.handle(method, base + "/{path...}", serve)
        }
    }
}
