import NIOCore

/// What waits to be written on the broker's publishing link, in the order Redis must see it:
/// first the commands a dying link handed back unanswered (replays), then the batches and
/// requests queued since, in queue order. A value: the broker keeps it under a lock and
/// carries out what its methods return, so every rule here is tested without a socket.
struct RedisOutbox {
    struct Limits {
        /// Bytes that may wait (``Live/RedisBroker/Configuration/maxPendingPublishBytes``).
        var maxPendingBytes: Int
        /// How long after the link is lost commands are still queued for its return.
        var maxWait: TimeAmount
        /// How long after a link died its unanswered commands may still be written again.
        var replayWindow: TimeAmount
        /// At most one report of dropped publishes per this interval.
        var dropReportInterval: TimeAmount = .seconds(5)
    }

    let limits: Limits
    /// Commands nobody waits the reply of, written into one buffer as they come.
    private var batch = ByteBuffer()
    private var batchCount = 0
    /// The commands in `batch` that may be written again: their index and where they lie.
    private var batchReplayable: [(index: Int, start: Int, length: Int)] = []
    /// Numbers each command, in queue order, for Redis to recognise one written twice.
    private(set) var sequence: UInt64 = 0
    /// Handed back by a dying link, to go first when it is back, until their deadline.
    private var replays: [(request: RedisRequest, until: NIODeadline)] = []
    private var replayBytes = 0
    /// Batches and requests whose replies someone waits for, in queue order.
    private var segments: [RedisRequest] = []
    private var segmentBytes = 0
    private(set) var connected = false
    /// When the link was lost (nil while up, and before it first came up).
    private var downSince: NIODeadline?
    /// A flush is on its way: later commands need not ask for another.
    private var flushScheduled = false
    private var unreportedDrops = 0
    private var lastDropReport: NIODeadline = .distantPast

    init(limits: Limits) {
        self.limits = limits
    }

    /// Everything waiting to be written, in bytes.
    var pendingBytes: Int { self.batch.readableBytes + self.segmentBytes + self.replayBytes }

    /// Commands nobody waits the reply of (publishes, presence writes) not yet written.
    var waitingCommands: Int {
        // Counted in place: asked on every publish while the link is down.
        func commands(_ request: RedisRequest) -> Int {
            if case .discard(let count) = request.replies { return count }
            return 0
        }
        var total = self.batchCount
        for request in self.segments { total += commands(request) }
        for replay in self.replays { total += commands(replay.request) }
        return total
    }

    // MARK: Queueing

    enum EnqueueOutcome: Equatable {
        /// Queued; `scheduleFlush` when this command must ask for a flush, `waiting` the
        /// commands now waiting for a lost link (nil while it is up).
        case queued(scheduleFlush: Bool, waiting: Int?)
        /// Refused: the link is away past `maxWait`, or the bytes would pass the limit.
        /// `report` is the number of drops to log now (nil: not yet, one report per interval).
        case dropped(report: Int?)
    }

    /// Queues a command nobody waits the reply of. `write` gets its sequence number. A
    /// `replayable` one (same effect applied once or twice) is handed back when a link dies
    /// before answering it. Only refused publishes (`countsAsPublish`) are counted for the
    /// report.
    mutating func enqueue(
        size: Int, countsAsPublish: Bool, replayable: Bool, now: NIODeadline, _ write: (inout ByteBuffer, _ sequence: UInt64) -> Void
    ) -> EnqueueOutcome {
        // While the link reconnects, commands wait for it (in order), for a while.
        let open = self.connected || self.downSince.map { now - $0 < self.limits.maxWait } == true
        guard open, self.pendingBytes + size <= self.limits.maxPendingBytes else {
            guard countsAsPublish else { return .dropped(report: nil) }
            self.unreportedDrops += 1
            guard now - self.lastDropReport >= self.limits.dropReportInterval else { return .dropped(report: nil) }
            defer { self.unreportedDrops = 0 }
            self.lastDropReport = now
            return .dropped(report: self.unreportedDrops)
        }
        let start = self.batch.writerIndex
        self.sequence += 1
        write(&self.batch, self.sequence)
        if replayable { self.batchReplayable.append((self.batchCount, start, self.batch.writerIndex - start)) }
        self.batchCount += 1
        defer { self.flushScheduled = true }
        return .queued(scheduleFlush: !self.flushScheduled, waiting: self.connected ? nil : self.waitingCommands)
    }

