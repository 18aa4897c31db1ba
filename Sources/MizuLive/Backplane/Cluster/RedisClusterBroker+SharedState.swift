import Foundation
import NIOCore

/// History and presence on a cluster: each topic's on the primary that serves its slot.
extension Live.RedisClusterBroker: SharedState {
    func attachPositioned(
        receive: @escaping @Sendable (String, ByteBuffer, Live.StreamPosition) -> Void,
        notice: @escaping @Sendable (String, Live.StreamPosition) -> Void
    ) {
        self.receivers.withLockedValue {
            $0.positioned = receive
            $0.notice = notice
        }
    }

    func seedPosition(_ topic: String, epoch: String, top: UInt64) {
        self.shard(for: topic)?.seedPosition(topic, epoch: epoch, top: top)
    }

    func publish(_ topic: String, _ data: Data, history: Live.HistoryPolicy) -> Bool {
        self.publishHeldInOrder(topic, data, history: history)
    }

    func subscriptionReady(_ topic: String) async throws {
        try await self.owner(of: topic).subscriptionReady(topic)
    }

    func readHistory(_ topic: String, since: UInt64?, count: Int, policy: Live.HistoryPolicy) async throws -> HistoryRead {
        try await self.redirected { try await self.owner(of: topic).readHistory(topic, since: since, count: count, policy: policy) }
    }

    func presenceJoin(_ topic: String, _ members: [Live.PresenceMember], expiry: TimeAmount) {
        self.shard(for: topic)?.presenceJoin(topic, members, expiry: expiry)
    }

    func presenceLeave(_ topic: String, session: String) {
        self.shard(for: topic)?.presenceLeave(topic, session: session)
    }

    func presence(_ topic: String) async throws -> [Live.PresenceMember] {
        try await self.redirected { try await self.owner(of: topic).presence(topic) }
    }

    /// The shard serving `topic`; throws while no primary serves its slot (a refresh is asked).
    private func owner(of topic: String) throws -> Live.RedisBroker {
        guard let shard = self.shard(for: topic) else {
            self.refreshSoon()
            throw Live.RedisError.refused(command: "EVAL", message: "CLUSTERDOWN no primary serves the topic's slot")
        }
        return shard
    }

    /// Runs a read; a cluster error (the slot moved, or a failover runs) asks for a new map.
    private func redirected<T>(_ read: () async throws -> T) async throws -> T {
        do {
            return try await read()
        } catch Live.RedisError.refused(let command, let message) {
            if ClusterRedirect(error: message, asked: ClusterNodeAddress(host: "", port: 1)) != .other { self.refreshSoon() }
            throw Live.RedisError.refused(command: command, message: message)
        }
    }
}
