import Foundation
import MizuHTTP
import NIOCore

/// No silent loss across the backplane: the broker runs a ``StreamContinuity`` on its event
/// loop, so each history topic reaches this node's sessions once, in offset order, with the
/// gaps pub/sub leaves (a reconnect of the subscriber link, a message it never got) read
/// from the topic's stream, and what the stream no longer holds told as a notice.
extension Live.RedisBroker {
    /// Reads each topic's epoch and top offset: `{e1, o1, e2, o2, ...}` ("" and "0" for a
    /// topic without history).
    static let positionsScript = """
        local out = {}
        for _, key in ipairs(KEYS) do
          local v = redis.call('HMGET', key, 'e', 'o')
          out[#out + 1] = v[1] or ''
          out[#out + 1] = v[2] or '0'
        end
        return out
        """

    /// Topics per position check script, so one script never holds Redis long.
    static let positionCheckBatch = 500

    /// A message with a stream position, from pub/sub (on the event loop).
    func receivePositioned(_ topic: String, _ entry: StreamContinuity.Entry) {
        let links = self.links.value
        // Redis sends a channel's messages only after it confirmed its SUBSCRIBE: one that
        // comes while the topic is unconfirmed was published before Redis took this node's
        // UNSUBSCRIBE (the topic may be wanted again meanwhile). It belongs to the old
        // subscription; tracking it would make the new one repair a "gap" it does not need
        // (its sessions read the history once the new SUBSCRIBE is confirmed).
        guard links.confirmed.contains(topic) else { return }
        if let waiting = links.awaitingHandOver[topic] {
            if waiting == nil { links.awaitingHandOver[topic] = .some(entry) }
            return
        }
        self.carryOut(links.continuity.received(topic, entry), fromPubSub: true)
    }

    func seedPosition(_ topic: String, epoch: String, top: UInt64) {
        self.eventLoop.execute {
            let links = self.links.value
            guard links.wanted.contains(topic) else { return }
            links.continuity.seed(topic, epoch: epoch, top: top)
        }
    }

    /// A cluster moved the topic's slot to `next`'s primary: this link stops carrying it (at
    /// once: what it still brings is not delivered) and `next` goes on from where this one's
    /// delivery stands, reading what its own subscription missed from the stream.
    func handOver(_ topic: String, to next: Live.RedisBroker?) {
        self.eventLoop.execute {
            let links = self.links.value
            let stream = links.continuity.streams[topic]
            links.wanted.remove(topic)
            links.confirmed.remove(topic)
            links.continuity.forget(topic)
            self.scheduleSync()
            guard let next else { return }
            let delivered = stream.flatMap { $0.epoch.isEmpty ? nil : Live.StreamPosition(offset: $0.offset, epoch: $0.epoch) }
            next.eventLoop.execute { next.handedOver(topic, delivered: delivered) }
        }
    }

    /// The previous shard's position for a topic moved here (nil: it had delivered none).
    /// Delivery goes on from it; a message that arrived meanwhile shows what to read back.
    private func handedOver(_ topic: String, delivered: Live.StreamPosition?) {
        let links = self.links.value
        guard let waiting = links.awaitingHandOver.removeValue(forKey: topic), links.wanted.contains(topic) else { return }
        let first = waiting ?? nil
        if let delivered {
            links.continuity.carryOn(topic, epoch: delivered.epoch, delivered: delivered.offset)
        } else if let first {
            // Nothing delivered here before: the stream goes on from just before the first
            // message that came.
            links.continuity.carryOn(topic, epoch: first.position.epoch, delivered: first.position.offset - 1)
        } else {
            return
        }
        // What came meanwhile (and anything missed before the subscription) is read back.
        if links.confirmed.contains(topic) { self.checkPositions([topic]) }
    }

    /// Redis confirmed a SUBSCRIBE: after a reconnect, a topic the node delivers may have
    /// missed messages meanwhile; its position is checked (coalesced per tick).
    func resubscribed(_ topic: String) {
        let links = self.links.value
        guard links.continuity.streams[topic] != nil else { return }
        links.positionChecks.insert(topic)
        guard !links.positionCheckScheduled else { return }
        links.positionCheckScheduled = true
        self.eventLoop.execute {
            let links = self.links.value
            links.positionCheckScheduled = false
            let topics = links.positionChecks
            links.positionChecks = []
            self.checkPositions(Array(topics))
        }
    }

