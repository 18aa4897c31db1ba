import MizuWebSocket
import NIOConcurrencyHelpers
import NIOCore

/// A client of a MizuLive server that speaks the standard command set (PROTOCOL.md, version 1,
/// subprotocol `mizu-live.v1`). It keeps one WebSocket connection open, reconnecting by itself
/// with PROTOCOL.md's backoff; its subscriptions survive reconnects: each starts again from the
/// last message it delivered, so a topic with history delivers every message once and in
/// order, or says that some were missed.
///
/// ```swift
/// var configuration = LiveClient.Configuration()
/// configuration.token = { "alice" }
/// let client = LiveClient(url: "ws://127.0.0.1:8080/ws", configuration: configuration)
/// try await client.connect()
/// let room = try await client.subscribe("chat:general", from: .latest(50))
/// try await client.publish("chat:general", json: #"{"text":"hello"}"#)
/// for try await event in room.events { print(event) }
/// ```
///
/// Every method may be called from any task. Requests made while disconnected wait (bounded)
/// and go out when the connection is back. Once connected, a client runs (and reconnects)
/// until ``close(flushTimeout:)`` or a stop; releasing it does not close it.
public final class LiveClient: Sendable {
    /// The server's WebSocket URL (`ws://` or `wss://`).
    public let url: String
    let core: ClientCore
    private let runner = NIOLockedValueBox<Task<Void, Never>?>(nil)

    /// A client of the server at `url`; nothing connects until ``connect()``.
    public init(url: String, configuration: Configuration = Configuration()) {
        self.url = url
        self.core = ClientCore(configuration: configuration)
    }

    /// The connection's state now.
    public var state: ConnectionState { self.core.state.withLockedValue { $0.connectionState } }

    /// The connection's states from now on (the current one first). Ends once the client stops.
    public var states: AsyncStream<ConnectionState> { self.core.observeStates() }

    /// Messages of topics that no subscription of this client holds (an application's own
    /// answers such as `{"topic":"error",...}`, topics the server subscribed the session to).
    /// One consumer; the oldest are dropped past ``Configuration/otherMessagesBuffer``.
    public var otherMessages: AsyncStream<LiveMessage> { self.core.others }

    /// Starts connecting (and reconnecting, until ``close(flushTimeout:)``) and returns once the
    /// first connection is open. Throws ``LiveClientError/stopped(_:)`` when the server refused
    /// for good (401, a do-not-reconnect close); a server that cannot be reached is retried.
    public func connect() async throws(LiveClientError) {
        let states = self.core.observeStates()
        self.runner.withLockedValue { runner in
            guard runner == nil else { return }
            runner = Task { await self.run() }
        }
        for await state in states {
            switch state {
            case .connected: return
            case .stopped(let reason): throw reason == .closedByClient ? .closed : .stopped(reason)
            default: continue
            }
        }
        throw .closed
    }

