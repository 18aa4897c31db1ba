import CoreMetrics
#if TLS
import NIOSSL
#endif
import Foundation
import NIOCore

extension Live.RedisBroker {
    /// Where Redis is and how the broker uses it.
    public struct Configuration: Sendable {
        /// Redis' host name or address.
        public var host: String
        /// Redis' TCP port.
        public var port: Int
        /// ACL user (Redis 6+); nil authenticates as the default user.
        public var username: String?
        /// Sent with AUTH when set.
        public var password: String?
        /// Selected with SELECT. (Redis pub/sub ignores databases; the prefix is what separates apps.)
        public var database: Int
        /// Put before every topic to form the Redis channel name, so apps can share one Redis.
        public var channelPrefix: String = "mizu:"
        /// Commands waiting to be written to Redis, in bytes; past it (or while disconnected)
        /// publishes are dropped and counted, and reads (history, presence) throw
        /// ``Live/RedisError/overloaded``. Bounds memory when Redis is slow or gone. With a
        /// Redis Cluster it bounds each shard's queue and, apart, the publishes held while
        /// their slots move (what a shard's queue hands back there is kept, accepted already).
        public var maxPendingPublishBytes: Int = 8 * 1024 * 1024
        /// While the publishing link reconnects, publishes wait for it (in order, within
        /// ``maxPendingPublishBytes``) this long after it was lost; then they are refused
        /// (``RedisBroker/tryPublish(_:_:)`` says false) and counted as dropped.
        public var maxPublishWait: TimeAmount = .seconds(5)
        /// History publishes and presence writes that a dying link never answered are written
        /// again when it is back within this long (Redis recognises a history publish it
        /// already applied, for twice this long, by a key per topic and node); later, they are
        /// counted as unconfirmed. Default 30 s.
        public var replayWindow: TimeAmount = .seconds(30)
        /// How often the node compares where it stands in each history topic it delivers with
        /// the stream's position in Redis, to find a gap on a topic that went quiet (it also
        /// does after every resubscribe). One script per 500 topics.
        public var streamCheckInterval: TimeAmount = .seconds(5)
        /// Messages of one history topic held, in bytes, while the gap before them is read from
        /// the stream; past it later ones are read from the stream too.
        public var maxHeldStreamBytes: Int = 1024 * 1024
        /// Time allowed for a TCP connect plus the AUTH/SELECT/PING handshake (on a cluster,
        /// also for a node's answer to `CLUSTER SLOTS`).
        public var connectTimeout: TimeAmount = .seconds(5)
        /// How often an idle connection is PINGed; a connection silent for two intervals is
        /// dropped and reconnected (a stalled Redis, or a network path gone without a FIN).
        public var healthCheckInterval: TimeAmount = .seconds(5)
        /// First wait before reconnecting; it doubles after each failed attempt, up to ``maxReconnectDelay``.
        public var reconnectDelay: TimeAmount = .milliseconds(100)
        /// The longest wait between reconnect attempts.
        public var maxReconnectDelay: TimeAmount = .seconds(5)
        /// How long a topic's history position (epoch and offset) outlives its last message
        /// in Redis; after it the topic starts a new epoch. Default 24 h.
        public var historyMetaTTL: TimeAmount = .hours(24)
        /// Where the broker's metrics go (`mizu_live_broker_*`); nil uses whatever
        /// `MetricsSystem.bootstrap` installed.
        public var metricsFactory: (any MetricsFactory)?
        #if TLS
        /// TLS to Redis (`rediss://` sets the system's trust roots; set your own for a
        /// private CA). Only with the package trait `TLS`.
        public var tls: TLSConfiguration?
        #endif

        /// Redis on `host:port`.
        public init(host: String = "127.0.0.1", port: Int = 6379, username: String? = nil, password: String? = nil, database: Int = 0) {
            self.host = host
            self.port = port
            self.username = username
            self.password = password
            self.database = database
        }

        /// Parses `redis://[[user]:password@]host[:port][/db]` (user and password percent-decoded),
        /// or `rediss://...` for TLS (in builds with the package trait `TLS`).
        public init(url: String) throws(Live.RedisError) {
            // Errors end up in logs: they carry the URL without its password.
            func invalid(_ reason: String) -> Live.RedisError { .invalidURL(Self.redacting(url), reason: reason) }
            guard let components = URLComponents(string: url) else { throw invalid("not a URL") }
            guard let scheme = components.scheme?.lowercased() else { throw invalid("no scheme") }
            guard scheme == "redis" || scheme == "rediss" else { throw invalid("the scheme must be redis:// or rediss://") }
            #if !TLS
            guard scheme == "redis" else { throw invalid("TLS (rediss://) needs a build with the TLS trait (swift build --traits TLS)") }
            #endif
            guard var host = components.host, !host.isEmpty else { throw invalid("no host") }
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            let port = components.port ?? 6379
            guard (1...65535).contains(port) else { throw invalid("port out of range") }
            var database = 0
            let path = components.path.drop(while: { $0 == "/" })
            if !path.isEmpty {
                guard let number = Int(path), number >= 0 else { throw invalid("the path must be a database number") }
                database = number
            }
            let user = components.percentEncodedUser.flatMap { $0.removingPercentEncoding }
            let password = components.percentEncodedPassword.flatMap { $0.removingPercentEncoding }
            guard user?.isEmpty != false || password?.isEmpty == false else { throw invalid("a user needs a password") }
            self.init(
                host: host, port: port,
                username: user?.isEmpty == false ? user : nil,
                password: password?.isEmpty == false ? password : nil,
                database: database)
            #if TLS
            if scheme == "rediss" { self.tls = TLSConfiguration.makeClientConfiguration() }
            #endif
        }

        /// `url` with the password (or a lone user-info, which Redis takes as one) as `***`.
        static func redacting(_ url: String) -> String {
            guard let schemeEnd = url.range(of: "://") else { return url }
            let authorityEnd = url[schemeEnd.upperBound...].firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? url.endIndex
            guard let at = url[schemeEnd.upperBound..<authorityEnd].lastIndex(of: "@") else { return url }
            let userInfo = url[schemeEnd.upperBound..<at]
            let secretStart = userInfo.firstIndex(of: ":").map { userInfo.index(after: $0) } ?? userInfo.startIndex
            return String(url[..<secretStart]) + "***" + String(url[at...])
        }
    }
}

extension Live.RedisBroker.Configuration: CustomStringConvertible {
    /// Host, port, user and database; never the password.
    public var description: String {
        "redis://\(self.username.map { $0 + ":" } ?? "")\(self.password == nil ? "" : "***@")\(self.host):\(self.port)/\(self.database)"
    }
}