    /// Every ``Configuration/streamCheckInterval``: gaps whose read failed are read again, and
    /// the position of every topic quiet since the last check is compared with the stream's
    /// (a gap on an active topic shows in its next message).
    func startStreamChecks() {
        let interval = self.configuration.streamCheckInterval
        self.eventLoop.execute {
            let links = self.links.value
            guard !links.closed, links.positionTimer == nil else { return }
            links.positionTimer = self.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
                let links = self.links.value
                guard !links.closed, self.isConnected else { return }
                self.carryOut(links.continuity.retry())
                self.checkPositions(links.continuity.quietTopics())
            }
        }
    }

    /// The publishing link (which carries the reads) is back: gaps whose read failed while it
    /// was down, and positions that could not be checked, are handled now, not at the next tick.
    func publisherBack() {
        let links = self.links.value
        self.carryOut(links.continuity.retry())
        self.checkPositions(links.continuity.streams.compactMap { $0.value.reading ? nil : $0.key })
    }

    // MARK: Carrying out the actions (on the event loop)

    func carryOut(_ actions: [StreamContinuity.Action], fromPubSub: Bool = false) {
        // The continuity counted these actions when it returned them: published before the
        // deliveries, so whoever sees a caught-up message also sees it counted.
        // A pub/sub message delivered as it came changes no count: the hot path skips this.
        let deliveredAsItCame = fromPubSub && actions.count == 1 && { if case .deliver = actions[0] { true } else { false } }()
        if !deliveredAsItCame { self.reportStreamCounts() }
        for action in actions {
            switch action {
            case .deliver(let topic, let entries):
                if let last = entries.last { self.floors.raise(topic, to: last.position) }
                guard let receiver = self.positionedReceiver.withLockedValue({ $0 }) else { continue }
                for entry in entries { receiver.receive(topic, entry.data, entry.position) }
            case .notice(let topic, let position):
                self.positionedReceiver.withLockedValue({ $0 })?.notice(topic, position)
                if self.streamGapLog.allows() {
                    self.logger.warning(
                        "messages of a history topic were lost and are no longer in Redis; its sessions were told",
                        metadata: ["topic": "\(LogSafe(topic))", "resumeAfter": "\(position.offset)", "epoch": "\(LogSafe(position.epoch))"])
                }
            case .read(let topic, let after):
                self.readGap(topic, after: after)
            case .streamBehind(let topic, let delivered):
                self.beginNewEpoch(topic, below: delivered)
            }
        }
    }

    private func reportStreamCounts() {
        let links = self.links.value
        let counts = links.continuity.counts
        let reported = links.reportedCounts
        guard counts != reported else { return }
        links.reportedCounts = counts
        self.metrics.gaps.increment(by: counts.gaps - reported.gaps)
        self.metrics.caughtUp.increment(by: counts.caughtUp - reported.caughtUp)
        self.metrics.unfillable.increment(by: counts.unfillable - reported.unfillable)
        self.metrics.rewound.increment(by: counts.behind - reported.behind)
        self.streamsRewound.store(counts.behind, ordering: .relaxed)
        self.streamGaps.store(counts.gaps, ordering: .relaxed)
        self.streamCaughtUp.store(counts.caughtUp, ordering: .relaxed)
        self.streamUnfillable.store(counts.unfillable, ordering: .relaxed)
        if counts.gaps > reported.gaps, self.streamGapLog.allows() {
            self.logger.info("a history topic missed messages on the Redis link; reading them from its stream", metadata: ["gaps": "\(counts.gaps)"])
        }
    }

    /// Reads the topic's stream after `offset` for the continuity.
    private func readGap(_ topic: String, after offset: UInt64) {
        let arguments: [EvalArgument] = [
            .text(self.keyspace.key("history", topic)), .text(self.keyspace.key("history-meta", topic)),
            .text(String(offset)), .text(String(StreamContinuity.readCount)),
        ]
        self.enqueueRequest { Self.writeEval(Self.readScript, keys: 2, arguments, into: &$0) }
            .flatMapThrowing { try Self.parseRead($0) }
            .hop(to: self.eventLoop)
            .whenComplete { result in
                let links = self.links.value
                switch result {
                case .success(let read):
                    let entries = read.entries.map { StreamContinuity.Entry(position: Live.StreamPosition(offset: $0.offset, epoch: read.epoch), data: $0.data) }
                    self.carryOut(links.continuity.readCompleted(topic, epoch: read.epoch, top: read.top, entries: entries))
                case .failure(let error):
                    // Read again by the next check (or after the next resubscribe).
                    links.continuity.readFailed(topic)
                    if self.streamGapLog.allows() {
                        self.logger.warning("could not read a history topic's gap from Redis; retrying", metadata: ["topic": "\(LogSafe(topic))", "error": "\(error)"])
                    }
                }
            }
    }

    /// Begins a new epoch for a stream that lost messages this node delivered (Redis
    /// replicates asynchronously: a promoted replica can lack its old primary's last writes),
    /// unless another node or a publish did already.
    private func beginNewEpoch(_ topic: String, below delivered: Live.StreamPosition) {
        let arguments: [EvalArgument] = [
            .text(self.keyspace.key("history", topic)), .text(self.keyspace.key("history-meta", topic)),
            .text(delivered.epoch), .text(String(delivered.offset)), .text(newEpoch()),
            .text(String(max(1, self.configuration.historyMetaTTL.nanoseconds / 1_000_000))),
        ]
        self.enqueueRequest { Self.writeEval(Self.newEpochScript, keys: 2, arguments, into: &$0) }
            .hop(to: self.eventLoop)
            .whenComplete { result in
                if case .success(.integer(1)) = result {
                    self.logger.warning(
                        "a history stream had lost messages this node delivered (a Redis failover to a replica that lacked them): a new epoch begins, its sessions are told",
                        metadata: ["topic": "\(LogSafe(topic))", "delivered": "\(delivered.offset)"])
                }
            }
    }

    /// Compares the node's positions with the streams' (one script per batch of topics; on a
    /// cluster, per batch of topics in one slot, as a script's keys must be).
    func checkPositions(_ topics: [String]) {
        let groups = self.keyspace.sharded ? Array(Dictionary(grouping: topics, by: self.keyspace.slot).values) : [topics]
        for group in groups { self.checkPositions(ofOneSlot: group) }
    }

    private func checkPositions(ofOneSlot topics: [String]) {
        var start = 0
        while start < topics.count {
            let batch = Array(topics[start..<min(start + Self.positionCheckBatch, topics.count)])
            start += batch.count
            let keys = batch.map { EvalArgument.text(self.keyspace.key("history-meta", $0)) }
            self.enqueueRequest { Self.writeEval(Self.positionsScript, keys: keys.count, keys, into: &$0) }
                .hop(to: self.eventLoop)
                .whenSuccess { reply in
                    guard case .array(let items?) = reply, items.count == batch.count * 2 else { return }
                    var positions: [(topic: String, epoch: String, top: UInt64)] = []
                    positions.reserveCapacity(batch.count)
                    for (index, topic) in batch.enumerated() {
                        positions.append((topic, items[2 * index].text ?? "", items[2 * index + 1].text.flatMap { UInt64($0) } ?? 0))
                    }
                    self.carryOut(self.links.value.continuity.positions(positions))
                }
        }
    }

    /// The local ports of the publisher and subscriber connections (nil while down): a test
    /// takes one down with `CLIENT KILL ADDR`.
    func linkPorts() async throws -> (publisher: Int?, subscriber: Int?) {
        try await self.eventLoop.submit {
            let links = self.links.value
            return (links.publisher.channel?.localAddress?.port, links.subscriber.channel?.localAddress?.port)
        }.get()
    }
}

extension Live.RedisBroker {
    /// Ends `role`'s link from this side (tests): `reset` sends a TCP reset, so Redis drops
    /// what it has not yet read of it; otherwise Redis reads and runs everything written
    /// before the close, and its answers never arrive.
    func dropLink(_ role: Role, reset: Bool) async throws {
        try await self.eventLoop.flatSubmit { () -> EventLoopFuture<Void> in
            guard let channel = self.links.value[role].channel else { return self.eventLoop.makeSucceededVoidFuture() }
            guard reset, let socket = channel as? any SocketOptionProvider else { return channel.close() }
            return socket.setSoLinger(linger(l_onoff: 1, l_linger: 0)).flatMap { channel.close() }
        }.get()
    }
}
