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
            /// History streams found below what this node delivered from them (a failover to
            /// a replica that lacked the last writes): a new epoch was asked for.
            public var rewoundStreams = 0

            /// Adds another broker's counters (a cluster's shards make one total).
            mutating func add(_ other: Statistics) {
                self.published += other.published
                self.dropped += other.dropped
                self.received += other.received
                self.errors += other.errors
                self.subscribedChannels += other.subscribedChannels
                self.rejected += other.rejected
                self.reconnects += other.reconnects
                self.streamGaps += other.streamGaps
                self.caughtUp += other.caughtUp
                self.unfillableGaps += other.unfillableGaps
                self.waiting += other.waiting
                self.unconfirmed += other.unconfirmed
                self.replayed += other.replayed
                self.rewoundStreams += other.rewoundStreams
            }
        }

        /// The settings it was connected with.
        public let configuration: Configuration
        private static let dropReportInterval = TimeAmount.seconds(5)
        /// Marks this node's messages on Redis (16 random hex digits).
        let nodeID: String
        /// A cluster's numbering of history publishes, shared by its shards (nil: one Redis).
        let sharedOrder: SharedPublishOrder?
        /// What this node delivered of each topic, named in its publishes (``StreamFloors``).
        let floors: StreamFloors
        let header: [UInt8]
        /// The topics' Redis names and pub/sub commands (one Redis, or one shard of a cluster).
        let keyspace: RedisKeyspace
        /// A shard of a ``RedisClusterBroker``: told when Redis says a topic's slot is served
        /// elsewhere (a redirect on a command, or an unrequested SUNSUBSCRIBE).
        let slotMoved = NIOLockedValueBox<SlotMovedHandler?>(nil)
        struct SlotMovedHandler {
            let moved: @Sendable (_ topic: String?) -> Void
            /// A command Redis answered with a cluster error (its bytes when it may be written
            /// again elsewhere; nil for a plain publish, given up).
            let redirected: @Sendable (_ command: ByteBuffer?, _ error: ClusterRedirect, _ by: RedisBroker) -> Void
        }
        let eventLoop: any EventLoop
        let logger: Logger
        /// Dropped presence writes are logged once per 10 s at most.
        let presenceDropLog = LogThrottle(every: .seconds(10))
        /// What waits to be written on the publishing link (``RedisOutbox``).
        let outbox: NIOLockedValueBox<RedisOutbox>
        let links: NIOLoopBoundBox<Links>
        /// The receivers are held in structs, never as bare closures in a generic box: reading
        /// a bare function value out of one through `inout` re-abstracts it and writes the
        /// wrapper back, so every read added a thunk (96 bytes of stack and a call per
        /// message received so far: a node crashed after some 10^5 messages).
        let receiver = NIOLockedValueBox<Receiver?>(nil)
        /// Where messages with a stream position (history topics) go.
        let positionedReceiver = NIOLockedValueBox<PositionedReceiver?>(nil)
        struct Receiver {
            let receive: @Sendable (String, ByteBuffer) -> Void
        }
        struct PositionedReceiver {
            let receive: @Sendable (String, ByteBuffer, StreamPosition) -> Void
            let notice: @Sendable (String, StreamPosition) -> Void
        }
        let published = Atomic<Int>(0)
        let dropped = Atomic<Int>(0)
        let received = Atomic<Int>(0)
        let errors = Atomic<Int>(0)
        let subscribedChannels = Atomic<Int>(0)
        let rejected = Atomic<Int>(0)
        let reconnects = Atomic<Int>(0)
        let unconfirmed = Atomic<Int>(0)
        let replayed = Atomic<Int>(0)
        /// ``StreamContinuity/Counts``, readable from any thread.
        let streamGaps = Atomic<Int>(0)
        let streamCaughtUp = Atomic<Int>(0)
        let streamUnfillable = Atomic<Int>(0)
        let streamsRewound = Atomic<Int>(0)
        /// Stream gaps are logged once per 10 s at most.
        let streamGapLog = LogThrottle(every: .seconds(10))
        let subscriberUp = Atomic<Bool>(false)
        let metrics: BrokerMetrics

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
            try await self.connect(configuration, sharded: false, eventLoopGroup: eventLoopGroup, logger: logger)
        }

        /// `sharded`: a shard of a Redis Cluster (hash-tagged names, sharded pub/sub).
        static func connect(
            _ configuration: Configuration, sharded: Bool, slotMoved: SlotMovedHandler? = nil, headerID: String? = nil,
            publishOrder: SharedPublishOrder? = nil, floors: StreamFloors? = nil, eventLoopGroup: any EventLoopGroup, logger: Logger
        ) async throws -> RedisBroker {
            let broker = RedisBroker(
                configuration, sharded: sharded, headerID: headerID, publishOrder: publishOrder, floors: floors ?? StreamFloors(),
                eventLoop: eventLoopGroup.next(), logger: logger)
            if let slotMoved { broker.slotMoved.withLockedValue { $0 = slotMoved } }
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

        /// `headerID`: the id this node's messages carry (a cluster's shards share one, so a
        /// message published through one shard and received through another is still known
        /// as this node's). `publishOrder`: the numbering of history publishes the shards share
        /// (with their id in Redis); without it this broker numbers its own, in queue order.
        /// `floors`: the positions delivered per topic (a cluster's shards share them).
        private init(
            _ configuration: Configuration, sharded: Bool, headerID: String?, publishOrder: SharedPublishOrder?, floors: StreamFloors,
            eventLoop: any EventLoop, logger: Logger
        ) {
            self.configuration = configuration
            self.sharedOrder = publishOrder
            self.floors = floors
            self.keyspace = RedisKeyspace(prefix: configuration.channelPrefix, sharded: sharded)
            self.eventLoop = eventLoop
            self.logger = logger
            self.metrics = BrokerMetrics(
                factory: configuration.metricsFactory ?? MetricsSystem.factory,
                dimensions: sharded ? [("shard", "\(configuration.host):\(configuration.port)")] : [])
            var generator = SystemRandomNumberGenerator()
            let digits = String(generator.next() as UInt64, radix: 16)
            self.nodeID = String(repeating: "0", count: 16 - digits.count) + digits
            self.header = Array("m:\(headerID ?? self.nodeID)\n".utf8)
            self.outbox = NIOLockedValueBox(RedisOutbox(limits: RedisOutbox.Limits(
                maxPendingBytes: configuration.maxPendingPublishBytes, maxWait: configuration.maxPublishWait,
                replayWindow: configuration.replayWindow, dropReportInterval: Self.dropReportInterval)))
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
                replayed: self.replayed.load(ordering: .relaxed), rewoundStreams: self.streamsRewound.load(ordering: .relaxed))
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
            let channel = self.keyspace.channel(topic)
            let channelLength = channel.utf8.count
            let payloadLength = self.header.count + data.count
            let command = self.keyspace.publishCommand
            // `*3 $8 SPUBLISH $n <channel> $n <payload>`: 40 bytes cover the framing.
            return self.enqueue(size: 40 + channelLength + payloadLength, countsAsPublish: true) { bytes, _ in
                RESPValue.writeArrayHeader(count: 3, into: &bytes)
                RESPValue.writeBulkString(command, into: &bytes)
                RESPValue.writeBulkString(length: channelLength, into: &bytes) {
                    $0.writeString(channel)
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
            let outcome = self.outbox.withLockedValue {
                $0.enqueue(size: size, countsAsPublish: countsAsPublish, replayable: replayable, now: .now(), write)
            }
            return self.settle(outcome, countsAsPublish: countsAsPublish)
        }

        /// Carries out what the outbox answered to a command queued: a flush asked for, or a
        /// drop counted and reported.
        private func settle(_ outcome: RedisOutbox.EnqueueOutcome, countsAsPublish: Bool) -> Bool {
            switch outcome {
            case .queued(let scheduleFlush, let waiting):
                if let waiting { self.metrics.waiting.record(waiting) }
                if scheduleFlush { self.eventLoop.execute { self.flushOutbox() } }
                return true
            case .dropped(let report):
                guard countsAsPublish else { return false }
                self.dropped.add(1, ordering: .relaxed)
                self.metrics.dropped.increment()
                if let report, report > 0 {
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
            switch self.outbox.withLockedValue({ $0.enqueueRequest(command, promise: promise) }) {
            case .disconnected: promise.fail(RedisError.connectionClosed)
            case .overloaded: promise.fail(RedisError.overloaded)
            case .queued(let scheduleFlush): if scheduleFlush { self.eventLoop.execute { self.flushOutbox() } }
            }
            return promise.futureResult
        }

        public func subscribe(_ topic: String) {
            self.eventLoop.execute {
                self.links.value.wanted.insert(topic)
                self.scheduleSync()
            }
        }

        /// A cluster moved `topic` here from another shard: subscribed, and its positioned
        /// messages are not delivered until that shard hands its position over (``handOver``):
        /// one arriving first would otherwise be taken as the topic's position and the messages
        /// between the two hidden. Those that arrive meanwhile are read back from the stream.
        func subscribeMoved(_ topic: String) {
            self.eventLoop.execute {
                let links = self.links.value
                links.wanted.insert(topic)
                links.awaitingHandOver[topic] = .some(nil)
                self.scheduleSync()
            }
        }

        public func unsubscribe(_ topic: String) {
            self.eventLoop.execute {
                self.links.value.wanted.remove(topic)
                self.links.value.awaitingHandOver[topic] = nil
                self.links.value.continuity.forget(topic)
                self.floors.forget(topic)
                self.scheduleSync()
            }
        }

        /// Queues a command made by another shard of the cluster (its slot moved here): written
        /// as it is, again after a lost link if need be. False when this outbox cannot take it.
        func enqueueMoved(_ command: ByteBuffer) -> Bool {
            self.enqueue(size: command.readableBytes, countsAsPublish: true, replayable: true) { bytes, _ in
                bytes.writeImmutableBuffer(command)
            }
        }

        /// Queues a command another primary answered with `ASK` (its slot is being migrated
        /// here and its keys are here already) right behind an `ASKING`, which lets this
        /// primary run that one command before the slot is its own. Both or neither: queued
        /// under one lock, so nothing comes between them. A replay after a lost link writes
        /// the command alone (it is then refused again and asked again).
        func enqueueAsking(_ command: ByteBuffer) -> Bool {
            let asking = "*1\r\n$6\r\nASKING\r\n"
            let outcome = self.outbox.withLockedValue { outbox -> RedisOutbox.EnqueueOutcome in
                let now = NIODeadline.now()
                guard outbox.pendingBytes + asking.utf8.count + command.readableBytes <= outbox.limits.maxPendingBytes,
                      case .queued(let scheduleFlush, _) = outbox.enqueue(
                        size: asking.utf8.count, countsAsPublish: false, replayable: false, now: now, { bytes, _ in bytes.writeString(asking) })
                else { return .dropped(report: nil) }
                let queued = outbox.enqueue(size: command.readableBytes, countsAsPublish: true, replayable: true, now: now) { bytes, _ in
                    bytes.writeImmutableBuffer(command)
                }
                guard case .queued(_, let waiting) = queued else { return queued }
                return .queued(scheduleFlush: scheduleFlush, waiting: waiting)
            }
            return self.settle(outcome, countsAsPublish: true)
        }

        /// Returns once every command queued before it has been answered (its reply comes
        /// after theirs): a cluster knows then that whatever this primary refused has come
        /// back. While the link is down nothing is answered, and what waits for its return
        /// would reach this primary after the cluster wrote later publishes of the same topics
        /// elsewhere (and be refused, then skipped there as applied already): so the history
        /// publishes of the slots `heldSlots` names are taken out and returned, oldest first,
        /// to be written with the rest of what the cluster holds. Presence writes stay: they
        /// are never held, and taken out they could land behind a later one of their member.
        /// An `ASKING` queued before a taken command stays, and applies to the next command:
        /// one for a slot this primary serves, or asked there with its own `ASKING`.
        func barrier(heldSlots: () -> Set<Int>) async -> [ByteBuffer] {
            var taken: [ByteBuffer] = []
            while true {
                do {
                    _ = try await self.request("PING") { RESPValue.writeCommand(["PING"], into: &$0) }
                    return taken
                } catch RedisError.refused {
                    return taken  // an error reply still comes after the replies before it
                } catch RedisError.overloaded {
                    // The link is up and its queue full: answers are coming; ask again shortly.
                    try? await Task.sleep(for: .milliseconds(10))
                } catch {
                    let slots = heldSlots()
                    let (more, connected, waiting) = self.outbox.withLockedValue { outbox in
                        let more = outbox.takeReplayable(now: .now()) { command in
                            guard let slot = Live.RedisClusterBroker.slot(ofCommand: command), slots.contains(slot) else { return false }
                            return PublishOrder.inspect(command) != nil
                        }
                        return (more, outbox.connected, outbox.waitingCommands)
                    }
                    taken += more
                    if !more.isEmpty { self.metrics.waiting.record(waiting) }
                    // Back already: what it wrote meanwhile is answered before another PING.
                    guard connected else { return taken }
                }
            }
        }

        /// Stops this link for good and returns what waited on it (this primary no longer serves
        /// any slot): the commands that may be written elsewhere, in order; plain publishes
        /// are given up (counted as dropped), reads fail.
        func retire() async -> [ByteBuffer] {
            let taken = self.outbox.withLockedValue { $0.takeAll(now: .now()) }
            for read in taken.reads { read.fail(RedisError.connectionClosed) }
            if taken.givenUp > 0 {
                self.dropped.add(taken.givenUp, ordering: .relaxed)
                self.metrics.dropped.increment(by: taken.givenUp)
                self.logger.warning("\(taken.givenUp) plain publishes waited for a Redis Cluster primary that no longer serves their slot: dropped")
            }
            await self.close()
            // What a dying link handed back after the take (its close runs on the event loop).
            let late = self.outbox.withLockedValue { $0.takeAll(now: .now()) }
            for read in late.reads { read.fail(RedisError.connectionClosed) }
            let expired = taken.expired + late.expired
            if expired > 0 { self.unanswered(expired, replay: [], reason: "came back after the replay window") }
            // Oldest first: what was written and never answered came before what was still queued.
            return late.commands + taken.commands
        }

        // MARK: Publishing (on the event loop)

        /// Writes everything queued since the last flush as one pipelined batch. While the
        /// socket is not writable the batch waits (flushScheduled stays set, so publishers do
        /// not schedule more flushes); the handler calls back when it drains.
        func flushOutbox() {
            guard let channel = self.links.value.publisher.channel else { return }
            // A link that died and is not yet known lost (its close callback is still to run)
            // takes nothing: what it took would be neither answered nor handed back.
            guard channel.isActive, channel.isWritable else { return }
            let (requests, expired) = self.outbox.withLockedValue { $0.takeForFlush(now: .now(), allocator: channel.allocator) }
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
        func unanswered(_ count: Int, replay: [ByteBuffer], reason: String = "died before answering them") {
            if !replay.isEmpty {
                self.outbox.withLockedValue { $0.handBack(replay, now: .now()) }
                self.replayed.add(replay.count, ordering: .relaxed)
                self.metrics.replayed.increment(by: replay.count)
            }
            let lost = count - replay.count
            guard lost > 0 else { return }
            self.unconfirmed.add(lost, ordering: .relaxed)
            self.metrics.unconfirmed.increment(by: lost)
            self.logger.warning("\(lost) commands (plain publishes, or history publishes whose link \(reason)) were written to Redis and never answered: they may or may not have reached it")
        }

        /// A plain publish a cluster node refused (its slot moved): written at most once, so it
        /// is not sent again; counted as dropped and logged (at most once per 10 s).
        func countRedirectedPlainPublish(_ message: String) {
            self.dropped.add(1, ordering: .relaxed)
            self.metrics.dropped.increment()
            if self.presenceDropLog.allows() {
                self.logger.warning("a plain publish was refused by a Redis Cluster node (its slot moved): dropped", metadata: ["error": "\(message)"])
            }
        }

        func countPublished(_ count: Int) {
            self.published.add(count, ordering: .relaxed)
            self.metrics.published.increment(by: count)
        }

    }
}