    /// A sequence number for a command made outside the queue (it is written later, before
    /// anything queued after this call for the same topic: the cluster broker sees to that).
    mutating func takeSequence() -> UInt64 {
        self.sequence += 1
        return self.sequence
    }

    enum RequestOutcome: Equatable {
        case queued(scheduleFlush: Bool)
        /// Reads are not queued for a lost link: the caller retries.
        case disconnected
        case overloaded
    }

    /// Queues a command whose reply `promise` waits for, after everything queued before it.
    mutating func enqueueRequest(_ command: ByteBuffer, promise: EventLoopPromise<RESPValue>) -> RequestOutcome {
        guard self.connected else { return .disconnected }
        // Bounded like publishes: a client that asks faster than Redis answers is refused.
        guard self.pendingBytes + command.readableBytes <= self.limits.maxPendingBytes else { return .overloaded }
        self.closeBatch()
        self.segmentBytes += command.readableBytes
        self.segments.append(RedisRequest(bytes: command, replies: .one(promise)))
        defer { self.flushScheduled = true }
        return .queued(scheduleFlush: !self.flushScheduled)
    }

    /// Commands a dying link wrote and never got answered, that may be written again: they go
    /// first when the link is back, if within the replay window.
    mutating func handBack(_ commands: [ByteBuffer], now: NIODeadline) {
        guard !commands.isEmpty else { return }
        var bytes = ByteBuffer()
        var places: [(start: Int, length: Int)] = []
        for command in commands {
            places.append((bytes.writerIndex, command.readableBytes))
            bytes.writeImmutableBuffer(command)
        }
        let replayable = places.enumerated().map { index, place in
            ReplayableCommand(index: index, offset: place.start, bytes: bytes.getSlice(at: place.start, length: place.length)!)
        }
        self.replays.append((RedisRequest(bytes: bytes, replies: .discard(count: commands.count), replayable: replayable), now + self.limits.replayWindow))
        self.replayBytes += bytes.readableBytes
    }

    // MARK: Writing

    /// Everything to write now, in order (replays, then what was queued), and the number of
    /// replayed commands dropped because their window passed (they may or may not have
    /// reached Redis).
    mutating func takeForFlush(now: NIODeadline, allocator: ByteBufferAllocator = ByteBufferAllocator()) -> (requests: [RedisRequest], expired: Int) {
        self.closeBatch(allocator: allocator)
        var requests: [RedisRequest] = []
        var expired = 0
        for replay in self.replays {
            guard replay.until > now else {
                if case .discard(let count) = replay.request.replies { expired += count }
                continue
            }
            requests.append(replay.request)
        }
        requests += self.segments
        self.replays = []
        self.replayBytes = 0
        self.segments = []
        self.segmentBytes = 0
        self.flushScheduled = false
        return (requests, expired)
    }

    /// Ends the current batch as a segment, so what is queued after it follows it.
    private mutating func closeBatch(allocator: ByteBufferAllocator = ByteBufferAllocator()) {
        guard self.batchCount > 0 else { return }
        // Slices are taken now, when nothing more is written to these bytes (a slice held
        // while writing would make every later write copy the buffer).
        let replayable = self.batchReplayable.map { ReplayableCommand(index: $0.index, offset: $0.start, bytes: self.batch.getSlice(at: $0.start, length: $0.length)!) }
        self.segmentBytes += self.batch.readableBytes
        self.segments.append(RedisRequest(bytes: self.batch, replies: .discard(count: self.batchCount), replayable: replayable))
        self.batch = allocator.buffer(capacity: 1024)
        self.batchCount = 0
        self.batchReplayable = []
    }

    // MARK: The link

    /// The link is up: what waited goes out with the next flush. Returns the drops not yet
    /// reported.
    mutating func linkUp() -> Int {
        self.connected = true
        self.downSince = nil
        defer { self.unreportedDrops = 0 }
        return self.unreportedDrops
    }

