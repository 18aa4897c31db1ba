import CoreMetrics
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Synchronization

extension Live {
    /// A ``Broker`` over Redis pub/sub: several servers sharing one Redis form one pub/sub space.
    ///
    /// Two connections: one pipelines PUBLISHes, one holds the SUBSCRIBEs. A topic's channel
    /// (``Configuration/channelPrefix`` + topic) is subscribed only while this node has a local
    /// subscriber for it. When Redis goes away, local pub/sub keeps working, the broker
    /// reconnects with backoff and re-subscribes; publishes made meanwhile wait for the link
    /// (``Configuration/maxPublishWait``, ``Configuration/maxPendingPublishBytes``), past
    /// which they are refused and counted (``Statistics/dropped``), never queued without bound.
    /// History publishes the dying link never answered are written again when it is back
    /// (``Configuration/replayWindow``), and Redis applies each once.
    ///
    /// Each message on Redis is `m:<node id>\n` followed by the raw JSON data, so a node skips
    /// its own publishes; a message without that header (another program's `PUBLISH
    /// mizu:topic '{"a":1}'`) is delivered as it is. Data that is not JSON is not delivered.
    public final class RedisBroker: Broker {
        /// What the broker has done since it started.
        public struct Statistics: Sendable, Equatable {
            /// Publishes written to Redis.
            public var published = 0
            /// Publishes dropped: Redis was disconnected, or too slow (pending bytes over the limit).
            public var dropped = 0
            /// Publishes from other nodes delivered to this node's subscribers.
            public var received = 0
            /// PUBLISHes Redis answered with an error.
            public var errors = 0
            /// Redis channels this node is subscribed to, as Redis last confirmed.
            public var subscribedChannels = 0
            /// Messages on Redis whose data was not JSON, and were not delivered.
            public var rejected = 0
            /// Connections (publisher or subscriber) that were lost and came back.
            public var reconnects = 0
            /// History topics' gaps found: a message that was not the next one, or a stream
            /// position past this node's (after a resubscribe, or in the periodic check; a
            /// message still in flight on pub/sub then counts too, and is delivered once).
            public var streamGaps = 0
            /// Messages of those gaps read from the stream and delivered.
            public var caughtUp = 0
            /// Gaps the stream could not fill (trimmed, expired, a new epoch): sessions were told.
            public var unfillableGaps = 0
            /// Publishes (and presence writes) queued and not yet written: while the link to
            /// Redis reconnects they wait for it (``Configuration/maxPublishWait``).
            public var waiting = 0
            /// Plain publishes written just before the link died and never answered: they may
            /// or may not have reached Redis (logged, each time). Also history publishes and
            /// presence writes whose link stayed away longer than ``Configuration/replayWindow``.
            public var unconfirmed = 0
            /// History publishes and presence writes written just before the link died and
            /// never answered, written again after the reconnect: Redis applies each once.
            public var replayed = 0
        }

        public let configuration: Configuration
        private static let dropReportInterval = TimeAmount.seconds(5)
        /// Marks this node's messages on Redis (16 random hex digits).
        let nodeID: String
        private let header: [UInt8]
        let eventLoop: any EventLoop
        let logger: Logger
        /// Dropped presence writes are logged once per 10 s at most.
        let presenceDropLog = LogThrottle(every: .seconds(10))
        private let outbox: NIOLockedValueBox<Outbox>
        let links: NIOLoopBoundBox<Links>
        /// The receivers are held in structs, never as bare closures in a generic box: reading
        /// a bare function value out of one through `inout` re-abstracts it and writes the
        /// wrapper back, so every read added a thunk (96 bytes of stack and a call per
        /// message received so far: a node crashed after some 10^5 messages).
        private let receiver = NIOLockedValueBox<Receiver?>(nil)
        /// Where messages with a stream position (history topics) go.
        let positionedReceiver = NIOLockedValueBox<PositionedReceiver?>(nil)
        struct Receiver {
            let receive: @Sendable (String, ByteBuffer) -> Void
        }
        struct PositionedReceiver {
            let receive: @Sendable (String, ByteBuffer, StreamPosition) -> Void
            let notice: @Sendable (String, StreamPosition) -> Void
        }
        private let published = Atomic<Int>(0)
        private let dropped = Atomic<Int>(0)
        private let received = Atomic<Int>(0)
        private let errors = Atomic<Int>(0)
        private let subscribedChannels = Atomic<Int>(0)
        private let rejected = Atomic<Int>(0)
        private let reconnects = Atomic<Int>(0)
        private let unconfirmed = Atomic<Int>(0)
        private let replayed = Atomic<Int>(0)
        /// ``StreamContinuity/Counts``, readable from any thread.
        let streamGaps = Atomic<Int>(0)
        let streamCaughtUp = Atomic<Int>(0)
        let streamUnfillable = Atomic<Int>(0)
        /// Stream gaps are logged once per 10 s at most.
        let streamGapLog = LogThrottle(every: .seconds(10))
        private let subscriberUp = Atomic<Bool>(false)
        let metrics: BrokerMetrics

