import CoreMetrics
import Foundation
import MizuHTTP
import NIOCore

extension Live {
    /// Configuration of a live server. Same options and defaults as the Go original, plus
    /// compression and heartbeats.
    public struct Options: Sendable {
        /// Called before the upgrade; the returned value becomes the session's value, a thrown
        /// error refuses the connection with 401. Nil accepts everyone.
        public var onAuth: (@Sendable (Context, Request) async throws -> (any Sendable)?)?
        /// Called for each client message with its topic and the raw JSON bytes of `data`,
        /// in the order sent; one session's calls never overlap.
        public var onMessage: (@Sendable (Context, Session, String, Data) async -> Void)?
        /// Called once when a session ends, after its subscriptions are gone: nil for a clean
        /// close, otherwise a ``Live/Error`` saying what happened.
        public var onClose: (@Sendable (Session, (any Swift.Error)?) async -> Void)?
        /// Called instead of the default answer (`{"topic":"error","data":"bad message"}`)
        /// when a client frame is not a valid envelope.
        public var onBadMessage: (@Sendable (Session, Data) async -> Void)?
        /// Per-session send buffer, in messages; when full the session is closed. Default 256
        /// (also for zero or less, as in Go).
        public var queueSize: Int = 256
        /// Per-session send buffer, in bytes the client has not taken yet (seen after each
        /// write): past it the session is closed as a slow consumer, as a full ``queueSize``
        /// closes it. The count alone let a client that reads nothing hold `queueSize` times the
        /// largest message (1 GiB at the defaults). A recovery replays at most half of it.
        /// Default 8 MiB, two of the largest messages ``readLimit`` lets in (also for zero or less).
        public var queueBytes: Int = 8 * 1024 * 1024
        /// ``queueBytes`` over all of one client's sessions together (a client is an IPv4
        /// address or an IPv6 /64): past it the client's sessions holding the most are closed
        /// as slow consumers, until the rest hold three quarters of it. Per session alone, a
        /// client that opens many sessions and reads none holds `queueBytes` in each. Sessions
        /// that read hold nothing here. Default 64 MiB (also for zero or less); behind a
        /// reverse proxy, raise it with the per-client limits.
        public var queueBytesPerClient: Int = Options.defaultQueueBytesPerClient
        /// The default of ``queueBytesPerClient``: 64 MiB.
        public static let defaultQueueBytesPerClient = 64 * 1024 * 1024
        /// A client message sent in fragments must end within this of its first fragment;
        /// past it the session is closed with 1008 (a client that begins messages and never
        /// ends them holds what they have so far). Default 60 s; nil waits forever.
        public var messageTimeout: TimeAmount? = .seconds(60)
        /// Largest client message in bytes (inflated size too); larger closes with 1009.
        /// Default 4 MiB (also for zero or less, as in Go).
        public var readLimit: Int = 4 * 1024 * 1024
        /// Allowed `Origin` values besides the server's own origin (`"*"` allows all). A request
        /// without an Origin header is not a browser's and is not refused for it.
        public var origins: [String] = []
        /// Custom origin check; takes precedence over ``origins``.
        public var checkOrigin: (@Sendable (Request) -> Bool)?
        /// Session ID generator. Default: 128 random bits from the system CSPRNG, as hex.
        public var idGenerator: (@Sendable () -> String)?
        /// Offer permessage-deflate (RFC 7692). Default true.
        public var compression: Bool = true
        /// Ping clients this often; a client that sends nothing (no pong, no message) for this
        /// long after a ping is closed (``Live/Error/heartbeatTimeout``), so dead peers leave.
        /// Default 25 s; nil turns heartbeats off.
        public var heartbeatInterval: TimeAmount? = .seconds(25)
        /// Most topics one session may be subscribed to; a subscribe past it is refused and the
        /// client is sent `{"topic":"error","data":"too many subscriptions"}`. Default 1,024.
        public var maxTopicsPerSession: Int = 1024
        /// Most subscriptions all of one client's sessions may hold together (a client is an
        /// IPv4 address or an IPv6 /64); a subscribe past it is refused as one past
        /// ``maxTopicsPerSession`` is. With ``maxTopicLength`` it bounds what one client's
        /// subscriptions hold in memory (about 80 MiB at the defaults, however many sessions it
        /// opens). Default 100,000; behind a reverse proxy, raise it with the per-client limits.
        public var maxTopicsPerClient: Int = 100_000
        /// Longest topic name a session may subscribe to, in UTF-8 bytes; a longer one is
        /// refused and the client is sent `{"topic":"error","data":"topic too long"}`. With
        /// ``maxTopicsPerSession`` it bounds what one session's subscriptions hold (names
        /// and index entries, about 1 KiB per subscription at the defaults). Default 255
        /// (Centrifugo's `channel_max_length`).
        public var maxTopicLength: Int = 255
        /// How much of the upgrade request's headers a session keeps, in bytes (names and
        /// values): ``Session/request`` and the ``Context`` of ``onOpen`` and ``onMessage``
        /// carry the headers that fit, in order; ``onAuth`` and ``checkOrigin`` saw them all.
        /// Sessions live long and a client chooses its headers: an idle session must not
        /// hold 15 KB of them. Default 4 KiB.
        public var keptRequestHeaderBytes: Int = 4096
        /// How long a client may leave the server's output unread (its socket accepting no
        /// bytes) before it is dropped (``Live/Error/writeTimeout``). Default 30 s.
        public var writeStallTimeout: TimeAmount = .seconds(30)
        /// Called when a session opens, before any of its messages (beyond the seed: a place
        /// for presence and welcome messages).
        public var onOpen: (@Sendable (Context, Session) async -> Void)?
        /// Hold each connection's writes this long so messages arriving meanwhile share one
        /// syscall: much less CPU per delivery under heavy fan-out, up to this much more latency
        /// (Centrifugo's `write_delay`). Default nil: flush at the end of each event-loop tick.
        public var writeDelay: TimeAmount?
        /// Carries publishes to and from other servers (see ``Live/Broker``, ``Live/RedisBroker``).
        /// Default nil: this server is its own, in-memory pub/sub space.
        public var broker: (any Broker)?
        /// Sessions open at once, in total; a handshake past it is answered 503 with a
        /// `Retry-After` (Centrifugo's `client_connection_limit`). Default 100,000.
        public var maxSessions: Int = 100_000
        /// Sessions open at once per client (an IPv4 address or an IPv6 /64); past it 503
        /// with a `Retry-After`. Default 10,000. Behind a reverse proxy every client has the
        /// proxy's address: raise it (and the rate below) or limit at the proxy.
        public var maxSessionsPerClient: Int = 10_000
        /// Handshakes per second per client, with bursts of ``connectBurst``; past it 429
        /// with a `Retry-After`. Default 1,000/s, bursts of 2,000.
        public var connectsPerSecond: Double = 1_000
        /// Handshakes a client may make at once before ``connectsPerSecond`` paces it.
        public var connectBurst: Int = 2_000
        /// Messages per second that one client's sessions together have handled (by the
        /// command set, ``onMessage`` or ``onBadMessage``), with bursts of ``messageBurst``;
        /// past it each message waits its turn, and a client that keeps sending finds its
        /// sockets no longer read (its messages wait in TCP, not here; a session left unread
        /// longer than the heartbeat's timeout is closed, its pongs unread too). A session that
        /// closes drops its messages still waiting for a turn. One client then costs at most
        /// this many messages' CPU however many sessions it opens. Default 10,000/s,
        /// bursts of 20,000 (out of the way of a busy publisher; a public chat of people would
        /// set tens); `.infinity` does not pace; zero or less is the default. Behind a reverse
        /// proxy every client has the proxy's address: raise it or pace at the proxy.
        public var messagesPerSecond: Double = Options.defaultMessagesPerSecond
        /// Messages a client's sessions may send at once before ``messagesPerSecond`` paces them.
        public var messageBurst: Int = Options.defaultMessageBurst
        /// The default of ``messagesPerSecond``: 10,000.
        public static let defaultMessagesPerSecond: Double = 10_000
        /// The default of ``messageBurst``: 20,000.
        public static let defaultMessageBurst = 20_000
        /// Where the server's metrics go (`mizu_live_*`, listed in the README); nil (the
        /// default) uses whatever `MetricsSystem.bootstrap` installed.
        public var metricsFactory: (any MetricsFactory)?
        /// The topics that keep a history, and how much (nil for the others): their messages
        /// carry `"offset"` and `"epoch"` on the wire, ``Server/history(_:since:limit:)``
        /// reads them, and ``Server/subscribe(_:_:recoverFrom:latest:reply:)`` replays them.
        /// With ``Live/RedisBroker`` the history lives in Redis, shared by every node. Default nil.
        public var history: (@Sendable (String) -> HistoryPolicy?)?
        /// Most bytes the history kept in this process holds over all topics (messages and
        /// their bookkeeping); past it the oldest messages go first, whatever their topic, and
        /// a recovery from before them is answered as one that came too late. Each topic's
        /// size and TTL bound it per topic; this bounds the sum, which clients choose when they
        /// may publish to topics of their own naming. Not used with ``Live/RedisBroker`` (bound
        /// Redis with its `maxmemory`). Default 64 MiB.
        public var maxHistoryBytes: Int = Options.defaultMaxHistoryBytes
        /// The default of ``maxHistoryBytes``: 64 MiB.
        public static let defaultMaxHistoryBytes = 64 * 1024 * 1024
        /// Presence tracking (who is subscribed to which topics). Default nil: none.
        public var presence: PresenceOptions?
        /// The standard command set (`subscribe`, `unsubscribe`, `publish`, `history`,
        /// `presence`; PROTOCOL.md), answered by the server and guarded by its hooks. Messages
        /// on other topics still go to ``onMessage``. Default nil: every message does.
        public var commands: Commands?

