import Foundation
import NIOCore

/// A broker that keeps history and presence where every node sees them (``Live/RedisBroker``).
/// Without one, each server keeps both in memory (``MemoryHistory``, ``MemoryPresence``).
protocol SharedState: Sendable {
    /// `receive` gets history topics' messages with their positions, in stream order per
    /// topic, this node's own publishes included (they are delivered only this way).
    func attachPositioned(receive: @escaping @Sendable (String, ByteBuffer, Live.StreamPosition) -> Void)
    /// Appends to the topic's history and publishes to every node, in one atomic step.
    func publish(_ topic: String, _ data: Data, history: Live.HistoryPolicy)
    /// Returns once messages published on `topic` from now on reach this node.
    func subscriptionReady(_ topic: String) async throws
    func readHistory(_ topic: String, since: UInt64?, latest: Int, policy: Live.HistoryPolicy) async throws -> HistoryRead
    /// Adds (or refreshes) members for `expiry`.
    func presenceJoin(_ topic: String, _ members: [Live.PresenceMember], expiry: TimeAmount)
    func presenceLeave(_ topic: String, session: String)
    func presence(_ topic: String) async throws -> [Live.PresenceMember]
}