        /// PUBLISH commands waiting for the next flush on the broker's event loop.
        private struct Outbox {
            var bytes = ByteBuffer()
            var count = 0
            /// The commands in `bytes` that may be written again (see ``RedisRequest/replayable``):
            /// their index among `count` and where their bytes lie.
            var replayable: [(index: Int, start: Int, length: Int)] = []
            /// Numbers this node's commands for Redis to recognise one written twice.
            var sequence: UInt64 = 0
            /// Commands the link died before answering, to be written again first when it is
            /// back, in order, if that is before their deadline (``Configuration/replayWindow``).
            var replays: [(request: RedisRequest, until: NIODeadline)] = []
            var replayBytes = 0
            /// Commands queued before `bytes` whose replies someone waits for (reads), each after
            /// the fire-and-forget commands queued before it, so Redis sees everything in order.
            var segments: [RedisRequest] = []
            /// Bytes held in `segments`: they count against `maxPendingPublishBytes` too.
            var segmentBytes = 0
            /// Everything waiting to be written, in bytes.
            var pendingBytes: Int { self.bytes.readableBytes + self.segmentBytes + self.replayBytes }
            /// Commands nobody waits the reply of (publishes, presence writes) not yet written.
            var waitingCommands: Int {
                (self.segments + self.replays.map(\.request)).reduce(self.count) { total, segment in
                    if case .discard(let count) = segment.replies { return total + count }
                    return total
                }
            }

            /// The commands queued in `bytes` as one pipelined batch; `bytes` starts empty again.
            mutating func takeBatch(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> RedisRequest {
                // Slices are taken now, when nothing more is written to these bytes (a slice
                // held while writing would make every later write copy the buffer).
                let replayable = self.replayable.map { ReplayableCommand(index: $0.index, bytes: self.bytes.getSlice(at: $0.start, length: $0.length)!) }
                defer {
                    self.bytes = allocator.buffer(capacity: 1024)
                    self.count = 0
                    self.replayable = []
                }
                return RedisRequest(bytes: self.bytes, replies: .discard(count: self.count), replayable: replayable)
            }
            var connected = false
            /// When the publisher link was lost (nil while up, and before it first came up):
            /// publishes are queued for its return until `maxPublishWait` after this.
            var downSince: NIODeadline?
            var flushScheduled = false
            /// Drops not yet reported in the log, and when the log last reported some.
            var unreportedDrops = 0
            var lastDropReport: NIODeadline = .distantPast
        }

        enum Role: CustomStringConvertible {
            case publisher, subscriber
            var description: String { self == .publisher ? "publisher" : "subscriber" }
        }

        /// Connection state, confined to the broker's event loop.
        final class Links {
            struct Link {
                var channel: (any Channel)?
                var backoff: ReconnectBackoff
                /// This connection was up before and got lost: its next connect is a reconnect.
                var wasLost = false
                var reconnect: Scheduled<Void>?
            }
            var publisher: Link
            var subscriber: Link
            /// Topics this node has local subscribers for.
            var wanted: Set<String> = []
            /// Topics the subscriber connection has been told to SUBSCRIBE (reset when it drops).
            var told: Set<String> = []
            /// Topics Redis confirmed this node subscribed to (reset when the connection drops).
            var confirmed: Set<String> = []
            /// Waiting for a topic's confirmation (``subscriptionReady(_:)``).
            var readyWaiters: [String: [EventLoopPromise<Void>]] = [:]
            var syncScheduled = false
            /// (Un)subscribe confirmations still to come for the batch on the wire: the next
            /// batch waits for them, so Redis never holds more replies for this node than one
            /// batch's worth (its pub/sub output buffer limit drops the connection past it).
            var unconfirmed = 0
            var closed = false
            /// Where this node's delivery of each history topic stands (see ``StreamContinuity``).
            var continuity: StreamContinuity
            /// Its counts as last reported to the metrics.
            var reportedCounts = StreamContinuity.Counts()
            /// Topics resubscribed since the last position check, and whether one is scheduled.
            var positionChecks: Set<String> = []
            var positionCheckScheduled = false
            var positionTimer: RepeatedTask?

