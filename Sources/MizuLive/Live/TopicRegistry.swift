import NIOConcurrencyHelpers
import NIOCore

/// Who is subscribed to what, with each topic's subscribers bucketed by event loop so a
/// publish hops once per loop. Sharded by topic so publishers on different topics rarely
/// share a lock.
final class TopicRegistry: Sendable {
    /// The subscribers of one topic on one event loop. The array is copied out by publishes
    /// in O(1) (copy on write); the index makes removal O(1).
    struct Bucket {
        let eventLoop: any EventLoop
        var sessions: [Live.Session] = []
        var indices: [ObjectIdentifier: Int] = [:]
        var compressed = 0
    }

    struct Topic {
        var buckets: [ObjectIdentifier: Bucket] = [:]
        var count = 0
        var compressed = 0
    }

    /// What a publish needs: per loop, the sessions to write to.
    struct Snapshot {
        var buckets: [(any EventLoop, [Live.Session])]
        var hasSharedCompression: Bool
    }

    private let shards: [NIOLockedValueBox<[String: Topic]>] = (0..<16).map { _ in NIOLockedValueBox([:]) }
    /// Told, under the topic's shard lock (so in order per topic), when a topic gains its
    /// first subscriber and loses its last.
    private let broker: (any Live.Broker)?

    init(broker: (any Live.Broker)? = nil) {
        self.broker = broker
    }

    private func shard(_ topic: String) -> NIOLockedValueBox<[String: Topic]> {
        var hasher = Hasher()
        hasher.combine(topic)
        return self.shards[Int(UInt(bitPattern: hasher.finalize()) % UInt(self.shards.count))]
    }

    func add(_ session: Live.Session, to topic: String) {
        let loop = session.connection.eventLoop
        let sharesCompression = session.broadcastEncoding == .sharedCompressed ? 1 : 0
        self.shard(topic).withLockedValue { topics in
            let isNew = topics[topic] == nil
            var entry = topics[topic] ?? Topic()
            var bucket = entry.buckets.removeValue(forKey: ObjectIdentifier(loop)) ?? Bucket(eventLoop: loop)
            bucket.indices[ObjectIdentifier(session)] = bucket.sessions.count
            bucket.sessions.append(session)
            bucket.compressed += sharesCompression
            entry.buckets[ObjectIdentifier(loop)] = bucket
            entry.count += 1
            entry.compressed += sharesCompression
            topics[topic] = entry
            if isNew { self.broker?.subscribe(topic) }
        }
    }

    func remove(_ session: Live.Session, from topic: String) {
        let loopID = ObjectIdentifier(session.connection.eventLoop)
        let sharesCompression = session.broadcastEncoding == .sharedCompressed ? 1 : 0
        self.shard(topic).withLockedValue { topics in
            guard var entry = topics.removeValue(forKey: topic) else { return }
            if var bucket = entry.buckets.removeValue(forKey: loopID),
                let index = bucket.indices.removeValue(forKey: ObjectIdentifier(session))
            {
                let last = bucket.sessions.removeLast()
                if index < bucket.sessions.count {
                    bucket.sessions[index] = last
                    bucket.indices[ObjectIdentifier(last)] = index
                }
                bucket.compressed -= sharesCompression
                entry.count -= 1
                entry.compressed -= sharesCompression
                if !bucket.sessions.isEmpty { entry.buckets[loopID] = bucket }
            }
            // An empty topic leaves nothing behind.
            if entry.count > 0 {
                topics[topic] = entry
            } else {
                self.broker?.unsubscribe(topic)
            }
        }
    }

    func snapshot(_ topic: String) -> Snapshot? {
        self.shard(topic).withLockedValue { topics in
            guard let entry = topics[topic] else { return nil }
            return Snapshot(buckets: entry.buckets.values.map { ($0.eventLoop, $0.sessions) }, hasSharedCompression: entry.compressed > 0)
        }
    }

    func subscriberCount(_ topic: String) -> Int {
        self.shard(topic).withLockedValue { $0[topic]?.count ?? 0 }
    }

    var topicCount: Int {
        self.shards.reduce(0) { total, shard in total + shard.withLockedValue { $0.count } }
    }
}
