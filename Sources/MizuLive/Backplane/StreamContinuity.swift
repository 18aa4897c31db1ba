import NIOCore

/// What this node has delivered of each shared history stream, and what to do with the next
/// message from it: deliver it, drop it (delivered already), or hold it and read the gap
/// from the stream first. Per topic it keeps the epoch and the offset of the last message
/// handed to the sessions. A value type: events in, actions out, tested alone; the Redis
/// broker runs it on its event loop and carries out the actions.
///
/// Pub/sub delivers a topic's messages in offset order, but not all of them: a message
/// published while the node's subscriber link is down (or reconnecting) never comes. The gap
/// shows as a message whose offset is not the next one, or, on a topic gone quiet, as a
/// stream position (``positions(_:)``, checked after every resubscribe and periodically) past
/// the node's. Either way the node reads what it missed from the stream and delivers it, in
/// order, before anything newer; what the stream no longer holds (trimmed, expired, or a new
/// epoch after Redis lost its data) is told to the sessions as a notice, never swallowed.
struct StreamContinuity {
    struct Entry: Equatable {
        let position: Live.StreamPosition
        let data: ByteBuffer
    }

    enum Action: Equatable {
        /// Hand these to the topic's sessions, in this order.
        case deliver(topic: String, [Entry])
        /// Read the stream after `offset` (at most ``readCount`` entries); report the answer
        /// with ``readCompleted(_:epoch:top:entries:)`` or ``readFailed(_:)``.
        case read(topic: String, after: UInt64)
        /// Tell the topic's sessions that messages before the next one may be missing: the
        /// stream goes on after `resumeAfter`.
        case notice(topic: String, resumeAfter: Live.StreamPosition)
        /// The stream's top is below what this node delivered in the same epoch: Redis lost
        /// messages it had published (a promoted replica lacking its old primary's last
        /// writes). Begin a new epoch there, so no offset is given again to another message.
        case streamBehind(topic: String, delivered: Live.StreamPosition)
    }

    struct Stream: Equatable {
        /// Empty while the topic has no history yet (seeded from a read that found none).
        var epoch: String
        var offset: UInt64
        /// Seeded from a read, not from a delivery: messages up to here may still arrive live
        /// (published between the node's SUBSCRIBE and that read), and are delivered.
        var inFlightThrough: UInt64?
        /// A read of the gap is out; messages arriving meanwhile are held.
        var reading = false
        var held: [Entry] = []
        var heldBytes = 0
        /// How many of `held` had arrived when the read now out was sent.
        var heldAtRead = 0
        /// A message was left out of `held` (its bound) since that read was sent.
        var overflowed = false
        /// A message came from pub/sub since the last periodic check: a gap on an active topic
        /// shows in its next message, so only quiet ones need their position checked.
        var heard = false

        /// A read of the stream goes out now.
        mutating func startRead() {
            self.reading = true
            self.heldAtRead = self.held.count
            self.overflowed = false
        }

        init(epoch: String, offset: UInt64, inFlightThrough: UInt64? = nil) {
            self.epoch = epoch
            self.offset = offset
            self.inFlightThrough = inFlightThrough
        }
    }

    /// Counters since start, for metrics.
    struct Counts: Equatable {
        /// Gaps found (a message past the next offset, or a stream position past the node's).
        var gaps = 0
        /// Messages delivered from reads of the stream rather than from pub/sub.
        var caughtUp = 0
        /// Notices sent: messages the stream no longer had, or a new epoch.
        var unfillable = 0
        /// Streams found below what was delivered from them (a new epoch was asked for).
        var behind = 0
    }

    /// Entries per read of a gap; a larger gap takes several reads.
    static let readCount = 1_000

    /// Bytes of messages held per topic while its gap is read; past it new arrivals are left
    /// to the next read (the stream has them), so a long gap never costs unbounded memory.
    let maxHeldBytes: Int
    private(set) var streams: [String: Stream] = [:]
    private(set) var counts = Counts()

    init(maxHeldBytes: Int) {
        self.maxHeldBytes = maxHeldBytes
    }

    // MARK: Events

    /// Offsets a stream can hold: its arithmetic (the next offset, the one before) never
    /// overflows, whatever another program publishes on the channel or writes in Redis.
    static let offsets: ClosedRange<UInt64> = 1...Live.StreamPosition.maxOffset

