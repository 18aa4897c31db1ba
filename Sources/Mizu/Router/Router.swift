import NIOConcurrencyHelpers
import NIOHTTP1

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