    /// Empties the outbox for another link (a cluster moved this primary's slots elsewhere):
    /// the commands that may be written again, in order, the number of others (plain
    /// publishes, written at most once) given up, the number of replays whose window passed
    /// (they may or may not have reached Redis), and the reads waiting (to fail).
    mutating func takeAll(now: NIODeadline) -> (commands: [ByteBuffer], givenUp: Int, expired: Int, reads: [EventLoopPromise<RESPValue>]) {
        self.closeBatch()
        var commands: [ByteBuffer] = []
        var givenUp = 0
        var expired = 0
        var reads: [EventLoopPromise<RESPValue>] = []
        var live: [RedisRequest] = []
        for replay in self.replays {
            if replay.until > now {
                live.append(replay.request)
            } else if case .discard(let count) = replay.request.replies {
                expired += count
            }
        }
        for request in live + self.segments {
            switch request.replies {
            case .one(let promise): reads.append(promise)
            case .discard(let count):
                commands += request.replayable.map(\.bytes)
                givenUp += count - request.replayable.count
            case .none: break
            }
        }
        self.replays = []
        self.replayBytes = 0
        self.segments = []
        self.segmentBytes = 0
        self.flushScheduled = false
        return (commands, givenUp, expired, reads)
    }

    /// Takes out the commands that may be written again and `selected` picks (a cluster's
    /// held slots, while this link is down), oldest first: handed-back ones, then queued ones.
    /// Everything else stays, in order; so do replays past their window (counted when
    /// flushed, as they would have been: written elsewhere now, they could be applied twice).
    mutating func takeReplayable(now: NIODeadline, where selected: (ByteBuffer) -> Bool) -> [ByteBuffer] {
        self.closeBatch()
        var taken: [ByteBuffer] = []
        for index in self.replays.indices where self.replays[index].until > now {
            self.replays[index].request = Self.removing(from: self.replays[index].request, selected, into: &taken)
        }
        for index in self.segments.indices {
            self.segments[index] = Self.removing(from: self.segments[index], selected, into: &taken)
        }
        guard !taken.isEmpty else { return [] }
        func emptied(_ request: RedisRequest) -> Bool {
            if case .discard(0) = request.replies { return true }
            return false
        }
        self.replays.removeAll { emptied($0.request) }
        self.segments.removeAll(where: emptied)
        self.replayBytes = self.replays.reduce(0) { $0 + $1.request.bytes.readableBytes }
        self.segmentBytes = self.segments.reduce(0) { $0 + $1.bytes.readableBytes }
        return taken
    }

    /// `request` without the replayable commands `selected` picks (appended to `taken`): the
    /// bytes between them kept as they are, the replies counted and numbered again.
    private static func removing(from request: RedisRequest, _ selected: (ByteBuffer) -> Bool, into taken: inout [ByteBuffer]) -> RedisRequest {
        guard case .discard(let count) = request.replies else { return request }
        let chosen = request.replayable.filter { selected($0.bytes) }
        guard !chosen.isEmpty else { return request }
        taken += chosen.map(\.bytes)
        let chosenOffsets = Set(chosen.map(\.offset))
        var bytes = ByteBufferAllocator().buffer(capacity: request.bytes.readableBytes)
        var kept: [(index: Int, start: Int, length: Int)] = []
        var cursor = request.bytes.readerIndex
        var removed = 0
        for command in request.replayable {  // in the order of their bytes
            bytes.writeImmutableBuffer(request.bytes.getSlice(at: cursor, length: command.offset - cursor)!)
            cursor = command.offset + command.bytes.readableBytes
            if chosenOffsets.contains(command.offset) {
                removed += 1
                continue
            }
            kept.append((command.index - removed, bytes.writerIndex, command.bytes.readableBytes))
            bytes.writeImmutableBuffer(command.bytes)
        }
        bytes.writeImmutableBuffer(request.bytes.getSlice(at: cursor, length: request.bytes.writerIndex - cursor)!)
        // Sliced once written (a slice held while writing would make each write copy).
        let replayable = kept.map { ReplayableCommand(index: $0.index, offset: $0.start, bytes: bytes.getSlice(at: $0.start, length: $0.length)!) }
        return RedisRequest(bytes: bytes, replies: .discard(count: count - chosen.count), replayable: replayable)
    }

    /// The link is lost: requests waiting for a reply fail (returned: their callers retry);
    /// commands nobody waits for stay queued for its return.
    mutating func linkLost(now: NIODeadline) -> [EventLoopPromise<RESPValue>] {
        self.connected = false
        self.downSince = now
        self.flushScheduled = false
        var failed: [EventLoopPromise<RESPValue>] = []
        self.segments.removeAll { request in
            guard case .one(let promise) = request.replies else { return false }
            failed.append(promise)
            return true
        }
        self.segmentBytes = self.segments.reduce(0) { $0 + $1.bytes.readableBytes }
        return failed
    }
}