            init(_ configuration: Configuration) {
                let backoff = ReconnectBackoff(
                    base: configuration.reconnectDelay, cap: configuration.maxReconnectDelay,
                    // Longer than the longest delay, and long enough to see two health checks pass.
                    healthyAfter: max(configuration.maxReconnectDelay * 2, configuration.healthCheckInterval * 2))
                self.publisher = Link(channel: nil, backoff: backoff, reconnect: nil)
                self.subscriber = Link(channel: nil, backoff: backoff, reconnect: nil)
                self.continuity = StreamContinuity(maxHeldBytes: configuration.maxHeldStreamBytes)
            }

            subscript(role: Role) -> Link {
                get { role == .publisher ? self.publisher : self.subscriber }
                set { if role == .publisher { self.publisher = newValue } else { self.subscriber = newValue } }
            }
        }

        /// Connects to Redis at `url` (`redis://[[user]:password@]host[:port][/db]`); throws a
        /// ``Live/RedisError`` saying what is wrong when Redis is unreachable or refuses.
        public static func connect(
            url: String,
            channelPrefix: String = "mizu:",
            eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
            logger: Logger = Logger(label: "mizu.live.redis")
        ) async throws -> RedisBroker {
            var configuration = try Configuration(url: url)
            configuration.channelPrefix = channelPrefix
            return try await self.connect(configuration, eventLoopGroup: eventLoopGroup, logger: logger)
        }

        /// Connects both connections and runs their handshakes; the first failure is thrown.
        /// Later losses are repaired in the background.
        public static func connect(
            _ configuration: Configuration,
            eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
            logger: Logger = Logger(label: "mizu.live.redis")
        ) async throws -> RedisBroker {
            let broker = RedisBroker(configuration, eventLoop: eventLoopGroup.next(), logger: logger)
            do {
                let publisher = broker.open(.publisher)
                let subscriber = broker.open(.subscriber)
                try await publisher.get()
                try await subscriber.get()
                broker.startStreamChecks()
            } catch {
                await broker.close()
                throw error
            }
            return broker
        }

        private init(_ configuration: Configuration, eventLoop: any EventLoop, logger: Logger) {
            self.configuration = configuration
            self.eventLoop = eventLoop
            self.logger = logger
            self.metrics = BrokerMetrics(factory: configuration.metricsFactory ?? MetricsSystem.factory)
            var generator = SystemRandomNumberGenerator()
            let digits = String(generator.next() as UInt64, radix: 16)
            self.nodeID = String(repeating: "0", count: 16 - digits.count) + digits
            self.header = Array("m:\(self.nodeID)\n".utf8)
            self.outbox = NIOLockedValueBox(Outbox())
            self.links = NIOLoopBoundBox.makeBoxSendingValue(Links(configuration), eventLoop: eventLoop)
        }

        /// Counters since start.
        public var statistics: Statistics {
            Statistics(
                published: self.published.load(ordering: .relaxed), dropped: self.dropped.load(ordering: .relaxed),
                received: self.received.load(ordering: .relaxed), errors: self.errors.load(ordering: .relaxed),
                subscribedChannels: self.subscribedChannels.load(ordering: .relaxed),
                rejected: self.rejected.load(ordering: .relaxed), reconnects: self.reconnects.load(ordering: .relaxed),
                streamGaps: self.streamGaps.load(ordering: .relaxed), caughtUp: self.streamCaughtUp.load(ordering: .relaxed),
                unfillableGaps: self.streamUnfillable.load(ordering: .relaxed),
                waiting: self.outbox.withLockedValue { $0.waitingCommands }, unconfirmed: self.unconfirmed.load(ordering: .relaxed),
                replayed: self.replayed.load(ordering: .relaxed))
        }

        /// Both connections are up.
        public var isConnected: Bool {
            self.publisherUp && self.subscriberUp.load(ordering: .relaxed)
        }

