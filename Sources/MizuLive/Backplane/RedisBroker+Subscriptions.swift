import MizuHTTP
import MizuWebSocket
import NIOCore

/// The subscribing link: the topics wanted kept in step with Redis in bounded batches, the
/// pushes it answers with, and each message handed to the server.
extension Live.RedisBroker {
    // MARK: Subscriptions (on the event loop)

    /// Coalesces the subscription changes of one tick into one SUBSCRIBE and one UNSUBSCRIBE.
    func scheduleSync() {
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
    func syncSubscriptions() {
        let links = self.links.value
        links.syncScheduled = false
        guard let channel = links.subscriber.channel, links.awaiting.isEmpty else { return }
        let names = self.keyspace
        // Never an empty UNSUBSCRIBE: with no channel it would drop them all.
        for (subscribe, pending) in [(true, links.wanted.subtracting(links.told)), (false, links.told.subtracting(links.wanted))] {
            guard !pending.isEmpty else { continue }
            var batch: [(topic: String, channel: String)] = []
            var size = 0
            for topic in pending {
                let name = names.channel(topic)
                if !batch.isEmpty, size + name.utf8.count > Self.subscriptionBatchBytes { break }
                batch.append((topic, name))
                size += name.utf8.count
            }
            let command = subscribe ? names.subscribeCommand : names.unsubscribeCommand
            var bytes = channel.allocator.buffer(capacity: 32 + size + batch.count * (names.sharded ? 40 : 16))
            if names.sharded {
                // A cluster takes the channels of one slot per command: one command each,
                // pipelined, each answered on its own.
                for entry in batch { RESPValue.writeCommand([command, entry.channel], into: &bytes) }
            } else {
                RESPValue.writeCommand([command] + batch.map(\.channel), into: &bytes)
            }
            let topics = batch.map(\.topic)
            if subscribe {
                links.told.formUnion(topics)
            } else {
                links.told.subtract(topics)
                // Not subscribed from now on, whatever an older confirmation said: a
                // recovery that asks meanwhile waits for the next SUBSCRIBE's confirmation
                // (otherwise it reads the history while messages go unseen: a gap).
                links.confirmed.subtract(topics)
            }
            for topic in topics { links.awaiting.append((subscribe, topic)) }
            channel.writeAndFlush(RedisRequest(bytes: bytes, replies: .none), promise: nil)
            return
        }
    }

    /// A pub/sub push: a message to deliver, or a (un)subscribe confirmation with the count;
    /// or an error answering a (un)subscribe (a cluster's redirect: the slot is elsewhere).
    func handlePush(_ value: RESPValue) {
        let names = self.keyspace
        if case .error(let message) = value {
            self.subscribeRefused(message)
            return
        }
        guard case .array(let items?) = value, items.count == 3, case .bulkString(let kind?) = items[0] else { return }
        switch (String(buffer: kind), items[1], items[2]) {
        case (names.messagePush, .bulkString(let channel?), .bulkString(let payload?)):
            self.deliver(channel: channel, payload: payload)
        case (let kind, .bulkString(let channel?), .integer(let count)) where kind == names.subscribePush || kind == names.unsubscribePush:
            self.subscribedChannels.store(Int(count), ordering: .relaxed)
            let links = self.links.value
            let subscribed = kind == names.subscribePush
            let topic = names.topic(ofChannel: channel.readableBytesView)
            let requested = topic != nil && links.awaiting.first.map { $0.subscribe == subscribed && $0.topic == topic } == true
            if requested {
                links.awaiting.removeFirst()
                if links.awaiting.isEmpty, links.wanted != links.told { self.scheduleSync() }
            }
            guard let topic else { return }
            if subscribed {
                links.confirmed.insert(topic)
                for waiter in links.readyWaiters.removeValue(forKey: topic) ?? [] { waiter.succeed() }
                self.resubscribed(topic)
            } else {
                links.confirmed.remove(topic)
                // Unasked: a cluster dropped the channel (its slot moved, or this primary was
                // demoted). What is published meanwhile is read back once it is subscribed again.
                if !requested, links.told.remove(topic) != nil { self.lostSlot(of: topic) }
            }

        default:
            break
        }
    }

    /// Redis answered a (un)subscribe with an error: on a cluster, `MOVED` (the slot is
    /// served elsewhere). The command is done with; its topic is handed to the cluster broker.
    private func subscribeRefused(_ message: String) {
        let links = self.links.value
        guard let refused = links.awaiting.popFirst() else { return }
        if links.awaiting.isEmpty, links.wanted != links.told { self.scheduleSync() }
        guard refused.subscribe else { return }
        links.told.remove(refused.topic)
        if self.streamGapLog.allows() {
            self.logger.warning("Redis refused a subscription", metadata: ["topic": "\(LogSafe(refused.topic))", "error": "\(message)"])
        }
        self.lostSlot(of: refused.topic)
    }

    /// A topic this node wants is no longer carried by this link: on a cluster, the owner of
    /// its slot is asked again (the topic then moves to another shard's link).
    func lostSlot(of topic: String?) {
        if let topic { self.links.value.continuity.subscriptionLost(topic) }
        self.slotMoved.withLockedValue { $0 }?.moved(topic)
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
                promise.fail(Live.RedisError.timeout)
            }
        }
        try await promise.futureResult.get()
    }

    func deliver(channel: ByteBuffer, payload: ByteBuffer) {
        guard let topic = self.keyspace.topic(ofChannel: channel.readableBytesView) else { return }
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
}
