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

/// A view of an ``App``'s routing table with a path prefix and its own middleware.
public final class Router: Routing {
    static let mountMethods: [HTTPMethod] = [.GET, .HEAD, .POST, .PUT, .PATCH, .DELETE, .OPTIONS]

    private let table: RouteTable
    private let pathPrefix: String
    private let inherited: [Middleware]
    private let own = NIOLockedValueBox<[Middleware]>([])

    init(table: RouteTable, prefix: String, middleware: [Middleware]) {
        self.table = table
        self.pathPrefix = prefix
        self.inherited = middleware
    }

    private var middleware: [Middleware] { self.inherited + self.own.withLockedValue { $0 } }

    public func handle(_ method: HTTPMethod, _ pattern: String, _ handler: @escaping Handler) {
        let wrapped = self.middleware.reversed().reduce(handler) { next, middleware in middleware(next) }
        self.table.add(method: method, pattern: Self.join(self.pathPrefix, pattern), handler: wrapped)
    }

    public func use(_ middleware: Middleware...) {
        self.own.withLockedValue { $0.append(contentsOf: middleware) }
    }

    public func with(_ middleware: Middleware...) -> Router {
        Router(table: self.table, prefix: self.pathPrefix, middleware: self.middleware + middleware)
    }

    public func prefix(_ prefix: String) -> Router {
        Router(table: self.table, prefix: Self.join(self.pathPrefix, prefix), middleware: self.middleware)
    }

    static func join(_ prefix: String, _ pattern: String) -> String {
        if prefix.isEmpty { return pattern }
        let base = prefix.hasSuffix("/") ? String(prefix.dropLast()) : prefix
        if pattern == "/" || pattern.isEmpty { return base.isEmpty ? "/" : base }
        return base + (pattern.hasPrefix("/") ? pattern : "/" + pattern)
    }
}

/// The shared, lock-protected routing table behind an app and its routers.
final class RouteTable: Sendable {
    private let tree = NIOLockedValueBox(RouteTree())

    func add(method: HTTPMethod, pattern: String, handler: @escaping Handler) {
        self.tree.withLockedValue { tree in
            do {
                try tree.add(method: method.rawValue, pattern: pattern, handler: handler)
            } catch {
                // A bad pattern is a programming error found at start-up, as in Go's ServeMux.
                preconditionFailure("\(error)")
            }
        }
    }

    func match(rawPath: String) -> RouteTree.Match? {
        self.tree.withLockedValue { $0.match(rawPath: rawPath) }
    }
}