        /// The publishing connection is up (publishes are accepted).
        private var publisherUp: Bool { self.outbox.withLockedValue { $0.connected } }

        /// The subscribing connection is up (tests: its loss has been noticed).
        var isSubscriberUp: Bool { self.subscriberUp.load(ordering: .relaxed) }

        /// Neither connection is up (tests: the loss has been noticed on both).
        var isFullyDisconnected: Bool {
            !self.publisherUp && !self.subscriberUp.load(ordering: .relaxed)
        }

        /// Closes both connections and stops reconnecting. What is already queued is written
        /// first: its flush was scheduled on the broker's event loop before this close.
        public func close() async {
            let closed = self.eventLoop.flatSubmit { () -> EventLoopFuture<Void> in
                let links = self.links.value
                links.closed = true
                links.positionTimer?.cancel()
                var closing: [EventLoopFuture<Void>] = []
                for role in [Role.publisher, .subscriber] {
                    links[role].reconnect?.cancel()
                    if let channel = links[role].channel {
                        channel.close(promise: nil)
                        closing.append(channel.closeFuture)
                    }
                }
                return EventLoopFuture.andAllComplete(closing, on: self.eventLoop)
            }
            try? await closed.get()
        }

        // MARK: Broker

        public func attach(receive: @escaping @Sendable (String, ByteBuffer) -> Void) {
            self.receiver.withLockedValue { receiver in
                precondition(receiver == nil, "a RedisBroker serves one Live.Server; make one broker per server")
                receiver = Receiver(receive: receive)
            }
        }

        public func publish(_ topic: String, _ data: Data) {
            _ = self.tryPublish(topic, data)
        }

        /// False when the message will not reach Redis: queued bytes past
        /// ``Configuration/maxPendingPublishBytes``, or Redis away longer than
        /// ``Configuration/maxPublishWait``. Otherwise it is written now, or, while the link
        /// reconnects, when it is back, in order.
        public func tryPublish(_ topic: String, _ data: Data) -> Bool {
            let prefix = self.configuration.channelPrefix
            let channelLength = prefix.utf8.count + topic.utf8.count
            let payloadLength = self.header.count + data.count
            // `*3 $7 PUBLISH $n <channel> $n <payload>`: 40 bytes cover the framing.
            return self.enqueue(size: 40 + channelLength + payloadLength, countsAsPublish: true) { bytes, _ in
                RESPValue.writeArrayHeader(count: 3, into: &bytes)
                RESPValue.writeBulkString("PUBLISH", into: &bytes)
                RESPValue.writeBulkString(length: channelLength, into: &bytes) {
                    $0.writeString(prefix)
                    $0.writeString(topic)
                }
                RESPValue.writeBulkString(length: payloadLength, into: &bytes) {
                    $0.writeBytes(self.header)
                    $0.writeBytes(data)
                }
            }
        }

        /// Queues a command nobody waits the reply of (an error reply is logged) for the next
        /// pipelined flush. False, and counted as a dropped publish when `countsAsPublish`, if
        /// Redis is disconnected or the pending bytes would pass the limit.
        ///
        /// A `replayable` command has the same effect in Redis whether applied once or twice:
        /// when the link dies before answering it, it is written again after the reconnect.
        /// `write` gets the command's sequence number (increasing in queue order).
        func enqueue(size: Int, countsAsPublish: Bool, replayable: Bool = false, _ write: (inout ByteBuffer, _ sequence: UInt64) -> Void) -> Bool {
            let limit = self.configuration.maxPendingPublishBytes
            let wait = self.configuration.maxPublishWait
            enum Outcome { case queued, queuedAndSchedule, dropped(report: Int) }
            var waitingForLink: Int?
            defer { if let waitingForLink { self.metrics.waiting.record(waitingForLink) } }
            let outcome = self.outbox.withLockedValue { outbox -> Outcome in
                // While the link reconnects, commands wait for it (in order), for a while.
                let open = outbox.connected || outbox.downSince.map { NIODeadline.now() - $0 < wait } == true
                guard open, outbox.pendingBytes + size <= limit else {
                    guard countsAsPublish else { return .dropped(report: -1) }
                    outbox.unreportedDrops += 1
                    // At most one log line per interval, however many are dropped.
                    let now = NIODeadline.now()
                    guard now - outbox.lastDropReport >= Self.dropReportInterval else { return .dropped(report: 0) }
                    defer { outbox.unreportedDrops = 0 }
                    outbox.lastDropReport = now
                    return .dropped(report: outbox.unreportedDrops)
                }
                let start = outbox.bytes.writerIndex
                outbox.sequence += 1
                write(&outbox.bytes, outbox.sequence)
                if replayable { outbox.replayable.append((outbox.count, start, outbox.bytes.writerIndex - start)) }
                outbox.count += 1
                if !outbox.connected { waitingForLink = outbox.waitingCommands }
                guard !outbox.flushScheduled else { return .queued }
                outbox.flushScheduled = true
                return .queuedAndSchedule
            }
            switch outcome {
            case .queued: return true
            case .queuedAndSchedule:
                self.eventLoop.execute { self.flushOutbox() }
                return true
            case .dropped(let report):
                guard report >= 0 else { return false }
                self.dropped.add(1, ordering: .relaxed)
                self.metrics.dropped.increment()
                if report > 0 {
                    self.logger.warning("dropped \(report) publishes: Redis is away or too slow (they reach no other node, and no one on history topics)")
                }
                return false
            }
        }

