import Foundation
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// Topic streams kept in this process: at most the policy's size per topic, nothing older
/// than its TTL, at most `limit` bytes over all topics (the oldest messages go first, and a
/// topic left with none is forgotten), and a topic whose messages have all expired is
/// forgotten by ``sweep(now:)``. A forgotten topic's next message starts a new epoch. Sharded
/// by topic.
final class MemoryHistory: Sendable {
    struct Entry {
        var offset: UInt64
        var stored: NIODeadline
        var data: Data

        /// What the entry holds, as the byte bound counts it: its data and its bookkeeping.
        var cost: Int { self.data.count + MemoryHistory.entryOverhead }
    }

    struct Stream {
        let epoch = newEpoch()
        var top: UInt64 = 0
        var entries = CircularBuffer<Entry>()
        var ttl: TimeAmount
        var lastTouched: NIODeadline

        /// Drops the first entries while `drop` says so; returns the bytes they held.
        mutating func dropFirst(while drop: (Entry) -> Bool) -> (count: Int, bytes: Int) {
            var removed = (count: 0, bytes: 0)
            while let first = self.entries.first, drop(first) {
                removed.count += 1
                removed.bytes += first.cost
                self.entries.removeFirst()
            }
            return removed
        }
    }

    /// One appended entry, in the order of appends: the byte bound evicts from the front.
    struct Appended {
        var topic: String
        var epoch: String
        var offset: UInt64
    }

    struct Shard {
        var streams: [String: Stream] = [:]
        var order = CircularBuffer<Appended>()
        var entryCount = 0

        /// Removes the oldest entry this shard still holds, and its topic when that was the
        /// last; the bytes freed, nil when it holds none.
        mutating func evictOldest() -> Int? {
            while let next = self.order.popFirst() {
                guard var stream = self.streams[next.topic], stream.epoch == next.epoch else { continue }
                let removed = stream.dropFirst { $0.offset <= next.offset }
                guard removed.count > 0 else { continue }  // already gone (size or TTL)
                self.entryCount -= removed.count
                guard stream.entries.isEmpty else {
                    self.streams[next.topic] = stream
                    return removed.bytes
                }
                // A topic with nothing left costs its name and table slot: under the bound's
                // pressure it is forgotten (as an expired one is), not kept for a day.
                self.streams.removeValue(forKey: next.topic)
                return removed.bytes + MemoryHistory.streamCost(next.topic)
            }
            return nil
        }

        /// The order forgets entries trimmed by size or TTL only when it reaches them: rebuilt
        /// once it holds twice what is kept, so it stays proportional (amortized O(1) per append).
        mutating func compactOrderIfNeeded() {
            guard self.order.count > 2 * self.entryCount + 1024 else { return }
            var kept = CircularBuffer<Appended>(initialCapacity: self.entryCount)
            for appended in self.order {
                guard let stream = self.streams[appended.topic], stream.epoch == appended.epoch,
                    let first = stream.entries.first, appended.offset >= first.offset
                else { continue }
                kept.append(appended)
            }
            self.order = kept
        }
    }

    /// Bytes an entry costs beyond its data: the entry, its place in the order, their
    /// collections' growth (measured roughly; the bound is on memory, not on data alone).
    static let entryOverhead = 96

    /// Bytes a topic's stream costs besides its entries: its name, its table slot, its
    /// buffer (about 1 KiB a topic measured from outside, thousands of one-message topics).
    static func streamCost(_ topic: String) -> Int { topic.utf8.count + 1024 }

    private let shards: [NIOLockedValueBox<Shard>] = (0..<16).map { _ in NIOLockedValueBox(Shard()) }
    /// Bytes held over all shards.
    private let bytes = Atomic<Int>(0)
    /// Where the next eviction starts, so every shard gives up its oldest in turn.
    private let evictionCursor = Atomic<Int>(0)
    /// The bound on ``bytes``.
    let limit: Int

    init(limit: Int = Live.Options.defaultMaxHistoryBytes) {
        self.limit = max(0, limit)
    }

    private func shard(_ topic: String) -> NIOLockedValueBox<Shard> {
        self.shards[shardIndex(topic, of: self.shards.count)]
    }

    /// Bytes held now (tests, metrics).
    var heldBytes: Int { self.bytes.load(ordering: .relaxed) }

