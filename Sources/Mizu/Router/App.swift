#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// A Mizu application: a router that is itself an `HTTPHandler`, with an error handler,
/// `listen`, and graceful shutdown.
public final class App: Routing, HTTPHandler {
    /// Turns an error thrown by a handler into a response.
    public typealias ErrorHandler = @Sendable (Ctx, any Error) async -> Void

    private struct State {
        var middleware: [Middleware] = []
        var chain: Handler?
        var errorHandler: ErrorHandler
        var shutdownHooks: [@Sendable () async -> Void] = []
        var server: HTTPServer?
        var shuttingDown = false
    }

    private let table = RouteTable()
    private let root: Router
    private let state: NIOLockedValueBox<State>
    /// The server limits used by ``listen(_:)`` and ``start(host:port:)``.
    public let configuration: HTTPServerConfiguration
    /// The app's logger.
    public let logger: Logger

    /// A new app with no routes. As Go mizu's `mizu.New()`, it logs one line per request
    /// (``Middlewares/logger(_:)`` outermost, to `logger`); `logsRequests: false` turns that
    /// off, as does raising `logger`'s level above `.info`.
    public init(
        configuration: HTTPServerConfiguration = HTTPServerConfiguration(),
        logger: Logger = Logger(label: "mizu"),
        logsRequests: Bool = true
    ) {
        self.configuration = configuration
        self.logger = logger
        self.root = Router(table: self.table, prefix: "", middleware: [])
        var state = State(errorHandler: App.defaultErrorHandler(logger: logger))
        if logsRequests { state.middleware.append(Middlewares.logger(logger)) }
        self.state = NIOLockedValueBox(state)
    }

    // MARK: Routing

    public func handle(_ method: HTTPMethod, _ pattern: String, _ handler: @escaping Handler) {
        self.root.handle(method, pattern, handler)
    }

    /// Adds middleware around every request, not-found and method-not-allowed answers included.
    public func use(_ middleware: Middleware...) {
        self.state.withLockedValue {
            $0.middleware.append(contentsOf: middleware)
            $0.chain = nil
        }
    }

    public func with(_ middleware: Middleware...) -> Router {
        self.root.prefix("").withMiddleware(middleware)
    }

    public func prefix(_ prefix: String) -> Router {
        self.root.prefix(prefix)
    }

    /// Replaces the error handler (by default: an ``HTTPError`` answers its status and
    /// message; anything else is logged at error level and answered with a bare 500).
    public func setErrorHandler(_ handler: @escaping ErrorHandler) {
        self.state.withLockedValue { $0.errorHandler = handler }
    }

    /// Runs `hook` when the app shuts down, before connections are drained (a live server
    /// closes its sessions here).
    public func onShutdown(_ hook: @escaping @Sendable () async -> Void) {
        self.state.withLockedValue { $0.shutdownHooks.append(hook) }
    }

    // MARK: Serving

    public func serveHTTP(_ writer: ResponseWriter, _ request: Request) async throws {
        let (chain, errorHandler) = self.state.withLockedValue { state -> (Handler, ErrorHandler) in
            if let chain = state.chain { return (chain, state.errorHandler) }
            let dispatch: Handler = { [table] ctx in try await App.dispatch(ctx, table: table) }
            let chain = state.middleware.reversed().reduce(dispatch) { next, middleware in middleware(next) }
            state.chain = chain
            return (chain, state.errorHandler)
        }
        let ctx = Ctx(request: request, writer: writer)
        defer { ctx.values.removeTemporaryFiles() }
        do {
            try await chain(ctx)
        } catch {
            guard !writer.headSent else { throw error }
            await errorHandler(ctx, error)
        }
    }