        /// Sends a command after everything queued before it and returns its reply; throws
        /// ``Live/RedisError/connectionClosed`` when Redis is not connected (or goes away),
        /// and the error Redis answers.
        func request(_ name: String, _ write: (inout ByteBuffer) -> Void) async throws -> RESPValue {
            let reply = try await self.enqueueRequest(write).get()
            if case .error(let message) = reply { throw RedisError.refused(command: name, message: message) }
            return reply
        }

        /// Queues a command after everything queued before it; its reply completes the future.
        func enqueueRequest(_ write: (inout ByteBuffer) -> Void) -> EventLoopFuture<RESPValue> {
            let promise = self.eventLoop.makePromise(of: RESPValue.self)
            var command = ByteBuffer()
            write(&command)
            let limit = self.configuration.maxPendingPublishBytes
            enum Outcome { case schedule, scheduled, disconnected, overloaded }
            let outcome = self.outbox.withLockedValue { outbox -> Outcome in
                guard outbox.connected else { return .disconnected }
                // Reads and history publishes are bounded like plain publishes: a client that
                // asks faster than Redis answers is refused, not buffered without limit.
                guard outbox.pendingBytes + command.readableBytes <= limit else { return .overloaded }
                if outbox.count > 0 {
                    outbox.segmentBytes += outbox.bytes.readableBytes
                    outbox.segments.append(outbox.takeBatch())
                }
                outbox.segmentBytes += command.readableBytes
                outbox.segments.append(RedisRequest(bytes: command, replies: .one(promise)))
                defer { outbox.flushScheduled = true }
                return outbox.flushScheduled ? .scheduled : .schedule
            }
            switch outcome {
            case .disconnected: promise.fail(RedisError.connectionClosed)
            case .overloaded: promise.fail(RedisError.overloaded)
            case .schedule: self.eventLoop.execute { self.flushOutbox() }
            case .scheduled: break
            }
            return promise.futureResult
        }

        public func subscribe(_ topic: String) {
            self.eventLoop.execute {
                self.links.value.wanted.insert(topic)
                self.scheduleSync()
            }
        }

        public func unsubscribe(_ topic: String) {
            self.eventLoop.execute {
                self.links.value.wanted.remove(topic)
                self.links.value.continuity.forget(topic)
                self.scheduleSync()
            }
        }

        // MARK: Publishing (on the event loop)

        /// Writes everything queued since the last flush as one pipelined batch. While the
        /// socket is not writable the batch waits (flushScheduled stays set, so publishers do
        /// not schedule more flushes); the handler calls back when it drains.
        private func flushOutbox() {
            guard let channel = self.links.value.publisher.channel else { return }
            // A link that died and is not yet known lost (its close callback is still to run)
            // takes nothing: what it took would be neither answered nor handed back.
            guard channel.isActive, channel.isWritable else { return }
            let now = NIODeadline.now()
            var expired = 0
            let requests = self.outbox.withLockedValue { outbox in
                defer {
                    outbox.replays = []
                    outbox.replayBytes = 0
                    outbox.segments = []
                    outbox.segmentBytes = 0
                    outbox.flushScheduled = false
                }
                var requests: [RedisRequest] = []
                for replay in outbox.replays {
                    guard replay.until > now else {
                        if case .discard(let count) = replay.request.replies { expired += count }
                        continue
                    }
                    requests.append(replay.request)
                }
                requests += outbox.segments
                if outbox.count > 0 { requests.append(outbox.takeBatch(allocator: channel.allocator)) }
                return requests
            }
            if expired > 0 { self.unanswered(expired, replay: [], reason: "came back after the replay window") }
            for request in requests {
                if case .discard(let count) = request.replies { self.countPublished(count) }
                channel.write(request, promise: nil)
            }
            channel.flush()
        }