    /// A message from pub/sub.
    mutating func received(_ topic: String, _ entry: Entry) -> [Action] {
        let position = entry.position
        guard Self.offsets.contains(position.offset) else { return [] }
        guard var stream = self.streams[topic] else {
            var stream = Stream(epoch: position.epoch, offset: position.offset)
            stream.heard = true
            self.streams[topic] = stream
            return [.deliver(topic: topic, [entry])]
        }
        stream.heard = true
        defer { self.streams[topic] = stream }
        if stream.reading {
            if position.epoch == stream.epoch, position.offset <= stream.offset { return [] }
            Self.hold(entry, in: &stream, limit: self.maxHeldBytes)
            return []
        }
        if stream.epoch.isEmpty || position.epoch != stream.epoch {
            // No history until now, or a new one (Redis lost the old): start from its first message.
            var actions: [Action] = []
            if !stream.epoch.isEmpty {
                self.counts.unfillable += 1
                actions.append(.notice(topic: topic, resumeAfter: Live.StreamPosition(offset: 0, epoch: position.epoch)))
            }
            stream = Stream(epoch: position.epoch, offset: 0)
            return actions + self.next(entry, topic: topic, stream: &stream)
        }
        if position.offset <= stream.offset {
            // Delivered already, unless it was in flight when the position was seeded.
            guard let through = stream.inFlightThrough, position.offset <= through else { return [] }
            return [.deliver(topic: topic, [entry])]
        }
        stream.inFlightThrough = nil  // pub/sub is in order: nothing older comes after this
        return self.next(entry, topic: topic, stream: &stream)
    }

    /// The answer to a `.read`: the stream's epoch and top offset when read, and its entries
    /// after the offset asked for, in order (epoch "" when the topic has no history).
    mutating func readCompleted(_ topic: String, epoch: String, top: UInt64, entries: [Entry]) -> [Action] {
        guard var stream = self.streams[topic], stream.reading else { return [] }
        guard top <= Live.StreamPosition.maxOffset, entries.allSatisfy({ Self.offsets.contains($0.position.offset) }) else {
            // Not a stream this node wrote: read nothing from it (the held messages wait for a retry).
            stream.reading = false
            self.streams[topic] = stream
            return []
        }
        defer { self.streams[topic] = stream }
        var actions: [Action] = []
        if epoch.isEmpty {
            // The history is gone (expired): nothing to read; what waited goes out after a notice.
            stream.reading = false
            let held = stream.held.sorted { $0.position.offset < $1.position.offset }
            stream.held = []
            stream.heldBytes = 0
            guard let first = held.first else { return [] }
            self.counts.unfillable += 1
            stream.epoch = first.position.epoch
            stream.offset = held.last!.position.offset
            return [.notice(topic: topic, resumeAfter: Live.StreamPosition(offset: first.position.offset - 1, epoch: first.position.epoch)), .deliver(topic: topic, held)]
        }
        if epoch != stream.epoch {
            // A new epoch since the gap opened: read it from its start.
            if !stream.epoch.isEmpty {
                self.counts.unfillable += 1
                actions.append(.notice(topic: topic, resumeAfter: Live.StreamPosition(offset: 0, epoch: epoch)))
            }
            let asked = stream.offset
            stream.epoch = epoch
            stream.offset = 0
            if asked != 0 {
                stream.startRead()
                return actions + [.read(topic: topic, after: 0)]
            }
        }
        var out: [Entry] = []
        var readMore = false
        if let first = entries.first, first.position.offset > stream.offset + 1 {
            // The history no longer holds what came in between (trimmed or expired).
            self.counts.unfillable += 1
            actions.append(.notice(topic: topic, resumeAfter: Live.StreamPosition(offset: first.position.offset - 1, epoch: epoch)))
            stream.offset = first.position.offset - 1
        }
        for entry in entries where entry.position.offset == stream.offset + 1 {
            out.append(entry)
            stream.offset += 1
        }
        if entries.count >= Self.readCount, stream.offset < top {
            readMore = true
        } else if top > stream.offset {
            // The stream's entries up to its top are gone.
            self.counts.unfillable += 1
            if !out.isEmpty { actions.append(.deliver(topic: topic, out)) }
            out = []
            actions.append(.notice(topic: topic, resumeAfter: Live.StreamPosition(offset: top, epoch: epoch)))
            stream.offset = top
        }
        self.counts.caughtUp += out.count
        if !readMore {
            // Then what arrived meanwhile, as long as it follows on. What arrived before the
            // read was sent and is not in the stream it read (another epoch, past its top) was
            // never a message of this stream: dropped, so nothing foreign on the channel can
            // stall the topic or move its position.
            var rest = stream.held[...]
            var index = 0
            while let next = rest.first {
                let arrivedBeforeRead = index < stream.heldAtRead
                index += 1
                if next.position.epoch != epoch || next.position.offset <= stream.offset
                    || (arrivedBeforeRead && next.position.offset > top)
                {
                    if next.position.epoch == epoch || arrivedBeforeRead {
                        rest.removeFirst()
                        continue
                    }
                    readMore = true  // a newer epoch began after the read
                    break
                }
                if next.position.offset == stream.offset + 1 {
                    out.append(next)
                    stream.offset += 1
                    rest.removeFirst()
                } else {
                    readMore = true  // arrived after the read was sent, past a gap: read again
                    break
                }
            }
            stream.held = Array(rest)
            stream.heldBytes = rest.reduce(0) { $0 + $1.data.readableBytes }
        }
        // Messages left out of `held` are in the stream: the next read brings them.
        if stream.overflowed { readMore = true }
        if !out.isEmpty { actions.append(.deliver(topic: topic, out)) }
        if readMore {
            stream.startRead()
            actions.append(.read(topic: topic, after: stream.offset))
        } else {
            stream.reading = false
        }
        return actions
    }

