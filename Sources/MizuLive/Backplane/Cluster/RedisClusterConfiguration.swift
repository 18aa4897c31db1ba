import Foundation
import NIOCore

extension Live.RedisClusterBroker {
    /// Where a Redis Cluster is and how the broker uses it.
    public struct Configuration: Sendable {
        /// Nodes asked for the cluster's slot map (any of its nodes will do; more than one
        /// survives one being down).
        public var seeds: [(host: String, port: Int)]
        /// Everything else, for every connection to every primary: credentials, TLS, the
        /// names' prefix, bounds, timeouts, reconnects. Its host and port are not used, and
        /// its database must be 0 (a cluster has no other).
        public var node: Live.RedisBroker.Configuration
        /// How often the slot map is read again (it also is at once when a node redirects a
        /// command or drops a subscription).
        public var topologyRefreshInterval: TimeAmount = .seconds(5)

        /// A cluster reached through `seeds`, each primary connected with `node`'s settings.
        public init(seeds: [(host: String, port: Int)], node: Live.RedisBroker.Configuration = .init()) {
            self.seeds = seeds
            self.node = node
        }

        /// Comma-separated seeds, each `host:port` or a `redis://` / `rediss://` URL (the
        /// first URL's credentials, TLS and database apply to every node).
        public init(seeds list: String) throws(Live.RedisError) {
            var seeds: [(host: String, port: Int)] = []
            var node: Live.RedisBroker.Configuration?
            for item in list.split(separator: ",", omittingEmptySubsequences: true) {
                let text = item.trimmingCharacters(in: .whitespaces)
                if text.contains("://") {
                    let parsed = try Live.RedisBroker.Configuration(url: text)
                    if node == nil { node = parsed }
                    seeds.append((parsed.host, parsed.port))
                } else {
                    guard let address = ClusterNodeAddress(text) else {
                        throw .invalidURL(text, reason: "a cluster seed is host:port or a redis:// URL")
                    }
                    seeds.append((address.host, address.port))
                }
            }
            guard !seeds.isEmpty else { throw .invalidURL(list, reason: "no cluster seed") }
            guard (node?.database ?? 0) == 0 else { throw .invalidURL(list, reason: "a Redis Cluster has only database 0") }
            self.init(seeds: seeds, node: node ?? .init())
        }

        /// The node configuration pointed at one node.
        func node(_ address: ClusterNodeAddress) -> Live.RedisBroker.Configuration {
            var configuration = self.node
            configuration.host = address.host
            configuration.port = address.port
            return configuration
        }
    }
}