    /// Appends `data` and returns its position.
    func append(_ topic: String, _ data: Data, policy: Live.HistoryPolicy, now: NIODeadline = .now()) -> Live.StreamPosition {
        let (position, delta) = self.shard(topic).withLockedValue { shard -> (Live.StreamPosition, Int) in
            var created = 0
            var stream = shard.streams.removeValue(forKey: topic) ?? {
                created = Self.streamCost(topic)
                return Stream(ttl: policy.ttl, lastTouched: now)
            }()
            defer { shard.streams[topic] = stream }
            stream.ttl = policy.ttl
            stream.top += 1
            let entry = Entry(offset: stream.top, stored: now, data: data)
            stream.entries.append(entry)
            shard.order.append(Appended(topic: topic, epoch: stream.epoch, offset: stream.top))
            var excess = stream.entries.count - policy.size
            let bySize = stream.dropFirst { _ in
                excess -= 1
                return excess >= 0
            }
            let ttl = stream.ttl
            let byAge = stream.dropFirst { now - $0.stored >= ttl }
            shard.entryCount += 1 - bySize.count - byAge.count
            stream.lastTouched = now
            return (Live.StreamPosition(offset: stream.top, epoch: stream.epoch), created + entry.cost - bySize.bytes - byAge.bytes)
        }
        self.bytes.add(delta, ordering: .relaxed)
        self.evictPastLimit()
        self.shard(topic).withLockedValue { $0.compactOrderIfNeeded() }
        return position
    }

    /// Over the bound: the oldest entries go, shard after shard (one lock at a time), until
    /// it holds or nothing is left to evict.
    private func evictPastLimit() {
        var index = self.evictionCursor.add(1, ordering: .relaxed).newValue
        var emptyInARow = 0
        while self.bytes.load(ordering: .relaxed) > self.limit, emptyInARow < self.shards.count {
            let shard = self.shards[index % self.shards.count]
            if let freed = shard.withLockedValue({ $0.evictOldest() }) {
                self.bytes.subtract(freed, ordering: .relaxed)
                emptyInARow = 0
            } else {
                emptyInARow += 1
            }
            index &+= 1
        }
    }

    /// The first `count` entries after `since`, or the last `count` when `since` is nil (a
    /// client's read costs what it asks for, not the stream's size). A topic with no
    /// stream reads as epoch "" at offset 0, and is not created: reading never costs memory,
    /// so clients cannot grow the table by asking about topics nobody publishes to.
    func read(_ topic: String, since: UInt64?, count: Int, policy: Live.HistoryPolicy, now: NIODeadline = .now()) -> HistoryRead {
        let (read, freed) = self.shard(topic).withLockedValue { shard -> (HistoryRead, Int) in
            guard var stream = shard.streams.removeValue(forKey: topic) else { return (HistoryRead(epoch: "", top: 0, entries: []), 0) }
            defer { shard.streams[topic] = stream }
            let ttl = stream.ttl
            let expired = stream.dropFirst { now - $0.stored >= ttl }
            shard.entryCount -= expired.count
            let kept = stream.entries.lazy.map { Live.Publication(data: $0.data, position: Live.StreamPosition(offset: $0.offset, epoch: stream.epoch)) }
            let chosen: [Live.Publication]
            if let since {
                chosen = Array(kept.filter { $0.position.offset > since }.prefix(max(0, count)))
            } else {
                chosen = Array(kept.suffix(max(0, count)))
            }
            return (HistoryRead(epoch: stream.epoch, top: stream.top, entries: chosen), expired.bytes)
        }
        self.bytes.subtract(freed, ordering: .relaxed)
        return read
    }

    /// Forgets streams whose messages have all expired and that nobody touched for a TTL.
    func sweep(now: NIODeadline = .now()) {
        for shard in self.shards {
            let freed = shard.withLockedValue { shard -> Int in
                var freed = 0
                for topic in Array(shard.streams.keys) {
                    guard let ttl = shard.streams[topic]?.ttl else { continue }
                    let expired = shard.streams[topic]!.dropFirst { now - $0.stored >= ttl }
                    shard.entryCount -= expired.count
                    freed += expired.bytes
                    if let stream = shard.streams[topic], stream.entries.isEmpty, now - stream.lastTouched >= stream.ttl {
                        shard.streams.removeValue(forKey: topic)
                        freed += Self.streamCost(topic)
                    }
                }
                shard.compactOrderIfNeeded()
                return freed
            }
            self.bytes.subtract(freed, ordering: .relaxed)
        }
    }

    /// Entries the eviction order remembers (kept ones and not yet forgotten trimmed ones).
    var orderCount: Int { self.shards.reduce(0) { $0 + $1.withLockedValue { $0.order.count } } }

    var streamCount: Int { self.shards.reduce(0) { $0 + $1.withLockedValue { $0.streams.count } } }
}