        /// Options with the given hooks and the documented defaults.
        public init(
            onAuth: (@Sendable (Context, Request) async throws -> (any Sendable)?)? = nil,
            onMessage: (@Sendable (Context, Session, String, Data) async -> Void)? = nil,
            onClose: (@Sendable (Session, (any Swift.Error)?) async -> Void)? = nil,
            queueSize: Int = 256,
            readLimit: Int = 4 * 1024 * 1024,
            origins: [String] = [],
            checkOrigin: (@Sendable (Request) -> Bool)? = nil,
            idGenerator: (@Sendable () -> String)? = nil
        ) {
            self.onAuth = onAuth
            self.onMessage = onMessage
            self.onClose = onClose
            self.queueSize = queueSize
            self.readLimit = readLimit
            self.origins = origins
            self.checkOrigin = checkOrigin
            self.idGenerator = idGenerator
        }

        /// checkOrigin decides when set; otherwise no Origin header, the server's own origin,
        /// `"*"` or a listed origin pass.
        func allowsOrigin(of request: Request) -> Bool {
            if let checkOrigin = self.checkOrigin { return checkOrigin(request) }
            guard let origin = request.header("origin") else { return true }
            if self.origins.contains("*") { return true }
            if self.origins.contains(where: { $0.caseInsensitiveCompare(origin) == .orderedSame }) { return true }
            return Self.isSameOrigin(origin, host: request.header("host"), secure: request.isSecure)
        }