    /// A read failed (Redis went away): the held messages wait for ``retry()``.
    mutating func readFailed(_ topic: String) {
        self.streams[topic]?.reading = false
    }

    /// The stream positions Redis holds now (epoch "" for a topic without history): a topic
    /// whose position is past the node's has a gap to read (or a message in flight: the read
    /// then delivers it, and pub/sub's copy is dropped as a duplicate).
    mutating func positions(_ positions: [(topic: String, epoch: String, top: UInt64)]) -> [Action] {
        var actions: [Action] = []
        for (topic, epoch, top) in positions {
            guard var stream = self.streams[topic], !stream.reading, !epoch.isEmpty, top <= Live.StreamPosition.maxOffset else { continue }
            if epoch == stream.epoch, top < stream.offset {
                // An epoch's top only grows: this one lost what this node delivered.
                self.counts.behind += 1
                actions.append(.streamBehind(topic: topic, delivered: Live.StreamPosition(offset: stream.offset, epoch: epoch)))
                continue
            }
            guard epoch != stream.epoch || top > stream.offset else { continue }
            if stream.inFlightThrough.map({ top <= $0 }) == true, epoch == stream.epoch { continue }
            self.counts.gaps += 1
            stream.startRead()
            self.streams[topic] = stream
            actions.append(.read(topic: topic, after: stream.offset))
        }
        return actions
    }

    /// The topics whose position the periodic check compares: those quiet since the last
    /// check (and not being read). Starts the next period.
    mutating func quietTopics() -> [String] {
        var quiet: [String] = []
        for (topic, stream) in self.streams {
            if !stream.heard && !stream.reading { quiet.append(topic) }
            if stream.heard { self.streams[topic]!.heard = false }
        }
        return quiet
    }

    /// Reads again the gaps whose last read failed.
    mutating func retry() -> [Action] {
        var actions: [Action] = []
        for (topic, stream) in self.streams where !stream.reading && !stream.held.isEmpty {
            self.streams[topic]!.startRead()
            actions.append(.read(topic: topic, after: stream.offset))
        }
        return actions
    }

    /// The subscriber link dropped: nothing published before its next SUBSCRIBE will arrive.
    mutating func linkLost() {
        for topic in self.streams.keys { self.streams[topic]!.inFlightThrough = nil }
    }

    /// The topic's subscription was dropped (a cluster moved its slot): as ``linkLost()``, for one topic.
    mutating func subscriptionLost(_ topic: String) {
        self.streams[topic]?.inFlightThrough = nil
    }

    /// The position a subscriber's history read found, taken after the node's SUBSCRIBE was
    /// confirmed; only for a topic the node has no position for yet.
    mutating func seed(_ topic: String, epoch: String, top: UInt64) {
        guard self.streams[topic] == nil, top <= Live.StreamPosition.maxOffset else { return }
        var stream = Stream(epoch: epoch, offset: top, inFlightThrough: top)
        // Just read: not quiet in this period. Checked at once, its position would race the
        // messages published since the read that are still on their way (a needless read).
        stream.heard = true
        self.streams[topic] = stream
    }

    /// Another link delivered the topic up to `delivered`: this one goes on from there (its
    /// position is checked once its subscription is confirmed; nothing up to it is delivered
    /// again). Ignored when this link has a position of its own already.
    mutating func carryOn(_ topic: String, epoch: String, delivered: UInt64) {
        guard self.streams[topic] == nil, delivered <= Live.StreamPosition.maxOffset else { return }
        self.streams[topic] = Stream(epoch: epoch, offset: delivered)
    }

    /// The node no longer subscribes to the topic.
    mutating func forget(_ topic: String) {
        self.streams[topic] = nil
    }

    var topics: [String] { Array(self.streams.keys) }

    // MARK: Helpers

    /// The message after `stream.offset` (in its epoch): delivered when it is the next one,
    /// else held while the gap before it is read.
    private mutating func next(_ entry: Entry, topic: String, stream: inout Stream) -> [Action] {
        if entry.position.offset == stream.offset + 1 {
            stream.offset = entry.position.offset
            return [.deliver(topic: topic, [entry])]
        }
        self.counts.gaps += 1
        Self.hold(entry, in: &stream, limit: self.maxHeldBytes)
        stream.startRead()
        return [.read(topic: topic, after: stream.offset)]
    }

    private static func hold(_ entry: Entry, in stream: inout Stream, limit: Int) {
        // Past the limit the message is left to the next read: the stream has it.
        guard stream.held.isEmpty || stream.heldBytes + entry.data.readableBytes <= limit else {
            stream.overflowed = true
            return
        }
        stream.held.append(entry)
        stream.heldBytes += entry.data.readableBytes
    }
}
