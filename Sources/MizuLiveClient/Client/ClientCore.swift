import MizuWebSocket
import NIOConcurrencyHelpers
import NIOCore

/// A client's state behind one lock: the connection, requests waiting for answers or for a
/// connection, and the subscriptions with their places in the stream. Called from the
/// application's tasks (requests), the connection's event loop (frames, open, close, timers)
/// and the connection task; every call is short and synchronous, and what must happen outside
/// the lock (resuming a caller, writing a frame) is returned as ``Effects`` and carried out after.
final class ClientCore: Sendable {
    typealias Reply = Result<[UInt8], LiveClientError>

    struct Request {
        enum Kind {
            /// An application's call, answered with the reply's `result`.
            case call(CheckedContinuation<Reply, Never>)
            /// A subscribe the client makes for a subscription (first or again).
            case subscribe(topic: String, askedAfter: StreamPosition?, history: Int)
            /// An application's message: nothing answers it, so it is done once written.
            case message
        }

        let command: ClientCommand
        let frame: ByteBuffer
        let kind: Kind
        /// The connection (generation) it was written on; nil while it waits for one.
        var sentOn: Int?
        var timeout: Scheduled<Void>?
    }

    struct Record {
        let subscription: LiveSubscription
        var tracker: StreamTracker
        /// `history` asked for on every subscribe of this topic (the latest N when recovery fails).
        let history: Int
        var phase: Phase
        /// The application's `subscribe` call, until the first answer.
        var waiter: CheckedContinuation<Result<Void, LiveClientError>, Never>?
    }

    enum Phase: Equatable {
        /// A subscribe is out (or waits for a connection); messages are dropped until its answer
        /// (what it replays includes them).
        case subscribing(UInt64)
        case active
        /// The consumer is behind and its buffer full: messages are dropped until it catches up.
        case paused
        /// Waiting for a connection to subscribe again.
        case detached
    }

    struct State {
        var connection: WebSocketConnection?
        var generation = 0
        var connectionState = ConnectionState.idle
        var nextID: UInt64 = 1
        var requests: [UInt64: Request] = [:]
        /// Requests waiting for a connection, oldest first, and their bytes.
        var unsent: [UInt64] = []
        var unsentBytes = 0
        var subscriptions: [String: Record] = [:]
        /// Topics in the order they were subscribed: resubscribed in that order.
        var order: [String] = []
        var observers: [Int: AsyncStream<ConnectionState>.Continuation] = [:]
        var nextObserver = 0
        var closing = false
        /// Frames that could not be read (counted, never fatal).
        var unreadable = 0
        var flushWaiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var nextFlushWaiter = 0
    }

    /// What to do once the lock is released.
    struct Effects {
        var sends: [(WebSocketConnection, ByteBuffer)] = []
        var replies: [(CheckedContinuation<Reply, Never>, Reply)] = []
        var subscribed: [(CheckedContinuation<Result<Void, LiveClientError>, Never>, Result<Void, LiveClientError>)] = []
        var states: [(AsyncStream<ConnectionState>.Continuation, ConnectionState)] = []
        /// Observers to finish (their termination handler takes the lock: never under it).
        var finished: [AsyncStream<ConnectionState>.Continuation] = []
        var others: [LiveMessage] = []
        /// A connection to close, and why (in its close frame).
        var close: (connection: WebSocketConnection, reason: String)?
        var flushed: [CheckedContinuation<Void, Never>] = []

        func perform(others continuation: AsyncStream<LiveMessage>.Continuation) {
            for (connection, frame) in self.sends {
                connection.send(WebSocketMessage(opcode: .text, data: frame)!)
            }
            for (waiter, result) in self.subscribed { waiter.resume(returning: result) }
            for (waiter, reply) in self.replies { waiter.resume(returning: reply) }
            for (observer, state) in self.states { observer.yield(state) }
            for observer in self.finished { observer.finish() }
            for message in self.others { continuation.yield(message) }
            if let (connection, reason) = self.close { connection.close(code: 1000, reason: reason) }
            for waiter in self.flushed { waiter.resume() }
        }
    }

    let configuration: LiveClient.Configuration
    let state = NIOLockedValueBox(State())
    let others: AsyncStream<LiveMessage>
    private let othersContinuation: AsyncStream<LiveMessage>.Continuation

