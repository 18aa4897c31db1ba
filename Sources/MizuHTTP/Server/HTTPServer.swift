import CoreMetrics
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
#if TLS
import NIOSSL
#endif

/// Runs any ``HTTPHandler`` over HTTP/1.1 on SwiftNIO: the "standard library" server.
public final class HTTPServer: Sendable {
    private struct State {
        /// The listening sockets (one per event loop on Linux, see ``Listeners``).
        var listeners: [any Channel] = []
        var connections: [ObjectIdentifier: any Channel] = [:]
        /// Open connections per client (an entry goes with the client's last connection).
        var perClient: [ClientAddressKey: Int] = [:]
        var shuttingDown = false
    }

    /// What a connection past ``HTTPServerConfiguration/maxConnectionsPerClient`` is told
    /// before it closes (plain HTTP only; a TLS one is closed without a word).
    private static let tooManyConnections: StaticString =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 21\r\nRetry-After: 10\r\nConnection: close\r\n\r\ntoo many connections\n"

    private let handler: any HTTPHandler
    /// The limits and timeouts in force.
    public let configuration: HTTPServerConfiguration
    private let group: any EventLoopGroup
    private let logger: Logger
    private let state = NIOLockedValueBox(State())
    private let metrics: HTTPMetrics
    #if TLS
    /// Made once from ``HTTPServerConfiguration/tls`` when the server starts.
    private let tlsContext = NIOLockedValueBox<NIOSSLContext?>(nil)
    #endif

    /// Creates a server for `handler`; nothing listens until ``start(host:port:)``.
    public init(
        handler: any HTTPHandler,
        configuration: HTTPServerConfiguration = HTTPServerConfiguration(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "mizu.http")
    ) {
        self.handler = handler
        self.configuration = configuration
        self.group = eventLoopGroup
        self.logger = logger
        self.metrics = HTTPMetrics(factory: configuration.metricsFactory ?? MetricsSystem.factory)
    }

    /// Binds and starts accepting. Port 0 picks a free port; the bound address is returned.
    @discardableResult
    public func start(host: String, port: Int) async throws -> SocketAddress {
        try self.prepareTLS()
        let loops = Listeners.loopsListeningAlone(in: self.group, enabled: self.configuration.listenOnEveryEventLoop)
        if loops.isEmpty {
            return try self.listening(on: [try await self.bootstrap(group: self.group).bind(host: host, port: port).get()])
        }
        return try self.listening(on: try await Listeners.bindEach(host: host, port: port, loops: loops) { self.bootstrap(group: $0) })
    }

    /// Binds a Unix domain socket at `path` (a stale socket file there is replaced) and starts
    /// accepting: for a proxy on the same machine. The bound address is returned.
    @discardableResult
    public func start(unixSocketPath path: String) async throws -> SocketAddress {
        try self.prepareTLS()
        let bootstrap = self.bootstrap(group: self.group, tcp: false)
        return try self.listening(on: [try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()])
    }

    private func prepareTLS() throws {
        #if TLS
        if let tls = self.configuration.tls {
            let context = try NIOSSLContext(configuration: tls)
            self.tlsContext.withLockedValue { $0 = context }
        }
        #endif
    }

