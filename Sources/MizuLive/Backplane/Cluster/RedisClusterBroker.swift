import CoreMetrics
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Synchronization

extension Live {
    /// A ``Broker`` over a Redis Cluster: the pub/sub space, history and presence spread over
    /// its primaries by slot, so capacity grows with the number of shards.
    ///
    /// Every Redis name of a topic holds the topic's hash tag, so its history stream, position,
    /// presence and channel live in one slot: each history publish stays one atomic script on
    /// one shard. Messages travel by sharded pub/sub (SPUBLISH inside that script, SSUBSCRIBE),
    /// which only the slot's owner carries, not every node of the cluster. The broker keeps
    /// one ``RedisBroker`` per primary (two connections each, all the single-Redis guarantees:
    /// bounded waiting publishes, replays, stream continuity) and routes each topic to the
    /// owner of its slot by the map `CLUSTER SLOTS` gives. The map is read again periodically
    /// and at once when a node redirects a subscription or drops one (its slot moved, or it
    /// was demoted); topics whose owner changed are subscribed on the new one, which reads
    /// what was published meanwhile from the stream.
    ///
    /// Scripts are sent whole with EVAL (never EVALSHA), so a node that never saw one, or a
    /// promoted replica with an empty script cache, runs it all the same.
    public final class RedisClusterBroker: Broker {
        /// The seeds and node configuration it was made with.
        public let configuration: Configuration
        let eventLoopGroup: any EventLoopGroup
        let logger: Logger
        let keyspace: RedisKeyspace
        let state: NIOLockedValueBox<State>
        /// One refresh of the slot map at a time; one more asked while it runs.
        let refreshing = NIOLockedValueBox<(running: Bool, again: Bool)>((false, false))
        let receivers = NIOLockedValueBox<Receivers>(Receivers())
        let refreshTask = NIOLockedValueBox<Task<Void, Never>?>(nil)
        /// Commands refused by a primary (or left on one that was retired), waiting for their
        /// slot's owner (``redirected(_:_:from:)``); and whether the loop that writes them runs.
        let held = NIOLockedValueBox(Held())
        let redispatching = NIOLockedValueBox(false)
        let redirectedCommands = Atomic<Int>(0)
        let givenUp = Atomic<Int>(0)
        let askedCommands = Atomic<Int>(0)
        let heldFullLog = LogThrottle(every: .seconds(10))
        let metrics: ClusterMetrics
        /// The id every shard's messages carry, so this node knows its own whichever shard brings them.
        let headerID: String
        /// History publishes are numbered once for all shards: a topic keeps its sequence (and
        /// its predecessor check) when its slot moves.
        let publishOrder: SharedPublishOrder
        /// What this node delivered of each topic, whichever shard brought it.
        let floors = StreamFloors()

        struct State {
            var topology: ClusterTopology
            var shards: [ClusterNodeAddress: RedisBroker] = [:]
            /// The topics this node has subscribers for.
            var wanted: Set<String> = []
            /// The primary each wanted topic is subscribed on (none while its slot is unserved).
            var routes: [String: ClusterNodeAddress] = [:]
            var closed = false
            var topologyChanges = 0
        }

        struct Receivers {
            var receive: (@Sendable (String, ByteBuffer) -> Void)?
            var positioned: (@Sendable (String, ByteBuffer, Live.StreamPosition) -> Void)?
            var notice: (@Sendable (String, Live.StreamPosition) -> Void)?
        }

        /// Reads the slot map from the first seed that answers, connects to every primary and
        /// starts the periodic refresh; throws when no seed answers with a map that covers
        /// every slot, or a primary cannot be reached.
        public static func connect(
            _ configuration: Configuration,
            eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
            logger: Logger = Logger(label: "mizu.live.redis-cluster")
        ) async throws -> RedisClusterBroker {
            let seeds = configuration.seeds.map { ClusterNodeAddress(host: $0.host, port: $0.port) }
            let topology = try await Self.readTopology(from: seeds, configuration: configuration, eventLoopGroup: eventLoopGroup)
            guard topology.coversEverySlot else {
                throw RedisError.refused(command: "CLUSTER SLOTS", message: "the cluster does not serve every slot")
            }
            let broker = RedisClusterBroker(configuration, topology: topology, eventLoopGroup: eventLoopGroup, logger: logger)
            do {
                for primary in topology.primaries {
                    let shard = try await broker.connectShard(primary)
                    broker.state.withLockedValue { $0.shards[primary] = shard }
                }
            } catch {
                await broker.close()
                throw error
            }
            broker.startRefreshing()
            return broker
        }

