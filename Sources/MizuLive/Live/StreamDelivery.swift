import MizuWebSocket
import NIOCore

/// Delivers frames that have a place in a topic's stream (history messages and notices of a
/// gap) to this node's subscribers, in offset order, through the registry. The history stores
/// deliver through it; it knows nothing above the registry.
struct StreamDelivery: Sendable {
    let registry: TopicRegistry
    let metrics: LiveMetrics
    let compression: PerMessageDeflateConfiguration
    /// Messages a recovering subscriber may have waiting: half its send queue (the replay
    /// takes the other half), so recovering never makes it a slow consumer by itself.
    let waitingLimit: Int

    /// `position` runs under the topic's lock: it may append to a history and take the next offset.
    func deliver(_ topic: String, _ data: some Collection<UInt8>, position: () -> Live.StreamPosition) {
        let started = NIODeadline.now()
        let (subscribers, bytes) = self.registry.deliverInOrder(
            topic, data: data, compression: self.compression, queueLimit: self.waitingLimit, position: position)
        self.metrics.recordFanout(subscribers: subscribers, frameSize: bytes, since: started)
    }

    /// Tells the topic's subscribers, in order with its messages, that messages before the
    /// next one may be missing (the history no longer has them, or began a new epoch).
    func notice(_ topic: String, resumeAfter position: Live.StreamPosition) {
        _ = self.registry.deliverInOrder(topic, compression: self.compression, queueLimit: self.waitingLimit) {
            var payload = ByteBuffer()
            Live.Message.encodeNotice(topic: topic, resumeAfter: position, into: &payload)
            return (position, payload)
        }
    }
}