    /// Subscribes to `topic` and returns once the server has answered. The subscription then
    /// lives until ``unsubscribe(_:)`` or ``close(flushTimeout:)``, across reconnects.
    public func subscribe(_ topic: String, from start: SubscribeStart = .live) async throws(LiveClientError) -> LiveSubscription {
        let after: StreamPosition?
        let history: Int
        switch start {
        case .live: (after, history) = (nil, 0)
        case .latest(let count): (after, history) = (nil, max(0, count))
        case .after(let position, let count): (after, history) = (position, max(0, count))
        }
        let subscription = LiveSubscription(topic: topic, capacity: self.core.configuration.subscriptionBuffer) { [weak core = self.core] in
            core?.consumerCaughtUp(topic)
        }
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Void, LiveClientError>, Never>) in
            self.core.withState { state, effects in
                if let refusal = self.core.refusal(state) {
                    effects.subscribed.append((continuation, .failure(refusal)))
                    return
                }
                guard state.subscriptions[topic] == nil else {
                    effects.subscribed.append((continuation, .failure(.alreadySubscribed(topic))))
                    return
                }
                state.subscriptions[topic] = ClientCore.Record(
                    subscription: subscription, tracker: StreamTracker(after: after), history: history, phase: .detached,
                    waiter: continuation)
                state.order.append(topic)
                self.core.resubscribe(topic, in: &state, &effects)
            }
        }
        try result.get()
        return subscription
    }

    /// Ends a subscription: its events end, and the server is told (best effort).
    public func unsubscribe(_ subscription: LiveSubscription) async {
        let owned = self.core.state.withLockedValue { state -> Bool in
            guard let record = state.subscriptions[subscription.topic], record.subscription === subscription else { return false }
            self.core.remove(subscription.topic, in: &state)
            return true
        }
        guard owned else { return }
        subscription.buffer.finish(.success(()))
        _ = await self.core.call(.unsubscribe(topic: subscription.topic))
    }

    /// Publishes `data` (one JSON value, byte for byte) on `topic` and returns once the server
    /// has. Throws ``LiveClientError/connectionLost`` when the connection ended before the
    /// answer: the message may or may not have been published.
    public func publish(_ topic: String, data: [UInt8]) async throws(LiveClientError) {
        guard data.withUnsafeBytes({ JSONScanner.isValue($0) }) else { throw .invalidData }
        _ = try await self.core.call(.publish(topic: topic, data: data)).get()
    }

    /// Sends the application's own message `{"topic":T,"data":D}` (what the server's
    /// `onMessage` receives), with no answer: written now, or queued (bounded) until the
    /// connection is back. A message written just before a connection is lost may be lost with it.
    public func send(_ topic: String, data: [UInt8]) throws(LiveClientError) {
        guard data.withUnsafeBytes({ JSONScanner.isValue($0) }) else { throw .invalidData }
        var failure: LiveClientError?
        self.core.withState { state, effects in
            if let refusal = self.core.refusal(state) {
                failure = refusal
            } else if self.core.enqueue(.message(topic: topic, data: data), kind: .message, in: &state, &effects) == nil {
                failure = .queueFull
            }
        }
        if let failure { throw failure }
    }

    /// Publishes JSON text (`#"{"text":"hi"}"#`).
    public func publish(_ topic: String, json: String) async throws(LiveClientError) {
        try await self.publish(topic, data: Array(json.utf8))
    }

    /// Reads a topic's history: the latest `limit` messages, or those after `since`.
    public func history(_ topic: String, since: StreamPosition? = nil, limit: Int? = nil) async throws(LiveClientError) -> HistoryPage {
        let result = try await self.core.call(.history(topic: topic, since: since, limit: limit)).get()
        guard let page = CommandResults.history(result, topic: topic) else { throw .invalidReply }
        return page
    }

    /// Who is present in a topic now.
    public func presence(_ topic: String) async throws(LiveClientError) -> PresenceSnapshot {
        let result = try await self.core.call(.presence(topic: topic)).get()
        guard let snapshot = CommandResults.presence(result) else { throw .invalidReply }
        return snapshot
    }

    /// Waits up to `flushTimeout` for requests still waiting to be sent or answered, then
    /// closes the connection with 1000 and stops: subscriptions end, requests left fail with
    /// ``LiveClientError/closed``, no attempt follows.
    public func close(flushTimeout: Duration = .seconds(5)) async {
        await self.core.waitUntilFlushed(timeout: flushTimeout)
        var connection: WebSocketConnection?
        self.core.withState { state, effects in
            state.closing = true
            connection = state.connection
            for (_, request) in state.requests {
                request.timeout?.cancel()
                if case .call(let continuation) = request.kind { effects.replies.append((continuation, .failure(.closed))) }
            }
            state.requests = [:]
            state.unsent = []
            state.unsentBytes = 0
            for topic in state.order {
                guard let record = state.subscriptions[topic] else { continue }
                if let waiter = record.waiter { effects.subscribed.append((waiter, .failure(.closed))) }
                record.subscription.buffer.finish(.success(()))
            }
            state.subscriptions = [:]
            state.order = []
            effects.flushed = Array(state.flushWaiters.values)
            state.flushWaiters = [:]
            self.core.setConnectionState(.stopped(.closedByClient), in: &state, &effects)
        }
        self.runner.withLockedValue { $0?.cancel() }
        if let connection {
            connection.close(code: 1000)
            _ = await connection.closeReason()
        }
    }
}