    init(configuration: LiveClient.Configuration) {
        self.configuration = configuration
        (self.others, self.othersContinuation) = AsyncStream.makeStream(
            of: LiveMessage.self, bufferingPolicy: .bufferingNewest(max(1, configuration.otherMessagesBuffer)))
    }

    func withState(_ body: (inout State, inout Effects) -> Void) {
        var effects = Effects()
        self.state.withLockedValue { body(&$0, &effects) }
        effects.perform(others: self.othersContinuation)
    }

    // MARK: Connection state

    func setConnectionState(_ new: ConnectionState, in state: inout State, _ effects: inout Effects) {
        guard state.connectionState != new else { return }
        state.connectionState = new
        for observer in state.observers.values { effects.states.append((observer, new)) }
        if case .stopped = new {
            effects.finished += state.observers.values
            state.observers = [:]
        }
    }

    func observeStates() -> AsyncStream<ConnectionState> {
        let (stream, continuation) = AsyncStream.makeStream(of: ConnectionState.self, bufferingPolicy: .bufferingNewest(16))
        self.state.withLockedValue { state in
            continuation.yield(state.connectionState)
            // (finish() runs no handler yet: none is set.)
            if case .stopped = state.connectionState {
                continuation.finish()
                return
            }
            let key = state.nextObserver
            state.nextObserver += 1
            state.observers[key] = continuation
            continuation.onTermination = { [weak self] _ in
                self?.state.withLockedValue { _ = $0.observers.removeValue(forKey: key) }
            }
        }
        return stream
    }

    // MARK: Requests

    /// Registers a request and writes it now when connected; false when the queue for a
    /// connection is full.
    func enqueue(_ command: ClientCommand, kind: Request.Kind, in state: inout State, _ effects: inout Effects) -> UInt64? {
        let id = state.nextID
        state.nextID += 1
        let frame = command.encode(id: id)
        var request = Request(command: command, frame: frame, kind: kind)
        if let connection = state.connection {
            effects.sends.append((connection, frame))
            if case .message = kind { return id }
            request.sentOn = state.generation
            request.timeout = self.scheduleTimeout(id, generation: state.generation, on: connection)
        } else {
            guard state.unsent.count < self.configuration.maxQueuedRequests,
                state.unsentBytes + frame.readableBytes <= self.configuration.maxQueuedBytes
            else { return nil }
            state.unsent.append(id)
            state.unsentBytes += frame.readableBytes
            if case .call = kind { request.timeout = self.scheduleQueuedTimeout(id) }
        }
        state.requests[id] = request
        return id
    }

    func scheduleTimeout(_ id: UInt64, generation: Int, on connection: WebSocketConnection) -> Scheduled<Void> {
        connection.eventLoop.scheduleTask(in: self.configuration.requestTimeout.timeAmount) { [weak self] in
            self?.timedOut(id, generation: generation)
        }
    }

    /// A call waiting for a connection has `requestTimeout` to be sent: while the server stays
    /// away (the client retries for ever by default) its caller learns so, not never.
    func scheduleQueuedTimeout(_ id: UInt64) -> Scheduled<Void> {
        self.configuration.eventLoopGroup.next().scheduleTask(in: self.configuration.requestTimeout.timeAmount) { [weak self] in
            self?.timedOutWaiting(id)
        }
    }

    private func timedOutWaiting(_ id: UInt64) {
        self.withState { state, effects in
            guard let request = state.requests[id], request.sentOn == nil, case .call(let continuation) = request.kind,
                let place = state.unsent.firstIndex(of: id)
            else { return }
            state.requests[id] = nil
            state.unsent.remove(at: place)
            state.unsentBytes -= request.frame.readableBytes
            effects.replies.append((continuation, .failure(.timeout)))
            self.signalFlushedIfIdle(&state, &effects)
        }
    }

    func call(_ command: ClientCommand) async -> Reply {
        await withCheckedContinuation { (continuation: CheckedContinuation<Reply, Never>) in
            self.withState { state, effects in
                if let refusal = self.refusal(state) {
                    effects.replies.append((continuation, .failure(refusal)))
                } else if self.enqueue(command, kind: .call(continuation), in: &state, &effects) == nil {
                    effects.replies.append((continuation, .failure(.queueFull)))
                }
            }
        }
    }