        /// Commands written to a link that died before answering them. Those that may be
        /// written again wait for the link's return ahead of everything queued since; the
        /// others may or may not have reached Redis: counted and logged.
        private func unanswered(_ count: Int, replay: [ByteBuffer], reason: String = "died before answering them") {
            if !replay.isEmpty {
                var bytes = ByteBuffer()
                var replayable: [(index: Int, start: Int, length: Int)] = []
                for (index, command) in replay.enumerated() {
                    replayable.append((index, bytes.writerIndex, command.readableBytes))
                    bytes.writeImmutableBuffer(command)
                }
                let request = RedisRequest(
                    bytes: bytes, replies: .discard(count: replay.count),
                    replayable: replayable.map { ReplayableCommand(index: $0.index, bytes: bytes.getSlice(at: $0.start, length: $0.length)!) })
                let until = NIODeadline.now() + self.configuration.replayWindow
                self.outbox.withLockedValue { outbox in
                    outbox.replays.append((request, until))
                    outbox.replayBytes += bytes.readableBytes
                }
                self.replayed.add(replay.count, ordering: .relaxed)
                self.metrics.replayed.increment(by: replay.count)
            }
            let lost = count - replay.count
            guard lost > 0 else { return }
            self.unconfirmed.add(lost, ordering: .relaxed)
            self.metrics.unconfirmed.increment(by: lost)
            self.logger.warning("\(lost) commands (plain publishes, or history publishes whose link \(reason)) were written to Redis and never answered: they may or may not have reached it")
        }

        private func countPublished(_ count: Int) {
            self.published.add(count, ordering: .relaxed)
            self.metrics.published.increment(by: count)
        }

        // MARK: Subscriptions (on the event loop)

        /// Coalesces the subscription changes of one tick into one SUBSCRIBE and one UNSUBSCRIBE.
        private func scheduleSync() {
            let links = self.links.value
            guard !links.syncScheduled else { return }
            links.syncScheduled = true
            self.eventLoop.execute { self.syncSubscriptions() }
        }

        /// Channel-name bytes in one (UN)SUBSCRIBE. Redis answers each channel with a push that
        /// repeats its name, so this bounds what Redis buffers for us at once, whatever the
        /// topics' names or number.
        static let subscriptionBatchBytes = 64 * 1024

        /// Tells Redis the difference between the topics wanted and the topics it was told, one
        /// batch at a time: a batch goes when the previous one is confirmed.
        private func syncSubscriptions() {
            let links = self.links.value
            links.syncScheduled = false
            guard let channel = links.subscriber.channel, links.unconfirmed == 0 else { return }
            let prefix = self.configuration.channelPrefix
            // Never an empty UNSUBSCRIBE: with no channel it would drop them all.
            for (command, pending) in [("SUBSCRIBE", links.wanted.subtracting(links.told)), ("UNSUBSCRIBE", links.told.subtracting(links.wanted))] {
                guard !pending.isEmpty else { continue }
                var batch: [String] = []
                var size = 0
                for topic in pending {
                    let length = prefix.utf8.count + topic.utf8.count
                    if !batch.isEmpty, size + length > Self.subscriptionBatchBytes { break }
                    batch.append(topic)
                    size += length
                }
                if command == "SUBSCRIBE" {
                    links.told.formUnion(batch)
                } else {
                    links.told.subtract(batch)
                    // Not subscribed from now on, whatever an older confirmation said: a
                    // recovery that asks meanwhile waits for the next SUBSCRIBE's confirmation
                    // (otherwise it reads the history while messages go unseen: a gap).
                    links.confirmed.subtract(batch)
                }
                links.unconfirmed = batch.count
                var bytes = channel.allocator.buffer(capacity: 32 + size + batch.count * 16)
                RESPValue.writeCommand([command] + batch.map { prefix + $0 }, into: &bytes)
                channel.writeAndFlush(RedisRequest(bytes: bytes, replies: .none), promise: nil)
                return
            }
        }