        /// RFC 6454: scheme, host and port all equal. The scheme is the connection's: on a
        /// plain listener (ws://) an `https://` page is another origin even on the same host
        /// and port, and on a TLS one an `http://` page is. The Host header is used for this
        /// comparison only.
        static func isSameOrigin(_ origin: String, host: String?, secure: Bool = false) -> Bool {
            guard let components = URLComponents(string: origin), components.scheme?.lowercased() == (secure ? "https" : "http"),
                let originHost = components.host, !originHost.isEmpty, let host,
                let (requestHost, requestPort) = Self.splitHost(host, defaultPort: secure ? 443 : 80)
            else { return false }
            let bareOriginHost = originHost.hasPrefix("[") ? String(originHost.dropFirst().dropLast()) : originHost
            return bareOriginHost.caseInsensitiveCompare(requestHost) == .orderedSame
                && (components.port ?? (secure ? 443 : 80)) == requestPort
        }

        /// `host[:port]` or `[v6]:port`, `defaultPort` when absent; nil when malformed.
        private static func splitHost(_ value: String, defaultPort: Int) -> (String, Int)? {
            var host = Substring(value.trimmingHTTPWhitespace())
            var port = defaultPort
            if host.hasPrefix("[") {
                guard let close = host.firstIndex(of: "]") else { return nil }
                let rest = host[host.index(after: close)...]
                host = host[host.index(after: host.startIndex)..<close]
                if !rest.isEmpty {
                    guard rest.hasPrefix(":"), let parsed = Int(rest.dropFirst()) else { return nil }
                    port = parsed
                }
            } else if let colon = host.lastIndex(of: ":") {
                guard let parsed = Int(host[host.index(after: colon)...]) else { return nil }
                port = parsed
                host = host[..<colon]
            }
            return host.isEmpty ? nil : (String(host), port)
        }
    }
}
