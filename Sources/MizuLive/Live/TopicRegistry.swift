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
        /// Sessions subscribed while their history is read: messages with a position wait
        /// here for them (see ``completeRecovery(of:topic:_:)``). Counted in `count`.
        var recovering: [ObjectIdentifier: Recovery] = [:]
        /// Sessions whose recovery read the history up to a position that this node's live
        /// stream has not reached yet (with Redis the read can answer before the pub/sub
        /// message arrives on the other connection): messages up to it are skipped, the first
        /// one past it (or of another epoch) makes them live subscribers. Counted in `count`.
        var catchingUp: [ObjectIdentifier: CatchUp] = [:]
    }

    /// A recovered session waiting for the live stream to pass what it was replayed.
    struct CatchUp {
        let session: Live.Session
        let through: Live.StreamPosition
    }

    /// A recovering session's waiting messages (offset and payload), bounded by its queue size.
    struct Recovery {
        let session: Live.Session
        var waiting: [(offset: UInt64, payload: ByteBuffer)] = []
        var overflowed = false
    }

    /// What a publish needs: per loop, the connections to write to, and the window sizes to
    /// compress for (each once per publish, whatever the number of subscribers).
    struct Snapshot {
        var buckets: [(eventLoop: any EventLoop, connections: [WebSocketConnection])]
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
        self.shards[shardIndex(topic, of: self.shards.count)]
    }

    func add(_ session: Live.Session, to topic: String, recovering: Bool = false) {
        let loop = session.connection.eventLoop
        let window = session.connection.broadcastEncoding.sharedWindow
        self.shard(topic).withLockedValue { topics in
            // Taken out of the dictionary and held by nothing else, so the appends below mutate
            // uniquely referenced storage (a second reference, even a local constant, would make
            // every add copy the bucket: O(subscribers)).
            var entry = topics.removeValue(forKey: topic) ?? Topic()
            let isNew = entry.count == 0
            if recovering {
                entry.recovering[ObjectIdentifier(session)] = Recovery(session: session)
            } else {
                Self.addLive(session, loop: loop, window: window, to: &entry)
            }
            entry.count += 1
            topics[topic] = entry
            if isNew {
                self.broker?.subscribe(topic)
                self.metrics?.topics.increment()
            }
            self.metrics?.subscriptions.increment()
        }
    }

    private static func addLive(_ session: Live.Session, loop: any EventLoop, window: Int?, to entry: inout Topic) {
        var bucket = entry.buckets.removeValue(forKey: ObjectIdentifier(loop)) ?? Bucket(eventLoop: loop)
        bucket.indices[ObjectIdentifier(session.connection)] = bucket.connections.count
        bucket.connections.append(session.connection)
        entry.buckets[ObjectIdentifier(loop)] = bucket
        if let window { entry.sharedWindows[window, default: 0] += 1 }
    }

    /// Takes a live subscriber out of its loop's bucket; false when it is not one.
    private static func removeLive(_ session: Live.Session, from entry: inout Topic) -> Bool {
        let loopID = ObjectIdentifier(session.connection.eventLoop)
        guard var bucket = entry.buckets.removeValue(forKey: loopID) else { return false }
        guard let index = bucket.indices.removeValue(forKey: ObjectIdentifier(session.connection)) else {
            entry.buckets[loopID] = bucket
            return false
        }
        let last = bucket.connections.removeLast()
        if index < bucket.connections.count {
            bucket.connections[index] = last
            bucket.indices[ObjectIdentifier(last)] = index
        }
        if let window = session.connection.broadcastEncoding.sharedWindow {
            let left = entry.sharedWindows[window, default: 1] - 1
            entry.sharedWindows[window] = left > 0 ? left : nil
        }
        if !bucket.connections.isEmpty { entry.buckets[loopID] = bucket }
        return true
    }

    func remove(_ session: Live.Session, from topic: String) {
        self.shard(topic).withLockedValue { topics in
            guard var entry = topics.removeValue(forKey: topic) else { return }
            if entry.recovering.removeValue(forKey: ObjectIdentifier(session)) != nil
                || entry.catchingUp.removeValue(forKey: ObjectIdentifier(session)) != nil
                || Self.removeLive(session, from: &entry)
            {
                entry.count -= 1
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
            guard !entry.buckets.isEmpty else { return nil }
            return Snapshot(buckets: entry.buckets.values.map { ($0.eventLoop, $0.connections) }, sharedWindows: Array(entry.sharedWindows.keys))
        }
    }

    /// Delivers a message that has a place in the topic's stream. `position` runs under the
    /// topic's lock (it may append to the history and take the next offset), and the
    /// fan-out is handed to the event loops under it too, so every subscriber gets the
    /// stream in offset order and a recovery completing concurrently sees either this message
    /// waiting or this message live, never both and never neither. Returns the subscribers
    /// reached and the frame's size.
    func deliverInOrder(
        _ topic: String, data: some Collection<UInt8>, compression: PerMessageDeflateConfiguration, queueLimit: Int,
        position: () -> Live.StreamPosition
    ) -> (subscribers: Int, bytes: Int) {
        self.deliverInOrder(topic, compression: compression, queueLimit: queueLimit) {
            let position = position()
            var payload = ByteBuffer()
            Live.Message.encode(topic: topic, data: data, position: position, into: &payload)
            return (position, payload)
        }
    }

    /// As above, for any frame that has a place in the stream (a message, or a notice of
    /// what is missing before `position`): `frame` runs under the topic's lock.
    func deliverInOrder(
        _ topic: String, compression: PerMessageDeflateConfiguration, queueLimit: Int,
        frame: () -> (position: Live.StreamPosition, payload: ByteBuffer)
    ) -> (subscribers: Int, bytes: Int) {
        self.shard(topic).withLockedValue { topics in
            let (position, payload) = frame()
            guard topics[topic] != nil else { return (0, 0) }
            for key in topics[topic]!.recovering.keys {
                // In place: the dictionary's storage stays uniquely referenced.
                if topics[topic]!.recovering[key]!.waiting.count < queueLimit {
                    topics[topic]!.recovering[key]!.waiting.append((position.offset, payload))
                } else {
                    topics[topic]!.recovering[key]!.overflowed = true
                }
            }
            // Recovered sessions still behind their replay: skipped until the stream passes it,
            // then sent this message alone and made live (later messages come with the rest).
            var caughtUp: [Live.Session] = []
            if !topics[topic]!.catchingUp.isEmpty {
                for (key, catchUp) in topics[topic]!.catchingUp {
                    guard position.epoch != catchUp.through.epoch || position.offset > catchUp.through.offset else { continue }
                    topics[topic]!.catchingUp[key] = nil
                    caughtUp.append(catchUp.session)
                }
            }
            let entry = topics[topic]!
            var subscribers = 0
            var size = payload.readableBytes
            if !entry.buckets.isEmpty {
                (subscribers, size) = FanOut.send(
                    payload, to: entry.buckets.values.lazy.map { ($0.eventLoop, $0.connections) },
                    sharedWindows: entry.sharedWindows.keys, compression: compression)
            }
            guard !caughtUp.isEmpty else { return (subscribers, size) }
            var promoted = topics.removeValue(forKey: topic)!
            let message = payload
            for session in caughtUp {
                let connection = session.connection
                // On the loop: closing a slow consumer re-enters this lock.
                connection.eventLoop.execute { session.sendEncoded(CollectionOfOne(message)) }
                Self.addLive(session, loop: connection.eventLoop, window: connection.broadcastEncoding.sharedWindow, to: &promoted)
            }
            topics[topic] = promoted
            return (subscribers + caughtUp.count, size)
        }
    }

    /// Makes a live subscriber of `topic` a recovering one again (a subscribe with recovery to
    /// a topic the session already has): from now on its messages wait, as for a new
    /// subscriber, until ``completeRecovery(of:topic:_:)``. False when it is recovering already.
    func restartRecovery(of session: Live.Session, topic: String) -> Bool {
        self.shard(topic).withLockedValue { topics in
            guard var entry = topics.removeValue(forKey: topic) else { return false }
            defer { topics[topic] = entry }
            let key = ObjectIdentifier(session)
            guard entry.recovering[key] == nil,
                entry.catchingUp.removeValue(forKey: key) != nil || Self.removeLive(session, from: &entry)
            else { return false }
            entry.recovering[key] = Recovery(session: session)
            return true
        }
    }

    /// Ends `session`'s recovery on `topic`: `send` gets the messages that waited (offset
    /// order), under the topic's lock, must queue everything for the session before
    /// returning, and returns the position the session was sent up to (nil: nothing from a
    /// history). From then on the session is a live subscriber, once the live stream has
    /// passed that position (see ``Topic/catchingUp``). False when the session left meanwhile
    /// (nothing is sent).
    func completeRecovery(
        of session: Live.Session, topic: String,
        _ send: (_ waiting: [(offset: UInt64, payload: ByteBuffer)], _ overflowed: Bool) -> Live.StreamPosition?
    ) -> Bool {
        let loop = session.connection.eventLoop
        let window = session.connection.broadcastEncoding.sharedWindow
        return self.shard(topic).withLockedValue { topics in
            guard var entry = topics.removeValue(forKey: topic) else { return false }
            defer { topics[topic] = entry }
            guard let recovery = entry.recovering.removeValue(forKey: ObjectIdentifier(session)) else { return false }
            if let through = send(recovery.waiting, recovery.overflowed), through.offset > (recovery.waiting.last?.offset ?? 0) {
                entry.catchingUp[ObjectIdentifier(session)] = CatchUp(session: session, through: through)
            } else {
                Self.addLive(session, loop: loop, window: window, to: &entry)
            }
            return true
        }
    }

    func subscriberCount(_ topic: String) -> Int {
        self.shard(topic).withLockedValue { $0[topic]?.count ?? 0 }
    }

    var topicCount: Int {
        self.shards.reduce(0) { total, shard in total + shard.withLockedValue { $0.count } }
    }
}

/// Which of `count` shards holds `topic` (the registry's and the in-memory history's).
func shardIndex(_ topic: String, of count: Int) -> Int {
    var hasher = Hasher()
    hasher.combine(topic)
    return Int(UInt(bitPattern: hasher.finalize()) % UInt(count))
}
