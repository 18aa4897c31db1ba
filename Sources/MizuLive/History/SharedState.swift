import Foundation
import NIOCore

/// A broker that keeps history and presence where every node sees them (``Live/RedisBroker``).
/// Without one, each server keeps both in memory (``MemoryHistory``, ``MemoryPresence``).
protocol SharedState: Sendable {
    /// `receive` gets history topics' messages with their positions, in stream order per
    /// topic and each once, this node's own publishes included (they are delivered only this
    /// way); `notice` is called, in order with them, where messages before the next one could
    /// not be had (the history no longer holds them, or a new epoch began).
    func attachPositioned(
        receive: @escaping @Sendable (String, ByteBuffer, Live.StreamPosition) -> Void,
        notice: @escaping @Sendable (String, Live.StreamPosition) -> Void)
    /// The position a history read found for a topic after ``subscriptionReady(_:)``: where
    /// this node's delivery of the topic stands if no message came yet.
    func seedPosition(_ topic: String, epoch: String, top: UInt64)
    /// Appends to the topic's history and publishes to every node, in one atomic step; false
    /// when it will not reach the shared state (see ``Live/RedisBroker/tryPublish(_:_:)``).
    func publish(_ topic: String, _ data: Data, history: Live.HistoryPolicy) -> Bool
    /// Returns once messages published on `topic` from now on reach this node.
    func subscriptionReady(_ topic: String) async throws
    func readHistory(_ topic: String, since: UInt64?, count: Int, policy: Live.HistoryPolicy) async throws -> HistoryRead
    /// Adds (or refreshes) members for `expiry`.
    func presenceJoin(_ topic: String, _ members: [Live.PresenceMember], expiry: TimeAmount)
    func presenceLeave(_ topic: String, session: String)
    func presence(_ topic: String) async throws -> [Live.PresenceMember]
}
