import MizuWebSocket
import NIOCore
import NIOPosix
#if TLS
import NIOSSL
#endif

extension LiveClient {
    /// A client's settings. Every property has a default; every queue is bounded.
    public struct Configuration: Sendable {
        /// Asked before every connection attempt for the credentials to present (a token that
        /// may have expired meanwhile); nil sends none. Errors count as a failed attempt.
        public var token: (@Sendable () async throws -> String?)?
        /// How the token travels.
        public var tokenPlacement: TokenPlacement = .authorizationBearer
        /// More request headers (each name a token, no CR, LF or NUL in a value).
        public var headers: [(name: String, value: String)] = []
        /// When to try again (PROTOCOL.md's rules).
        public var reconnect = ReconnectPolicy()
        /// How long a request may wait for its answer once sent, and (a publish, history or
        /// presence call made while disconnected) for a connection to send it on: past either
        /// it fails with ``LiveClientError/timeout``. Default 10 s.
        public var requestTimeout: Duration = .seconds(10)
        /// A connection that carries no frame for this long is dead and replaced (the server
        /// pings every 25 s by default). Default 35 s.
        public var deadConnectionTimeout: Duration = .seconds(35)
        /// The longest a connect and handshake may take, and apart from them the longest the
        /// ``token`` provider may take (past it the attempt failed and is retried). Default 10 s.
        public var handshakeTimeout: Duration = .seconds(10)
        /// Requests (publishes, reads, first subscribes) waiting for a connection: past either
        /// bound a request fails at once with ``LiveClientError/queueFull``. Defaults 1,000 and 1 MiB.
        public var maxQueuedRequests = 1_000
        /// The bytes those requests may hold together (see ``maxQueuedRequests``).
        public var maxQueuedBytes = 1 << 20
        /// Events each subscription holds for a consumer that reads slowly (see
        /// ``LiveSubscription/events``). Default 1,000.
        public var subscriptionBuffer = 1_000
        /// Messages of topics no subscription holds (e.g. `error` answers of an application)
        /// waiting in ``LiveClient/otherMessages``; the oldest are dropped past it. Default 256.
        public var otherMessagesBuffer = 256
        /// The WebSocket layer's bounds: largest message (16 MiB by default), permessage-deflate
        /// (offered by default), send queue, close timeout.
        public var webSocket: WebSocketConfiguration = {
            var configuration = WebSocketConfiguration()
            // A server that stops reading our frames is replaced, not buffered for without end.
            configuration.maxQueuedMessages = 4_096
            return configuration
        }()
        #if TLS
        /// What `wss://` connections trust: the system's roots by default, the server's name
        /// checked. Only with the `TLS` trait (without it a `wss://` URL stops the client as unusable).
        public var tls: TLSConfiguration = .makeClientConfiguration()
        #endif
        /// Where the connection's I/O runs.
        public var eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton

        /// The defaults, each given with its property.
        public init() {}
    }

    /// How a token is presented in the handshake.
    public enum TokenPlacement: Sendable, Equatable {
        /// `Authorization: Bearer TOKEN`.
        case authorizationBearer
        /// A query parameter (percent-encoded): what browsers do, since they cannot set headers.
        case query(name: String)
    }
}

extension Duration {
    /// As NIO's `TimeAmount`, saturating instead of trapping at Int64's nanoseconds.
    var timeAmount: TimeAmount {
        let (seconds, attoseconds) = self.components
        guard seconds < 9_000_000_000 else { return .nanoseconds(.max) }
        guard seconds >= 0 else { return .zero }
        return .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
