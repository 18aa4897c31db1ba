import NIOCore
import NIOPosix
#if TLS
import NIOSSL
#endif

/// Opens WebSocket connections as a client (RFC 6455 section 4.1) over SwiftNIO. The connection
/// it returns is the same ``WebSocketConnection`` a server's sessions have, driven by the same
/// engine in the client role: its frames masked with a fresh random key each, the server's
/// refused if masked, permessage-deflate offered and inflated with the server's parameters, and
/// every bound of ``WebSocketConfiguration`` (message size, send queue, write stall, heartbeat
/// pings, close timeout) applied to the server as a server applies them to its clients.
public struct WebSocketClient: Sendable {
    /// The connection's settings. `compression` is what is offered (nil offers none);
    /// `subprotocols` is ignored here (pass them to ``connect(to:subprotocols:headers:events:on:)``).
    public var configuration: WebSocketConfiguration
    /// The longest a connect and handshake may take. Default 10 s.
    public var handshakeTimeout: TimeAmount = .seconds(10)
    #if TLS
    /// What `wss://` connections trust and present: by default the system's roots, and the
    /// server's name (or IP address) checked against its certificate. Only with the `TLS` trait.
    public var tls: TLSConfiguration = .makeClientConfiguration()
    #endif

    /// A client whose connections have `configuration`'s bounds (the client role: its frames
    /// masked, the server's unmasked).
    public init(configuration: WebSocketConfiguration = WebSocketConfiguration()) {
        self.configuration = configuration
    }

    /// Connects to `url` (`ws://host[:port]/path?query`), completes the opening handshake and
    /// returns the open connection; `events` receive its messages and its close, as a server's do.
    /// `subprotocols` are offered in order; the one the server chose is the connection's
    /// `subprotocol`. `headers` are added to the request (e.g. `Authorization`).
    public func connect(
        to url: String, subprotocols: [String] = [], headers: [(String, String)] = [],
        events: WebSocketEvents = WebSocketEvents(), on group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws(WebSocketClientError) -> WebSocketConnection {
        let target = try WebSocketClientHandshake.Target(url: url)
        try WebSocketClientHandshake.checkHeaders(headers)
        #if TLS
        let tls: NIOSSLContext?
        do {
            tls = target.secure ? try NIOSSLContext(configuration: self.tls) : nil
        } catch {
            throw .connectFailed("TLS configuration: \(error)")
        }
        #else
        // wss:// needs TLS, which a build without the trait does not link.
        guard !target.secure else { throw .invalidURL(url + " (wss:// needs a build with the TLS trait)") }
        #endif
        let handshake = WebSocketClientHandshake(
            target: target, subprotocols: subprotocols, compression: self.configuration.compression, extraHeaders: headers)
        let settings = WebSocketSettings(self.configuration, role: .client)
        let timeout = self.handshakeTimeout
        let eventLoop = group.next()
        let promise = eventLoop.makePromise(of: WebSocketConnection.self)
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    #if TLS
                    if let tls {
                        // SNI and the name check need a name: an IP address is checked as such.
                        let name = (try? SocketAddress(ipAddress: target.host, port: 0)) == nil ? target.host : nil
                        try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: name))
                    }
                    #endif
                    try channel.pipeline.syncOperations.addHandler(ClientHandshakeHandler(
                        handshake: handshake, settings: settings, events: events, timeout: timeout, promise: promise))
                }
            }
        do {
            _ = try await bootstrap.connect(host: target.host, port: target.port).get()
        } catch {
            // The handshake handler may have failed the promise as the channel went: the connect is the cause.
            promise.fail(WebSocketClientError.connectFailed("\(error)"))
            throw .connectFailed("\(error)")
        }
        do {
            return try await promise.futureResult.get()
        } catch let error as WebSocketClientError {
            throw error
        } catch {
            throw .connectFailed("\(error)")
        }
    }
}
