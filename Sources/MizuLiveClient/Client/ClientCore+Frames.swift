import MizuWebSocket
import NIOCore

/// A connection's life as the core sees it: open (subscribe again, send what waited), frames
/// (answers, messages, notices), close (what was in flight).
extension ClientCore {
    /// On the connection's event loop, before any of its frames.
    func opened(_ connection: WebSocketConnection, generation: Int) {
        self.withState { state, effects in
            guard !state.closing else {
                effects.close = (connection, "client closed")
                return
            }
            state.connection = connection
            state.generation = generation
            // Subscriptions first, in the order they were made, so what the queue holds next
            // (a publish) comes after them.
            for topic in state.order { self.resubscribe(topic, in: &state, &effects) }
            for id in state.unsent {
                guard var request = state.requests[id] else { continue }
                effects.sends.append((connection, request.frame))
                if case .message = request.kind {
                    state.requests[id] = nil
                    continue
                }
                request.sentOn = generation
                request.timeout?.cancel()  // the wait for a connection is over
                request.timeout = self.scheduleTimeout(id, generation: generation, on: connection)
                state.requests[id] = request
            }
            state.unsent = []
            state.unsentBytes = 0
            self.setConnectionState(.connected, in: &state, &effects)
        }
    }

    /// On the connection's event loop, once it has ended.
    func closed(generation: Int) {
        self.withState { state, effects in
            guard state.generation == generation, state.connection != nil else { return }
            state.connection = nil
            // Reads are sent again on the next connection, in their order; a publish may or may
            // not have happened: its caller is told. Subscribes are made afresh.
            var again: [UInt64] = []
            for (id, request) in state.requests where request.sentOn == generation {
                request.timeout?.cancel()
                switch request.kind {
                case .subscribe, .message:
                    state.requests[id] = nil
                case .call(let continuation):
                    if request.command.isIdempotent {
                        state.requests[id]?.sentOn = nil
                        state.requests[id]?.timeout = self.scheduleQueuedTimeout(id)
                        again.append(id)
                    } else {
                        state.requests[id] = nil
                        effects.replies.append((continuation, .failure(.connectionLost)))
                    }
                }
            }
            state.unsent = again.sorted() + state.unsent
            state.unsentBytes = state.unsent.reduce(0) { $0 + (state.requests[$1]?.frame.readableBytes ?? 0) }
            for topic in state.order where state.subscriptions[topic]?.phase != .paused {
                state.subscriptions[topic]?.phase = .detached
            }
            self.signalFlushedIfIdle(&state, &effects)
        }
    }

    /// On the connection's event loop, for each message.
    func received(_ message: WebSocketMessage, generation: Int) {
        let frame = ServerFrame.parse(Array(message.data.readableBytesView))
        self.withState { state, effects in
            guard state.generation == generation, state.connection != nil else { return }
            switch frame {
            case .reply(let id, let reply):
                self.answer(id, reply, in: &state, &effects)
            case .message(let message):
                self.deliver(message, in: &state, &effects)
            case .notice(let topic, let position):
                guard var record = state.subscriptions[topic], record.phase == .active else { return }
                record.tracker.notice(position)
                state.subscriptions[topic] = record
                if !record.subscription.buffer.push(.missed(resumesAfter: position)) {
                    state.subscriptions[topic]?.phase = .paused
                }
            case .unreadable:
                state.unreadable += 1
            }
        }
    }

    private func answer(_ id: UInt64, _ reply: ServerFrame.Reply, in state: inout State, _ effects: inout Effects) {
        guard let request = state.requests.removeValue(forKey: id) else {
            state.unreadable += 1
            return
        }
        request.timeout?.cancel()
        defer { self.signalFlushedIfIdle(&state, &effects) }
        switch request.kind {
        case .message:
            break
        case .call(let continuation):
            switch reply {
            case .result(let result): effects.replies.append((continuation, .success(result)))
            case .error(let code, let message, let temporary):
                effects.replies.append((continuation, .failure(.server(code: code, message: message, temporary: temporary))))
            }
        case .subscribe(let topic, let askedAfter, let history):
            guard var record = state.subscriptions[topic], record.phase == .subscribing(id) else { return }
            switch reply {
            case .result(let result):
                guard let subscribed = CommandResults.subscribed(result) else {
                    self.end(topic, record, .invalidReply, in: &state, &effects)
                    return
                }
                let missed = record.tracker.subscribed(
                    recovered: subscribed.recovered, at: subscribed.position, askedAfter: askedAfter, history: history)
                record.phase = .active
                if let waiter = record.waiter {
                    record.waiter = nil
                    effects.subscribed.append((waiter, .success(())))
                }
                state.subscriptions[topic] = record
                if missed, !record.subscription.buffer.push(.missed(resumesAfter: subscribed.position)) {
                    state.subscriptions[topic]?.phase = .paused
                }
            case .error(let code, let message, let temporary):
                let error = LiveClientError.server(code: code, message: message, temporary: temporary)
                if record.waiter == nil, temporary, let connection = state.connection {
                    // The server may manage next time (its store was away): ask again shortly.
                    record.phase = .detached
                    state.subscriptions[topic] = record
                    let generation = state.generation
                    connection.eventLoop.scheduleTask(in: .seconds(1)) { [weak self] in
                        self?.withState { state, effects in
                            guard state.generation == generation, state.subscriptions[topic]?.phase == .detached else { return }
                            self?.resubscribe(topic, in: &state, &effects)
                        }
                    }
                } else {
                    self.end(topic, record, error, in: &state, &effects)
                }
            }
        }
    }

    /// The subscription is over for good: its caller or its consumer is told why.
    private func end(_ topic: String, _ record: Record, _ error: LiveClientError, in state: inout State, _ effects: inout Effects) {
        self.remove(topic, in: &state)
        if let waiter = record.waiter { effects.subscribed.append((waiter, .failure(error))) }
        record.subscription.buffer.finish(.failure(error))
    }

    private func deliver(_ message: LiveMessage, in state: inout State, _ effects: inout Effects) {
        guard var record = state.subscriptions[message.topic] else {
            effects.others.append(message)
            return
        }
        // Subscribing: the answer's replay brings this one again. Paused: the consumer is behind.
        guard record.phase == .active else { return }
        var tracker = record.tracker
        switch tracker.receive(message.position) {
        case .duplicate:
            return
        case .gap:
            self.resubscribe(message.topic, in: &state, &effects)
        case .deliver:
            if record.subscription.buffer.push(.message(message)) {
                record.tracker = tracker
            } else {
                // The position stays at the last message buffered: the catch-up starts there.
                record.phase = .paused
            }
            state.subscriptions[message.topic] = record
        }
    }
}
