import MizuWebSocket
import NIOConcurrencyHelpers
import NIOCore

/// Who is subscribed to what, with each topic's subscribers bucketed by event loop so a
/// publish hops once per loop. Sharded by topic so publishers on different topics rarely
/// share a lock.
final class TopicRegistry: Sendable {
    /// The subscribers of one topic on one event loop, by connection (what a publish writes
    /// to). The array is copied out by publishes in O(1) (copy on write); the index makes
    /// removal O(1).
    struct Bucket {
        let eventLoop: any EventLoop
        var connections: [WebSocketConnection] = []
        var indices: [ObjectIdentifier: Int] = [:]
    }

    struct Topic {
        var buckets: [ObjectIdentifier: Bucket] = [:]
        var count = 0
        /// Subscribers per deflate window size (bits 9...15) among those that share one
        /// compressed frame per publish; empty when none compress.
        var sharedWindows: [Int: Int] = [:]
    }

    /// What a publish needs: per loop, the connections to write to, and the window sizes to
    /// compress for (each once per publish, whatever the number of subscribers).
    struct Snapshot {
        var buckets: [(any EventLoop, [WebSocketConnection])]
        var sharedWindows: [Int]
    }

    private let shards: [NIOLockedValueBox<[String: Topic]>] = (0..<16).map { _ in NIOLockedValueBox([:]) }
    /// Told, under the topic's shard lock (so in order per topic), when a topic gains its
    /// first subscriber and loses its last.
    private let broker: (any Live.Broker)?
    private let metrics: LiveMetrics?

    init(broker: (any Live.Broker)? = nil, metrics: LiveMetrics? = nil) {
        self.broker = broker
        self.metrics = metrics
    }

    private func shard(_ topic: String) -> NIOLockedValueBox<[String: Topic]> {
        var hasher = Hasher()
        hasher.combine(topic)
        return self.shards[Int(UInt(bitPattern: hasher.finalize()) % UInt(self.shards.count))]
    }

    func add(_ session: Live.Session, to topic: String) {
        let loop = session.connection.eventLoop
        let window = session.connection.broadcastEncoding.sharedWindow
        self.shard(topic).withLockedValue { topics in
            // Taken out of the dictionary and held by nothing else, so the appends below mutate
            // uniquely referenced storage (a second reference, even a local constant, would make
            // every add copy the bucket: O(subscribers)).
            var entry = topics.removeValue(forKey: topic) ?? Topic()
            let isNew = entry.count == 0
            var bucket = entry.buckets.removeValue(forKey: ObjectIdentifier(loop)) ?? Bucket(eventLoop: loop)
            bucket.indices[ObjectIdentifier(session.connection)] = bucket.connections.count
            bucket.connections.append(session.connection)
            entry.buckets[ObjectIdentifier(loop)] = bucket
            entry.count += 1
            if let window { entry.sharedWindows[window, default: 0] += 1 }
            topics[topic] = entry
            if isNew {
                self.broker?.subscribe(topic)
                self.metrics?.topics.increment()
            }
            self.metrics?.subscriptions.increment()
        }
    }

    func remove(_ session: Live.Session, from topic: String) {
        let loopID = ObjectIdentifier(session.connection.eventLoop)
        let window = session.connection.broadcastEncoding.sharedWindow
        self.shard(topic).withLockedValue { topics in
            guard var entry = topics.removeValue(forKey: topic) else { return }
            if var bucket = entry.buckets.removeValue(forKey: loopID),
                let index = bucket.indices.removeValue(forKey: ObjectIdentifier(session.connection))
            {
                let last = bucket.connections.removeLast()
                if index < bucket.connections.count {
                    bucket.connections[index] = last
                    bucket.indices[ObjectIdentifier(last)] = index
                }
                entry.count -= 1
                if let window {
                    let left = entry.sharedWindows[window, default: 1] - 1
                    entry.sharedWindows[window] = left > 0 ? left : nil
                }
                if !bucket.connections.isEmpty { entry.buckets[loopID] = bucket }
                self.metrics?.subscriptions.decrement()
            }
            // An empty topic leaves nothing behind.
            if entry.count > 0 {
                topics[topic] = entry
            } else {
                self.broker?.unsubscribe(topic)
                self.metrics?.topics.decrement()
            }
        }
    }

    func snapshot(_ topic: String) -> Snapshot? {
        self.shard(topic).withLockedValue { topics in
            guard let entry = topics[topic] else { return nil }
            return Snapshot(buckets: entry.buckets.values.map { ($0.eventLoop, $0.connections) }, sharedWindows: Array(entry.sharedWindows.keys))
        }
    }

    func subscriberCount(_ topic: String) -> Int {
        self.shard(topic).withLockedValue { $0[topic]?.count ?? 0 }
    }

    var topicCount: Int {
        self.shards.reduce(0) { total, shard in total + shard.withLockedValue { $0.count } }
    }
}