    /// Why no request can be made now, if none can.
    func refusal(_ state: State) -> LiveClientError? {
        if state.closing { return .closed }
        if case .stopped(let reason) = state.connectionState { return reason == .closedByClient ? .closed : .stopped(reason) }
        return nil
    }

    private func timedOut(_ id: UInt64, generation: Int) {
        self.withState { state, effects in
            guard let request = state.requests[id], request.sentOn == generation else { return }
            state.requests[id] = nil
            switch request.kind {
            case .call(let continuation):
                effects.replies.append((continuation, .failure(.timeout)))
            case .message:
                break
            case .subscribe(let topic, _, _):
                guard var record = state.subscriptions[topic], record.phase == .subscribing(id) else { break }
                if let waiter = record.waiter {
                    record.waiter = nil
                    self.remove(topic, in: &state)
                    record.subscription.buffer.finish(.failure(.timeout))
                    effects.subscribed.append((waiter, .failure(.timeout)))
                } else if let connection = state.connection, state.generation == generation {
                    // A server that answers nothing is as good as dead: a new connection
                    // subscribes again.
                    record.phase = .detached
                    state.subscriptions[topic] = record
                    effects.close = (connection, "request timed out")
                }
            }
            self.signalFlushedIfIdle(&state, &effects)
        }
    }

    func remove(_ topic: String, in state: inout State) {
        state.subscriptions[topic] = nil
        state.order.removeAll { $0 == topic }
    }

    // MARK: Subscriptions

    /// Sends a subscribe for `record`'s topic from where it stands.
    func resubscribe(_ topic: String, in state: inout State, _ effects: inout Effects) {
        guard var record = state.subscriptions[topic] else { return }
        let after = record.tracker.resumePosition
        let command = ClientCommand.subscribe(topic: topic, since: after, history: record.history > 0 ? record.history : nil)
        // Subscribes are never refused for want of room: there is one per subscription.
        let id = state.nextID
        state.nextID += 1
        let frame = command.encode(id: id)
        var request = Request(command: command, frame: frame, kind: .subscribe(topic: topic, askedAfter: after, history: record.history))
        if let connection = state.connection {
            request.sentOn = state.generation
            request.timeout = self.scheduleTimeout(id, generation: state.generation, on: connection)
            effects.sends.append((connection, frame))
            state.requests[id] = request
            record.phase = .subscribing(id)
        } else {
            record.phase = .detached
        }
        state.subscriptions[topic] = record
    }

    /// The consumer of `topic` caught up after its buffer overflowed.
    func consumerCaughtUp(_ topic: String) {
        self.withState { state, effects in
            guard let record = state.subscriptions[topic], record.phase == .paused else { return }
            if record.tracker.resumePosition == nil {
                // No history to recover from: say what happened and go on.
                _ = record.subscription.buffer.push(.missed(resumesAfter: nil))
                state.subscriptions[topic]?.phase = .active
            } else {
                self.resubscribe(topic, in: &state, &effects)
            }
        }
    }

    // MARK: Flushing

    /// Returns once no call waits to be sent or answered, or after `timeout`.
    func waitUntilFlushed(timeout: Duration) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            self.withState { state, effects in
                let key = state.nextFlushWaiter
                state.nextFlushWaiter += 1
                state.flushWaiters[key] = continuation
                self.configuration.eventLoopGroup.next().scheduleTask(in: timeout.timeAmount) { [weak self] in
                    let waiter = self?.state.withLockedValue { $0.flushWaiters.removeValue(forKey: key) }
                    waiter?.resume()
                }
                self.signalFlushedIfIdle(&state, &effects)
            }
        }
    }

    /// No call is waiting to be sent or answered.
    func signalFlushedIfIdle(_ state: inout State, _ effects: inout Effects) {
        guard !state.flushWaiters.isEmpty else { return }
        let busy = state.requests.values.contains { if case .subscribe = $0.kind { return false } else { return true } }
        guard !busy else { return }
        effects.flushed += state.flushWaiters.values
        state.flushWaiters = [:]
    }
}