        /// A pub/sub push: a message to deliver, or a (un)subscribe confirmation with the count.
        private func handlePush(_ value: RESPValue) {
            guard case .array(let items?) = value, items.count == 3, case .bulkString(let kind?) = items[0] else { return }
            switch (String(buffer: kind), items[1], items[2]) {
            case ("message", .bulkString(let channel?), .bulkString(let payload?)):
                self.deliver(channel: channel, payload: payload)
            case (let kind, .bulkString(let channel?), .integer(let count)) where kind == "subscribe" || kind == "unsubscribe":
                self.subscribedChannels.store(Int(count), ordering: .relaxed)
                let links = self.links.value
                if links.unconfirmed > 0 {
                    links.unconfirmed -= 1
                    if links.unconfirmed == 0, links.wanted != links.told { self.scheduleSync() }
                }
                let prefix = self.configuration.channelPrefix.utf8
                guard channel.readableBytesView.starts(with: prefix) else { return }
                let topic = String(decoding: channel.readableBytesView.dropFirst(prefix.count), as: UTF8.self)
                if kind == "subscribe" {
                    links.confirmed.insert(topic)
                    for waiter in links.readyWaiters.removeValue(forKey: topic) ?? [] { waiter.succeed() }
                    self.resubscribed(topic)
                } else {
                    links.confirmed.remove(topic)
                }

            default:
                break
            }
        }

        /// Returns once publishes on `topic` reach this node (Redis confirmed the channel's
        /// SUBSCRIBE); throws ``Live/RedisError/timeout`` after the connect timeout.
        func subscriptionReady(_ topic: String) async throws {
            let promise = self.eventLoop.makePromise(of: Void.self)
            let timeout = self.configuration.connectTimeout
            self.eventLoop.execute {
                let links = self.links.value
                guard !links.confirmed.contains(topic) else { return promise.succeed() }
                links.readyWaiters[topic, default: []].append(promise)
                self.eventLoop.scheduleTask(in: timeout) {
                    let links = self.links.value
                    guard let index = links.readyWaiters[topic]?.firstIndex(where: { $0.futureResult === promise.futureResult }) else { return }
                    links.readyWaiters[topic]?.remove(at: index)
                    if links.readyWaiters[topic]?.isEmpty == true { links.readyWaiters.removeValue(forKey: topic) }
                    promise.fail(RedisError.timeout)
                }
            }
            try await promise.futureResult.get()
        }

        private func deliver(channel: ByteBuffer, payload: ByteBuffer) {
            let prefix = self.configuration.channelPrefix.utf8
            let channelBytes = channel.readableBytesView
            guard channelBytes.starts(with: prefix) else { return }
            let topic = String(decoding: channelBytes.dropFirst(prefix.count), as: UTF8.self)
            var data = payload
            let bytes = payload.readableBytesView
            if bytes.starts(with: "h:".utf8) {
                self.deliverPositioned(topic: topic, channel: channel, payload: payload)
                return
            }
            if bytes.count >= self.header.count, bytes.starts(with: "m:".utf8), bytes[bytes.startIndex + self.header.count - 1] == 0x0A {
                // Our own publish came back: it was delivered locally already.
                if bytes.starts(with: self.header) { return }
                data.moveReaderIndex(forwardBy: self.header.count)
            }
            // Anything can PUBLISH to a shared Redis; clients are promised JSON in `data`.
            guard JSONScanner.isValue(data) else {
                if self.rejected.wrappingAdd(1, ordering: .relaxed).oldValue % 1000 == 0 {
                    self.logger.warning("ignored a message on Redis channel \(String(buffer: channel)) that is not JSON")
                }
                return
            }
            guard let receiver = self.receiver.withLockedValue({ $0 }) else { return }
            self.received.add(1, ordering: .relaxed)
            self.metrics.received.increment()
            receiver.receive(topic, data)
        }

        // MARK: Connections and reconnection (on the event loop)

