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
    func handlePush(_ value: RESPValue) {
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
                promise.fail(Live.RedisError.timeout)
            }
        }
        try await promise.futureResult.get()
    }

    func deliver(channel: ByteBuffer, payload: ByteBuffer) {
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
}
