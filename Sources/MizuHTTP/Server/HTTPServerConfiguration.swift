import CoreMetrics
import NIOCore
#if TLS
import NIOSSL
#endif

/// Limits and timeouts of an ``HTTPServer``. Every default suits a public server.
public struct HTTPServerConfiguration: Sendable {
    /// Largest request body accepted; larger gets 413. Default 8 MiB.
    public var maxBodySize: Int = 8 * 1024 * 1024
    /// Largest request head (all header names and values); larger gets 431. Default 16 KiB.
    public var maxHeadSize: Int = 16 * 1024
    /// Time a client has to send a complete request head once it has started one; late
    /// gets 408 and the connection closes (slowloris). Default 10 s.
    public var requestHeadTimeout: TimeAmount = .seconds(10)
    /// Time a client has to send a complete request body once its head is in; late gets 408
    /// and the connection closes. Default 30 s.
    public var requestBodyTimeout: TimeAmount = .seconds(30)
    /// How long a peer may leave our output unread (the socket accepting no bytes at all)
    /// before the connection closes. Reading stops meanwhile. Default 30 s.
    public var writeStallTimeout: TimeAmount = .seconds(30)
    /// An idle keep-alive connection (no request started) is closed after this. Default 60 s.
    public var idleTimeout: TimeAmount = .seconds(60)
    /// After an error answer (400, 408, 413, 431...) the server stops sending but reads and drops
    /// what the client still sends, up to this long (and up to `maxBodySize` bytes), before it
    /// closes: closing with unread input resets the connection, and a client still uploading would
    /// lose the answer (RFC 9112 section 9.6). Plain connections only. Default 5 s.
    public var lingeringCloseTimeout: TimeAmount = .seconds(5)
    /// How long graceful shutdown lets in-flight requests finish before closing. Default 10 s.
    public var shutdownGracePeriod: TimeAmount = .seconds(10)
    /// Connections one client (an IPv4 address or an IPv6 /64) may hold open at once,
    /// WebSocket ones included; past it a new connection is answered 503 with `Retry-After`
    /// and closed. Default 10,000. Behind a reverse proxy every client has the proxy's
    /// address: raise it, or limit at the proxy.
    public var maxConnectionsPerClient: Int = 10_000
    /// Listen backlog (of each listening socket).
    public var backlog: Int32 = 1024
    /// On Linux, each event loop listens on the port with its own socket (`SO_REUSEPORT`; the
    /// kernel spreads new connections over them) and sets up what it accepts on its own
    /// thread: no hand-over between threads per connection. A port that another process
    /// already listens on still fails to bind. Off, or elsewhere, or on a Unix domain socket:
    /// one listening socket hands connections to the loops in turn. Default on.
    public var listenOnEveryEventLoop = true
    /// Where the server's metrics go (`mizu_http_*`, see the README); nil (the default)
    /// uses whatever `MetricsSystem.bootstrap` installed, which is nothing until the
    /// application bootstraps a backend.
    public var metricsFactory: (any MetricsFactory)?
    #if TLS
    /// Serve https:// (and wss://) with this swift-nio-ssl configuration (Go's `ListenTLS`);
    /// nil (the default) serves plain http://. Only with the package trait `TLS`.
    public var tls: TLSConfiguration?
    #endif

    /// Whether the server serves TLS.
    public var isSecure: Bool {
        #if TLS
        return self.tls != nil
        #else
        return false
        #endif
    }

    /// The defaults.
    public init() {}
}