    private static func dispatch(_ ctx: Ctx, table: RouteTable) async throws {
        let request = ctx.request
        guard let match = table.match(rawPath: request.rawPath) else {
            if let location = Self.slashRedirect(for: request, table: table) {
                // The other form of the path (with or without a trailing slash) exists.
                ctx.writer.status = request.method == .GET || request.method == .HEAD ? .movedPermanently : .permanentRedirect
                ctx.writer.setHeader("location", location)
                return
            }
            throw HTTPError(.notFound, "not found")
        }
        let method = request.method.rawValue
        guard let handler = match.routes.handlers[method] ?? (method == "HEAD" ? match.routes.handlers["GET"] : nil) else {
            var allowed = Set(match.routes.handlers.keys)
            if allowed.contains("GET") { allowed.insert("HEAD") }
            ctx.writer.setHeader("allow", allowed.sorted().joined(separator: ", "))
            throw HTTPError(.methodNotAllowed, "method not allowed")
        }
        var routed = request
        routed.pathParameters = match.parameters
        try await handler(Ctx(request: routed, writer: ctx.writer, values: ctx.values))
    }

    private static func slashRedirect(for request: Request, table: RouteTable) -> String? {
        let path = request.rawPath
        guard path != "/" else { return nil }
        let other = path.hasSuffix("/") ? String(path.dropLast()) : path + "/"
        guard let match = table.match(rawPath: other), !match.routes.isEmpty else { return nil }
        // "//host" would leave the site (and browsers read "/\\host" as "//host"); never
        // redirect there.
        guard !other.hasPrefix("//"), !other.hasPrefix("/\\") else { return nil }
        return request.rawQuery.isEmpty ? other : other + "?" + request.rawQuery
    }

    /// The default error handler: the error's own status for an ``HTTPError``; for anything
    /// else a 500 whose body says nothing of the error (it can carry internals), and the
    /// error in the log instead, as Go mizu's router does.
    static func defaultErrorHandler(logger: Logger) -> ErrorHandler {
        { ctx, error in
            if case ResponseWriter.Error.connectionClosed = error {
                // The client left; no one reads the answer and nothing failed on our side.
                logger.debug("client closed the connection", metadata: ["path": "\(LogSafe(ctx.request.path))"])
            } else if !(error is HTTPError) {
                logger.error(
                    "handler failed",
                    metadata: [
                        "method": "\(ctx.request.method.rawValue)", "path": "\(LogSafe(ctx.request.path))",
                        "error": "\(LogSafe(String(describing: error)))",
                    ]
                )
            }
            await App.answer(ctx, error)
        }
    }

    private static func answer(_ ctx: Ctx, _ error: any Error) async {
        let httpError = error as? HTTPError ?? HTTPError(.internalServerError, "internal server error")
        ctx.writer.status = httpError.status
        ctx.writer.setHeader("content-type", "text/plain; charset=utf-8")
        try? await ctx.writer.write(httpError.message + "\n")
    }

    // MARK: Listening

    /// Starts serving on `host:port` (port 0 picks one) and returns the bound address.
    @discardableResult
    public func start(host: String = "0.0.0.0", port: Int) async throws -> SocketAddress {
        try await self.start(host: host, port: port, configuration: self.configuration)
    }

    func start(host: String, port: Int, configuration: HTTPServerConfiguration) async throws -> SocketAddress {
        let server = HTTPServer(handler: self, configuration: configuration, logger: self.logger)
        let address = try await server.start(host: host, port: port)
        self.state.withLockedValue { $0.server = server }
        return address
    }

    /// Starts serving on a Unix domain socket at `path` (for a proxy on the same machine).
    @discardableResult
    public func start(unixSocketPath path: String) async throws -> SocketAddress {
        let server = HTTPServer(handler: self, configuration: self.configuration, logger: self.logger)
        let address = try await server.start(unixSocketPath: path)
        self.state.withLockedValue { $0.server = server }
        return address
    }

    /// Serves on `address` (":8080", "127.0.0.1:0") until SIGINT or SIGTERM, then shuts down
    /// gracefully. Logs one line with the address when ready.
    public func listen(_ address: String) async throws {
        try await self.listen(address, configuration: self.configuration)
    }