    /// Listening sockets accept onto `group`: a loop accepts onto itself (no hand-over).
    private func bootstrap(group: any EventLoopGroup, tcp: Bool = true) -> ServerBootstrap {
        let bootstrap = ServerBootstrap(group: group, childGroup: group)
            .serverChannelOption(.backlog, value: self.configuration.backlog)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try Self.setOptions(of: channel, tcp: tcp)
                    try self.initializeConnection(channel)
                }
            }
        return tcp ? Self.setInheritedOptions(bootstrap.serverChannelOption(.socketOption(.so_reuseaddr), value: 1)) : bootstrap
    }

    private func listening(on listeners: [any Channel]) throws -> SocketAddress {
        self.state.withLockedValue { $0.listeners = listeners }
        guard let address = listeners.first?.localAddress else { throw ChannelError.unknownLocalAddress }
        return address
    }

    /// A new connection's options, set at once on its loop: as the bootstrap's child channel
    /// options they would go through a chain of futures, about ten allocations per option per
    /// connection.
    private static func setOptions(of channel: any Channel, tcp: Bool) throws {
        guard let options = channel.syncOptions else { throw ChannelError.operationUnsupported }
        try options.setOption(.allowRemoteHalfClosure, value: true)
        // Every connection keeps its receive buffer for reuse, idle or not; start it small (a
        // short request head fits; a longer one grows it on its second read) and let busy
        // connections grow it.
        try options.setOption(.recvAllocator, value: CompactRecvAllocator(initial: 256))
        if tcp && !Self.acceptedSocketsInheritOptions {
            try options.setOption(.socketOption(.tcp_nodelay), value: 1)
            try options.setOption(.socketOption(.so_keepalive), value: 1)
        }
    }

    /// Linux gives an accepted socket the listening socket's `TCP_NODELAY` and `SO_KEEPALIVE`:
    /// set once there, not with two system calls per connection.
    #if os(Linux)
    private static let acceptedSocketsInheritOptions = true
    #else
    private static let acceptedSocketsInheritOptions = false
    #endif

    /// Options every connection has: no delay for small writes, and the kernel probes idle
    /// peers, so a vanished one is eventually noticed even by a connection that never writes.
    private static func setInheritedOptions(_ bootstrap: ServerBootstrap) -> ServerBootstrap {
        guard Self.acceptedSocketsInheritOptions else { return bootstrap }
        return bootstrap
            .serverChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .serverChannelOption(.socketOption(.so_keepalive), value: 1)
    }

    /// Whether connections are TLS (``HTTPServerConfiguration/tls`` is set).
    public var isSecure: Bool { self.configuration.isSecure }

    /// The bound address, once started.
    public var localAddress: SocketAddress? {
        self.state.withLockedValue { $0.listeners.first?.localAddress }
    }

    /// The listening sockets' loops and addresses (for tests).
    var listening: [(eventLoop: any EventLoop, address: SocketAddress?)] {
        self.state.withLockedValue { $0.listeners.map { ($0.eventLoop, $0.localAddress) } }
    }

    /// The open connections' channels (for tests).
    var connectionChannels: [any Channel] {
        self.state.withLockedValue { Array($0.connections.values) }
    }

    /// The number of open connections (upgraded ones included).
    public var connectionCount: Int {
        self.state.withLockedValue { $0.connections.count }
    }

    private func initializeConnection(_ channel: any Channel) throws {
        enum Admission { case accepted, shuttingDown, overClientLimit }
        let client = ClientAddressKey(channel.remoteAddress)
        let limit = self.configuration.maxConnectionsPerClient
        let admission = self.state.withLockedValue { state -> Admission in
            guard !state.shuttingDown else { return .shuttingDown }
            guard state.perClient[client, default: 0] < limit else { return .overClientLimit }
            state.perClient[client, default: 0] += 1
            state.connections[ObjectIdentifier(channel)] = channel
            return .accepted
        }
        switch admission {
        case .accepted:
            break
        case .shuttingDown:
            channel.close(promise: nil)
            return
        case .overClientLimit:
            // One client's connections cost everyone's memory and file descriptors.
            if self.isSecure {
                channel.close(promise: nil)
            } else {
                try channel.pipeline.syncOperations.addHandler(RefusingHandler(answer: Self.tooManyConnections))
            }
            return
        }
        self.metrics.connections.increment()
        // The identifier, not the channel: the closure lives as long as the connection, and
        // a channel existential is twice its size.
        let id = ObjectIdentifier(channel)
        channel.closeFuture.whenComplete { [self] _ in
            self.state.withLockedValue { state in
                state.connections.removeValue(forKey: id)
                let remaining = state.perClient[client, default: 1] - 1
                state.perClient[client] = remaining > 0 ? remaining : nil
            }
            self.metrics.connections.decrement()
        }
        #if TLS
        let tls = self.tlsContext.withLockedValue { $0 }
        #else
        let tls: Never? = nil
        #endif
        // On TLS the observer sees the bytes as they arrive, ciphertext included: a handshake
        // that never completes meets the request head deadline, as a slow head does.
        let observer = tls == nil ? nil : ByteActivityObserver()
        let connection = HTTPConnectionHandler(
            handler: self.handler,
            configuration: self.configuration,
            logger: self.logger,
            metrics: self.metrics,
            secure: self.isSecure,
            observer: observer
        )
        let sync = channel.pipeline.syncOperations
        #if TLS
        if let tls, let observer {
            try sync.addHandler(observer)
            try sync.addHandler(NIOSSLServerHandler(context: tls))
        }
        #endif
        try sync.addHandler(connection)
    }

    /// Graceful shutdown: stops accepting, lets in-flight requests (and upgraded
    /// connections, which receive ``ServerQuiesceEvent``) finish within `gracePeriod`
    /// (the configuration's by default), then closes whatever is left.
    public func shutdown(gracePeriod: TimeAmount? = nil) async {
        let (listeners, connections) = self.state.withLockedValue { state in
            state.shuttingDown = true
            return (state.listeners, Array(state.connections.values))
        }
        for listener in listeners { try? await listener.close() }
        for channel in connections {
            channel.pipeline.fireUserInboundEventTriggered(ServerQuiesceEvent())
        }
        let deadline = NIODeadline.now() + (gracePeriod ?? self.configuration.shutdownGracePeriod)
        while self.connectionCount > 0, NIODeadline.now() < deadline {
            try? await Task.sleep(nanoseconds: 10_000_000)
        }
        let leftovers = self.state.withLockedValue { Array($0.connections.values) }
        // All closed at once, then awaited: a TLS close waits for the peer's close_notify (up to
        // swift-nio-ssl's 5 s), so one after another, N silent peers took N times that.
        for channel in leftovers { channel.close(promise: nil) }
        for channel in leftovers {
            // The close future, not the close call: the table drops a connection in a
            // callback on it (registered first, so run first), and `close()` can return
            // before that has run. Returning after it means no connection is left counted.
            try? await channel.closeFuture.get()
        }
    }

    /// Waits until the listening sockets are closed (by ``shutdown(gracePeriod:)``).
    public func waitUntilClosed() async throws {
        let listeners = self.state.withLockedValue { $0.listeners }
        for listener in listeners { try await listener.closeFuture.get() }
    }
}

/// Answers a connection the server will not serve (the answer is written once the channel is
/// active; nothing it sends is read) and closes it.
private final class RefusingHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    private let answer: StaticString

    init(answer: StaticString) { self.answer = answer }

    func channelActive(context: ChannelHandlerContext) {
        let channel = context.channel
        context.writeAndFlush(NIOAny(context.channel.allocator.buffer(staticString: self.answer))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}