        private init(_ configuration: Configuration, topology: ClusterTopology, eventLoopGroup: any EventLoopGroup, logger: Logger) {
            self.configuration = configuration
            self.eventLoopGroup = eventLoopGroup
            self.logger = logger
            self.keyspace = RedisKeyspace(prefix: configuration.node.channelPrefix, sharded: true)
            self.state = NIOLockedValueBox(State(topology: topology))
            var generator = SystemRandomNumberGenerator()
            let digits = String(generator.next() as UInt64, radix: 16)
            self.headerID = String(repeating: "0", count: 16 - digits.count) + digits
            self.publishOrder = SharedPublishOrder(id: self.headerID, window: configuration.node.replayWindow)
            self.metrics = ClusterMetrics(factory: configuration.node.metricsFactory ?? MetricsSystem.factory)
        }

        /// Commands written to a new owner after a primary refused them or was retired.
        public var redirects: Int { self.redirectedCommands.load(ordering: .relaxed) }

        /// Commands answered `ASK` (their slot being migrated) and written to the importing
        /// primary behind `ASKING`.
        public var asked: Int { self.askedCommands.load(ordering: .relaxed) }

        /// The primaries serving the slots now (`host:port`), as the last map read says.
        public var primaries: [String] {
            self.state.withLockedValue { $0.topology.primaries.map(\.description) }
        }

        /// Every shard's counters, added up.
        public var statistics: RedisBroker.Statistics {
            let shards = self.state.withLockedValue { Array($0.shards.values) }
            var total = RedisBroker.Statistics()
            for shard in shards { total.add(shard.statistics) }
            total.dropped += self.givenUp.load(ordering: .relaxed)
            return total
        }

        /// Every primary's connections are up.
        public var isConnected: Bool {
            self.state.withLockedValue { state in
                !state.shards.isEmpty && state.topology.primaries.allSatisfy { state.shards[$0]?.isConnected == true }
            }
        }

        /// Times the slot map changed since start.
        public var topologyChanges: Int { self.state.withLockedValue { $0.topologyChanges } }

        /// Stops refreshing and closes every shard's connections.
        public func close() async {
            let shards = self.state.withLockedValue { state -> [RedisBroker] in
                state.closed = true
                return Array(state.shards.values)
            }
            self.refreshTask.withLockedValue { $0 }?.cancel()
            // Together: a TLS link's close may wait for the node's close_notify (up to 5 s).
            await withTaskGroup(of: Void.self) { group in
                for shard in shards { group.addTask { await shard.close() } }
            }
        }

        // MARK: Routing

        /// The shard serving `topic`'s slot; nil while no primary does.
        func shard(for topic: String) -> RedisBroker? {
            let slot = self.keyspace.slot(topic)
            return self.state.withLockedValue { state in state.topology.primary(of: slot).flatMap { state.shards[$0] } }
        }

        // MARK: Broker

        public func attach(receive: @escaping @Sendable (String, ByteBuffer) -> Void) {
            self.receivers.withLockedValue { receivers in
                precondition(receivers.receive == nil, "a RedisClusterBroker serves one Live.Server; make one broker per server")
                receivers.receive = receive
            }
        }

        public func publish(_ topic: String, _ data: Data) {
            _ = self.tryPublish(topic, data)
        }

        /// False when the message will not reach the cluster: no primary serves its slot, or
        /// its shard refuses it (see ``RedisBroker/tryPublish(_:_:)``).
        public func tryPublish(_ topic: String, _ data: Data) -> Bool {
            self.shard(for: topic)?.tryPublish(topic, data) ?? false
        }

        // A shard's subscribe and unsubscribe only queue work on its event loop, so they are
        // called under the state's lock: a topic's calls reach its shards in the order made,
        // also while a refresh moves it.

        public func subscribe(_ topic: String) {
            let slot = self.keyspace.slot(topic)
            let routed = self.state.withLockedValue { state -> Bool in
                state.wanted.insert(topic)
                guard let primary = state.topology.primary(of: slot), let shard = state.shards[primary] else { return false }
                state.routes[topic] = primary
                shard.subscribe(topic)
                return true
            }
            if !routed { self.refreshSoon() }
        }

        public func unsubscribe(_ topic: String) {
            self.state.withLockedValue { state in
                state.wanted.remove(topic)
                if let primary = state.routes.removeValue(forKey: topic) { state.shards[primary]?.unsubscribe(topic) }
            }
        }
    }
}
