import NIOCore

/// The broker's two links to Redis: their state (confined to the broker's event loop), how
/// each is opened and installed, what its loss changes, and the reconnect with backoff.
extension Live.RedisBroker {
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
        /// Topics moved here from another shard whose position is not handed over yet, each
        /// with the first message that arrived meanwhile (not delivered: read back after).
        var awaitingHandOver: [String: StreamContinuity.Entry?] = [:]
        /// Waiting for a topic's confirmation (``subscriptionReady(_:)``).
        var readyWaiters: [String: [EventLoopPromise<Void>]] = [:]
        var syncScheduled = false
        /// (Un)subscribe confirmations still to come for the batch on the wire, in order: the
        /// next batch waits for them, so Redis never holds more replies for this node than one
        /// batch's worth (its pub/sub output buffer limit drops the connection past it).
        var awaiting = CircularBuffer<(subscribe: Bool, topic: String)>()
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

    // MARK: Connections and reconnection (on the event loop)

    /// Connects `role`'s connection and installs it when ready.
    func open(_ role: Role) -> EventLoopFuture<Void> {
        var callbacks = RedisConnector.Callbacks()
        callbacks.healthCheck = self.configuration.healthCheckInterval
        callbacks.pubSub = role == .subscriber
        if role == .subscriber {
            callbacks.onPush = { [weak self] value in self?.handlePush(value) }
        } else {
            let address = ClusterNodeAddress(host: self.configuration.host, port: self.configuration.port)
            callbacks.onDiscardedError = { [weak self] message, command in
                guard let self else { return }
                if self.keyspace.sharded, let handler = self.slotMoved.withLockedValue({ $0 }) {
                    let redirect = ClusterRedirect(error: message, asked: address)
                    if redirect != .other {
                        if command == nil { self.countRedirectedPlainPublish(message) }
                        handler.redirected(command, redirect, self)
                        return
                    }
                }
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

    func install(_ channel: any Channel, as role: Role) {
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
            let drops = self.outbox.withLockedValue { $0.linkUp() }
            if drops > 0 { self.logger.warning("dropped \(drops) publishes while Redis was away") }
            self.flushOutbox()
            self.metrics.waiting.record(0)
            self.publisherBack()
        case .subscriber:
            self.subscriberUp.store(true, ordering: .relaxed)
            links.told = []
            links.awaiting.removeAll()
            self.scheduleSync()
        }
        self.metrics.connected.record(self.isConnected ? 1 : 0)
    }

    func connectionLost(_ channel: any Channel, _ role: Role) {
        let links = self.links.value
        guard links[role].channel === channel else { return }
        links[role].channel = nil
        links[role].backoff.lost(at: .now())
        links[role].wasLost = true
        switch role {
        case .publisher:
            // What is queued and not yet written waits for the link's return (reads fail:
            // their callers retry). What was written and not answered came back through
            // the reply handler (`unanswered`): replayed, or counted as unconfirmed.
            for read in self.outbox.withLockedValue({ $0.linkLost(now: .now()) }) { read.fail(Live.RedisError.connectionClosed) }
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
        // On a cluster the node may be gone for good (its replica takes over): ask the map.
        if self.keyspace.sharded { self.slotMoved.withLockedValue { $0 }?.moved(nil) }
        self.scheduleReconnect(role)
    }

    /// Tries again after a delay that doubles with each failure (with jitter), up to the maximum.
    func scheduleReconnect(_ role: Role) {
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
