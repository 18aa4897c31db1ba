import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// Topic streams kept in this process: at most the policy's size per topic, nothing older
/// than its TTL, and a topic whose messages have all expired is forgotten by ``sweep(now:)``
/// (its next message starts a new epoch). Sharded by topic.
final class MemoryHistory: Sendable {
    struct Entry {
        var offset: UInt64
        var stored: NIODeadline
        var data: Data
    }

    struct Stream {
        let epoch = newEpoch()
        var top: UInt64 = 0
        var entries = CircularBuffer<Entry>()
        var ttl: TimeAmount
        var lastTouched: NIODeadline

        mutating func trim(now: NIODeadline) {
            while let first = self.entries.first, now - first.stored >= self.ttl { self.entries.removeFirst() }
        }
    }

    private let shards: [NIOLockedValueBox<[String: Stream]>] = (0..<16).map { _ in NIOLockedValueBox([:]) }

    private func shard(_ topic: String) -> NIOLockedValueBox<[String: Stream]> {
        self.shards[shardIndex(topic, of: self.shards.count)]
    }

    /// Appends `data` and returns its position.
    func append(_ topic: String, _ data: Data, policy: Live.HistoryPolicy, now: NIODeadline = .now()) -> Live.StreamPosition {
        self.shard(topic).withLockedValue { streams in
            var stream = streams.removeValue(forKey: topic) ?? Stream(ttl: policy.ttl, lastTouched: now)
            stream.ttl = policy.ttl
            stream.top += 1
            stream.entries.append(Entry(offset: stream.top, stored: now, data: data))
            while stream.entries.count > policy.size { stream.entries.removeFirst() }
            stream.trim(now: now)
            stream.lastTouched = now
            defer { streams[topic] = stream }
            return Live.StreamPosition(offset: stream.top, epoch: stream.epoch)
        }
    }

    /// The first `count` entries after `since`, or the last `count` when `since` is nil (a
    /// client's read costs what it asks for, not the stream's size). A topic with no
    /// stream reads as epoch "" at offset 0, and is not created: reading never costs memory,
    /// so clients cannot grow the table by asking about topics nobody publishes to.
    func read(_ topic: String, since: UInt64?, count: Int, policy: Live.HistoryPolicy, now: NIODeadline = .now()) -> HistoryRead {
        self.shard(topic).withLockedValue { streams in
            guard var stream = streams.removeValue(forKey: topic) else { return HistoryRead(epoch: "", top: 0, entries: []) }
            stream.trim(now: now)
            defer { streams[topic] = stream }
            let kept = stream.entries.lazy.map { Live.Publication(data: $0.data, position: Live.StreamPosition(offset: $0.offset, epoch: stream.epoch)) }
            let chosen: [Live.Publication]
            if let since {
                chosen = Array(kept.filter { $0.position.offset > since }.prefix(max(0, count)))
            } else {
                chosen = Array(kept.suffix(max(0, count)))
            }
            return HistoryRead(epoch: stream.epoch, top: stream.top, entries: chosen)
        }
    }

    /// Forgets streams whose messages have all expired and that nobody touched for a TTL.
    func sweep(now: NIODeadline = .now()) {
        for shard in self.shards {
            shard.withLockedValue { streams in
                for topic in Array(streams.keys) {
                    streams[topic]!.trim(now: now)
                    if let stream = streams[topic], stream.entries.isEmpty, now - stream.lastTouched >= stream.ttl {
                        streams.removeValue(forKey: topic)
                    }
                }
            }
        }
    }

    var streamCount: Int { self.shards.reduce(0) { $0 + $1.withLockedValue { $0.count } } }
}
