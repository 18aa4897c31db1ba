import Foundation
import NIOCore

/// Where history topics' messages are numbered, kept and read: this process
/// (``MemoryHistoryStore``) or a broker every node shares (``SharedHistoryStore``). Chosen once,
/// when the server is made; the rest of the core sees only this.
protocol HistoryStore: Sendable {
    /// A publish on a history topic from this node: numbered, kept, and delivered to every
    /// subscriber in stream order. False when it will not reach the store's subscribers.
    func publish(_ topic: String, _ data: Data, policy: Live.HistoryPolicy) -> Bool
    /// A history topic's message that another node published through a broker that keeps no
    /// history. False when this store does not take such messages (they are delivered plainly).
    func receiveRemote(_ topic: String, _ data: ByteBuffer, policy: Live.HistoryPolicy) -> Bool
    /// Returns once messages published on `topic` from now on reach this node.
    func ready(_ topic: String) async throws
    /// The first `count` messages after `since`, or the last `count` when `since` is nil.
    func read(_ topic: String, since: UInt64?, count: Int, policy: Live.HistoryPolicy) async throws -> HistoryRead
    /// A subscriber's read found `read`: where this node's delivery of the topic stands if no
    /// message came yet.
    func didRead(_ topic: String, _ read: HistoryRead)
    /// Forgets what has expired (the housekeeping timer).
    func sweep()
}

/// History kept in this process. Positions are per node: with a broker that keeps no history,
/// other nodes' messages take their place in this node's stream as they arrive.
struct MemoryHistoryStore: HistoryStore {
    let history: MemoryHistory
    let delivery: StreamDelivery
    /// Other nodes get this node's publishes through it, if any.
    let broker: (any Live.Broker)?

    func publish(_ topic: String, _ data: Data, policy: Live.HistoryPolicy) -> Bool {
        self.delivery.deliver(topic, data) { self.history.append(topic, data, policy: policy) }
        return self.broker?.tryPublish(topic, data) ?? true
    }

    func receiveRemote(_ topic: String, _ data: ByteBuffer, policy: Live.HistoryPolicy) -> Bool {
        let bytes = Data(data.readableBytesView)
        self.delivery.deliver(topic, bytes) { self.history.append(topic, bytes, policy: policy) }
        return true
    }

    func ready(_ topic: String) async throws {}

    func read(_ topic: String, since: UInt64?, count: Int, policy: Live.HistoryPolicy) async throws -> HistoryRead {
        self.history.read(topic, since: since, count: count, policy: policy)
    }

    func didRead(_ topic: String, _ read: HistoryRead) {}

    func sweep() { self.history.sweep() }
}

/// History kept by a broker every node shares (Redis), which numbers each publish and sends it
/// to every node, this one included: this node delivers a history message only as it comes
/// back, with its position (or a notice where messages could not be had).
final class SharedHistoryStore: HistoryStore {
    private let shared: any SharedState
    private let delivery: StreamDelivery

    init(_ shared: any SharedState, delivery: StreamDelivery) {
        self.shared = shared
        self.delivery = delivery
        // Weak: the broker outlives no server by holding it.
        shared.attachPositioned(
            receive: { [weak self] topic, data, position in self?.delivery.deliver(topic, data.readableBytesView) { position } },
            notice: { [weak self] topic, position in self?.delivery.notice(topic, resumeAfter: position) })
    }

    func publish(_ topic: String, _ data: Data, policy: Live.HistoryPolicy) -> Bool {
        self.shared.publish(topic, data, history: policy)
    }

    func receiveRemote(_ topic: String, _ data: ByteBuffer, policy: Live.HistoryPolicy) -> Bool { false }

    func ready(_ topic: String) async throws { try await self.shared.subscriptionReady(topic) }

    func read(_ topic: String, since: UInt64?, count: Int, policy: Live.HistoryPolicy) async throws -> HistoryRead {
        try await self.shared.readHistory(topic, since: since, count: count, policy: policy)
    }

    func didRead(_ topic: String, _ read: HistoryRead) {
        self.shared.seedPosition(topic, epoch: read.epoch, top: read.top)
    }

    func sweep() {}
}
