import NIOConcurrencyHelpers
import NIOCore

/// One topic the client is subscribed to. Its ``events`` deliver every message of the topic once
/// and in order, across reconnects, or say that some were missed. Cancel it with
/// ``LiveClient/unsubscribe(_:)``.
public final class LiveSubscription: Sendable {
    /// The topic subscribed to.
    public let topic: String

    /// What a subscription delivers.
    public enum Event: Sendable, Equatable {
        /// The next message of the topic.
        case message(LiveMessage)
        /// Messages may be missing before the next one: the server could not recover them (its
        /// history no longer holds them, or the history was lost: a new epoch). The stream goes
        /// on after `resumesAfter`.
        case missed(resumesAfter: StreamPosition?)
    }

    let buffer: SubscriptionBuffer

    init(topic: String, capacity: Int, onDrained: @escaping @Sendable () -> Void) {
        self.topic = topic
        self.buffer = SubscriptionBuffer(capacity: capacity, onDrained: onDrained)
    }

    /// The subscription's events, for one consumer at a time. The sequence ends when the
    /// subscription or the client is closed, and throws the ``LiveClientError`` that ended it
    /// otherwise (e.g. the server refused the topic on a resubscribe).
    ///
    /// At most ``LiveClient/Configuration/subscriptionBuffer`` events wait for the consumer. When
    /// it reads too slowly and the buffer fills, the client drops what arrives and, once the
    /// consumer has read half of the buffer, resubscribes from the last event buffered: a
    /// topic with history loses nothing (the server replays), one without is told ``Event/missed(resumesAfter:)``.
    public var events: Events { Events(buffer: self.buffer) }

    /// The subscription's events as an `AsyncSequence`: one consumer at a time; it ends when
    /// the subscription is cancelled or the client closes, and throws what ended it otherwise
    /// (the client stopped, the server refused the topic, a resubscribe timed out).
    public struct Events: AsyncSequence, Sendable {
        public typealias Element = Event
        let buffer: SubscriptionBuffer

        public func makeAsyncIterator() -> Iterator { Iterator(buffer: self.buffer) }

        /// Waits for each next event.
        public struct Iterator: AsyncIteratorProtocol {
            let buffer: SubscriptionBuffer

            public mutating func next() async throws -> Event? {
                try await self.buffer.next()
            }
        }
    }
}

/// The bounded queue between the client (producer, any thread) and the subscription's one consumer.
final class SubscriptionBuffer: Sendable {
    private struct State {
        var events = CircularBuffer<LiveSubscription.Event>()
        var waiter: CheckedContinuation<LiveSubscription.Event?, any Error>?
        /// Set when an event was refused for want of room; cleared (and `onDrained` called) once
        /// the consumer has made room for half of the capacity.
        var overflowed = false
        var end: Result<Void, LiveClientError>?
    }

    let capacity: Int
    private let state = NIOLockedValueBox(State())
    private let onDrained: @Sendable () -> Void

    init(capacity: Int, onDrained: @escaping @Sendable () -> Void) {
        self.capacity = max(1, capacity)
        self.onDrained = onDrained
    }

    /// Hands on an event; false (and the event dropped) when the buffer is full or ended.
    func push(_ event: LiveSubscription.Event) -> Bool {
        enum Outcome {
            case handOver(CheckedContinuation<LiveSubscription.Event?, any Error>)
            case queued
            case refused
        }
        let outcome = self.state.withLockedValue { state -> Outcome in
            guard state.end == nil else { return .refused }
            if let waiter = state.waiter {
                state.waiter = nil
                return .handOver(waiter)
            }
            // Once full, refuse until the consumer has caught up: no message slips in after a
            // hole that the resubscribe will fill.
            guard state.events.count < self.capacity, !state.overflowed else {
                state.overflowed = true
                return .refused
            }
            state.events.append(event)
            return .queued
        }
        switch outcome {
        case .handOver(let waiter):
            waiter.resume(returning: event)
            return true
        case .queued:
            return true
        case .refused:
            return false
        }
    }

    /// Ends the sequence after the events already buffered.
    func finish(_ end: Result<Void, LiveClientError>) {
        let waiter = self.state.withLockedValue { state -> CheckedContinuation<LiveSubscription.Event?, any Error>? in
            guard state.end == nil else { return nil }
            state.end = end
            defer { state.waiter = nil }
            return state.waiter
        }
        switch end {
        case .success: waiter?.resume(returning: nil)
        case .failure(let error): waiter?.resume(throwing: error)
        }
    }

    func next() async throws -> LiveSubscription.Event? {
        enum Outcome {
            case event(LiveSubscription.Event, drained: Bool)
            case end(Result<Void, LiveClientError>)
            case wait
        }
        let outcome = self.state.withLockedValue { state -> Outcome in
            if let event = state.events.popFirst() {
                let drained = state.overflowed && state.events.count <= self.capacity / 2
                if drained { state.overflowed = false }
                return .event(event, drained: drained)
            }
            if let end = state.end { return .end(end) }
            return .wait
        }
        switch outcome {
        case .event(let event, let drained):
            if drained { self.onDrained() }
            return event
        case .end(.success):
            return nil
        case .end(.failure(let error)):
            throw error
        case .wait:
            break
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<LiveSubscription.Event?, any Error>) in
                let immediate = self.state.withLockedValue { state -> Result<LiveSubscription.Event?, any Error>? in
                    if let event = state.events.popFirst() { return .success(event) }
                    switch state.end {
                    case .success?: return .success(nil)
                    case .failure(let error)?: return .failure(error)
                    case nil: break
                    }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    precondition(state.waiter == nil, "a LiveSubscription's events are for one consumer at a time")
                    state.waiter = continuation
                    return nil
                }
                if let immediate { continuation.resume(with: immediate) }
            }
        } onCancel: {
            let waiter = self.state.withLockedValue { state -> CheckedContinuation<LiveSubscription.Event?, any Error>? in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(throwing: CancellationError())
        }
    }

    var count: Int { self.state.withLockedValue { $0.events.count } }
}