        /// Connects `role`'s connection and installs it when ready.
        private func open(_ role: Role) -> EventLoopFuture<Void> {
            var callbacks = RedisConnector.Callbacks()
            callbacks.healthCheck = self.configuration.healthCheckInterval
            callbacks.pubSub = role == .subscriber
            if role == .subscriber {
                callbacks.onPush = { [weak self] value in self?.handlePush(value) }
            } else {
                callbacks.onDiscardedError = { [weak self] message in
                    guard let self else { return }
                    if self.errors.wrappingAdd(1, ordering: .relaxed).oldValue == 0 {
                        self.logger.error("Redis refused a PUBLISH: \(message)")
                    }
                }
                callbacks.onWritable = { [weak self] in self?.flushOutbox() }
                callbacks.onUnanswered = { [weak self] count, replay in self?.unanswered(count, replay: replay) }
            }
            return RedisConnector.connect(self.configuration, on: self.eventLoop, callbacks: callbacks)
                .hop(to: self.eventLoop)
                .map { channel in self.install(channel, as: role) }
        }

        private func install(_ channel: any Channel, as role: Role) {
            let links = self.links.value
            guard !links.closed else {
                channel.close(promise: nil)
                return
            }
            let attempts = links[role].backoff.failures
            if attempts > 0 && (attempts < 10 || attempts % 10 == 0) {  // a flapping endpoint does not flood the log
                self.logger.info("Redis \(role) connection is back after \(attempts) failed attempts")
            }
            links[role].channel = channel
            links[role].backoff.connected(at: .now())
            if links[role].wasLost {
                self.metrics.reconnects.increment()
                self.reconnects.add(1, ordering: .relaxed)
            }
            channel.closeFuture.hop(to: self.eventLoop).whenComplete { _ in self.connectionLost(channel, role) }
            switch role {
            case .publisher:
                let drops = self.outbox.withLockedValue { outbox in
                    defer { outbox.unreportedDrops = 0 }
                    outbox.connected = true
                    outbox.downSince = nil
                    return outbox.unreportedDrops
                }
                if drops > 0 { self.logger.warning("dropped \(drops) publishes while Redis was away") }
                self.flushOutbox()
                self.metrics.waiting.record(0)
                self.publisherBack()
            case .subscriber:
                self.subscriberUp.store(true, ordering: .relaxed)
                links.told = []
                links.unconfirmed = 0
                self.scheduleSync()
            }
            self.metrics.connected.record(self.isConnected ? 1 : 0)
        }

        private func connectionLost(_ channel: any Channel, _ role: Role) {
            let links = self.links.value
            guard links[role].channel === channel else { return }
            links[role].channel = nil
            links[role].backoff.lost(at: .now())
            links[role].wasLost = true
            switch role {
            case .publisher:
                // What is queued and not yet written waits for the link's return (reads fail:
                // their callers retry). What was written and not answered may or may not have
                // reached Redis: at most once.
                let waiting = self.outbox.withLockedValue { outbox in
                    defer {
                        outbox.connected = false
                        outbox.downSince = .now()
                        outbox.segments = outbox.segments.filter { if case .one = $0.replies { false } else { true } }
                        outbox.segmentBytes = outbox.segments.reduce(0) { $0 + $1.bytes.readableBytes }
                        outbox.flushScheduled = false
                    }
                    return outbox.segments
                }
                for segment in waiting {
                    if case .one(let promise) = segment.replies { promise.fail(RedisError.connectionClosed) }
                }
                self.metrics.waiting.record(self.outbox.withLockedValue { $0.waitingCommands })
            case .subscriber:
                self.subscriberUp.store(false, ordering: .relaxed)
                self.subscribedChannels.store(0, ordering: .relaxed)
                links.told = []
                links.confirmed = []
                links.continuity.linkLost()
            }
            self.metrics.connected.record(0)
            guard !links.closed else { return }
            self.logger.warning("Redis \(role) connection lost; reconnecting (local delivery continues)")
            self.scheduleReconnect(role)
        }

        /// Tries again after a delay that doubles with each failure (with jitter), up to the maximum.
        private func scheduleReconnect(_ role: Role) {
            let links = self.links.value
            guard !links.closed else { return }
            let delay = links[role].backoff.delay(jitter: Double.random(in: 0...1))
            links[role].reconnect = self.eventLoop.scheduleTask(in: delay) {
                self.links.value[role].reconnect = nil
                self.open(role).whenFailure { error in
                    let links = self.links.value
                    links[role].backoff.attemptFailed()
                    let failures = links[role].backoff.failures
                    if failures == 1 || failures % 10 == 0 {
                        self.logger.warning("Redis \(role) reconnect failed (\(failures) attempts): \(error)")
                    }
                    self.scheduleReconnect(role)
                }
            }
        }
    }
}