    /// Serves on the port in the `PORT` environment variable (as hosting platforms set it), or
    /// on 8080 without one; all interfaces. A `PORT` that is not a port number is an error.
    public func listen() async throws {
        try await self.listen(environment: ProcessInfo.processInfo.environment)
    }

    /// ``listen()`` with `environment` for the process's (tests: changing the process's own
    /// races with any thread that reads it, such as one starting a process).
    func listen(environment: [String: String]) async throws {
        try await self.listen(try Self.defaultAddress(environment))
    }

    /// `":$PORT"`, or `":8080"` when `PORT` is unset or empty.
    static func defaultAddress(_ environment: [String: String]) throws -> String {
        guard let value = environment["PORT"]?.trimmingHTTPWhitespace(), !value.isEmpty else { return ":8080" }
        guard let port = Int(value), (0...65535).contains(port) else {
            throw HTTPError(.internalServerError, "invalid PORT \"\(LogSafe(value))\": expected a port number (0-65535)")
        }
        return ":\(port)"
    }

    func listen(_ address: String, configuration: HTTPServerConfiguration) async throws {
        let (host, port) = try Self.parse(address: address)
        let bound = try await self.start(host: host, port: port, configuration: configuration)
        let scheme = self.state.withLockedValue { $0.server?.isSecure ?? false } ? "https" : "http"
        self.logger.info("listening on \(scheme)://\(host):\(bound.port ?? port)")
        let signals = SignalWatcher(signals: [SIGINT, SIGTERM])
        let server = self.state.withLockedValue { $0.server }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                let signal = await signals.next()
                guard signal != 0 else { return }  // the server closed by itself
                self.logger.info("received signal \(signal), shutting down (the same again closes every connection at once)")
                await self.shutdown(forcedBy: signals)
            }
            group.addTask { try? await server?.waitUntilClosed() }
            await group.next()
            group.cancelAll()
            signals.stop()
        }
    }

    /// ``shutdown()``, cut short by a second signal: every connection is closed at once and the
    /// hooks still running are left behind (a hook waiting on a peer that never answers must
    /// not keep an operator from stopping the process, short of SIGKILL).
    private func shutdown(forcedBy signals: SignalWatcher) async {
        let (ended, ending) = AsyncStream.makeStream(of: Int32?.self)
        // Unstructured: a task group would wait for a stuck hook at its end.
        Task {
            await self.shutdown()
            ending.yield(nil)
        }
        let again = Task {
            let signal = await signals.next()
            if signal != 0 { ending.yield(signal) }
        }
        defer { again.cancel() }
        for await event in ended {
            if let signal = event {
                self.logger.warning("received signal \(signal) again: closing every connection now")
                await self.state.withLockedValue { $0.server }?.shutdown(gracePeriod: .zero)
            }
            break
        }
    }

    /// Graceful shutdown: runs the shutdown hooks, stops accepting, drains connections.
    public func shutdown() async {
        let (hooks, server) = self.state.withLockedValue { state in
            state.shuttingDown = true
            let hooks = state.shutdownHooks
            state.shutdownHooks = []
            return (hooks, state.server)
        }
        for hook in hooks { await hook() }
        await server?.shutdown()
    }

    /// Whether ``shutdown()`` has begun.
    public var isShuttingDown: Bool { self.state.withLockedValue { $0.shuttingDown } }

    /// The bound address while serving.
    public var localAddress: SocketAddress? {
        self.state.withLockedValue { $0.server?.localAddress }
    }

    static func parse(address: String) throws -> (String, Int) {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
            (0...65535).contains(port)
        else {
            throw HTTPError(.internalServerError, "invalid listen address \"\(address)\", expected host:port")
        }
        var host = String(address[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host.isEmpty ? "0.0.0.0" : host, port)
    }
}

extension Router {
    func withMiddleware(_ middleware: [Middleware]) -> Router {
        var router = self
        for item in middleware { router = router.with(item) }
        return router
    }
}
