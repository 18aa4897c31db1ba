import CoreMetrics
import Foundation
import Logging
import MizuHTTP
import MizuWebSocket
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

extension Live {
    /// A live server: hand ``handler()`` to a router (or an `HTTPServer`), then publish to
    /// topics from anywhere. `Live.Server(Live.Options(...))` is Go's `live.New(live.Options{...})`.
    public final class Server: Sendable {
        let core: ServerCore

        /// A server with `options`.
        public init(_ options: Options = Options()) {
            self.core = ServerCore(options: options)
        }

        init(core: ServerCore) {
            self.core = core
        }

        /// The HTTP handler that upgrades requests to live sessions: mount it with
        /// `app.get("/ws", compat(server.handler()))`, or serve it with no router at all.
        public func handler() -> any HTTPHandler {
            LiveHTTPHandler(core: self.core)
        }

        /// Sends `data` (raw JSON) on `topic` to every subscribed session. Never blocks: the
        /// frame is encoded once and handed to each subscriber's event loop in one hop.
        /// Go's `Publish` has no result; this one says false when the message will not reach
        /// everyone: data that is not one JSON value (dropped; see ``Message/isValidData(_:)``),
        /// a topic that is empty or longer than ``Options/maxTopicLength`` (no session can
        /// subscribe to it), or a broker that cannot take
        /// it (Redis away longer than `maxPublishWait`, or its queue full), in which case the
        /// other nodes never get it, nor anyone on a history topic (delivered through Redis).
        @discardableResult
        public func publish(_ topic: String, _ data: Data) -> Bool {
            self.core.publish(topic, data)
        }

        /// Publishes `value` encoded as JSON; the result as for ``publish(_:_:)``.
        @discardableResult
        public func publish(_ topic: String, encoding value: some Encodable) throws -> Bool {
            self.core.publish(topic, try JSONEncoder().encode(value))
        }

        /// Subscribes `session` to `topic`; idempotent. An empty topic is a no-op (as in Go).
        /// Returns false when refused: the session is closed, or at
        /// ``Options/maxTopicsPerSession`` (the client is sent `{"topic":"error","data":"too many subscriptions"}`).
        @discardableResult
        public func subscribe(_ session: Session, _ topic: String) -> Bool {
            guard !topic.isEmpty else { return false }
            guard case .refused(let refusal) = session.subscribe(topic) else { return true }
            session.tell(refusal)
            return false
        }

        /// Removes `session` from `topic`; idempotent. An empty topic is a no-op.
        public func unsubscribe(_ session: Session, _ topic: String) {
            guard !topic.isEmpty else { return }
            session.unsubscribe(topic)
        }

        /// Subscribes `session` to a history topic from a position: it is sent every message
        /// after `since` when the history still holds them all (`recovered`), otherwise the
        /// latest `latest` messages, then the live stream, with no gap and no duplicate
        /// between the two. `reply`, when given, makes a message that goes out first (the
        /// place to tell the client whether it recovered); it runs on the session's event loop,
        /// holding no lock of the server's, so it may publish or subscribe (it must not
        /// block). For a topic without history this
        /// is a plain subscribe. The result's `top` is the position to come back with. A session
        /// that has the topic already is answered the same way and recovers again from `since`
        /// (what it already got may come twice: same epoch, offset not past its last), so a
        /// client can re-synchronise after a notice without reconnecting.
        @discardableResult
        public func subscribe(
            _ session: Session, _ topic: String, recoverFrom since: StreamPosition?, latest: Int = 0,
            reply: (@Sendable (SubscribeResult) -> Message?)? = nil
        ) async -> SubscribeResult {
            guard !topic.isEmpty else { return SubscribeResult(subscribed: false, recovered: false, top: nil, replayed: 0) }
            return await self.core.subscribe(session, topic, since: since, latest: latest, reply: reply) { session.tell($0) }
        }

        /// A history topic's messages after `since` (at most `limit`, the oldest first), or
        /// its latest `limit` when `since` is nil. Throws ``HistoryError/notEnabled(_:)`` for
        /// a topic without history, and the broker's error when Redis cannot be read.
        public func history(_ topic: String, since: StreamPosition? = nil, limit: Int = .max) async throws -> HistoryPage {
            try await self.core.historyPage(topic, since: since, limit: limit)
        }

        /// The sessions present on `topic` (every node's with a Redis broker), the earliest first.
        public func presence(_ topic: String) async throws -> [PresenceMember] {
            try await self.core.presence(topic)
        }

        /// How many sessions are present on `topic`.
        public func presenceCount(_ topic: String) async throws -> Int {
            try await self.core.presence(topic).count
        }

        /// Open sessions.
        public var sessionCount: Int { self.core.sessionCount }

        /// Messages dropped because their data was not one valid JSON value (by ``publish(_:_:)``
        /// or ``Session/send(_:)``); each drop is counted, and logged at most once per 5 s.
        public var invalidDataCount: Int { self.core.invalidData.load(ordering: .relaxed) }

        /// Topics with at least one subscriber.
        public var topicCount: Int { self.core.registry.topicCount }

        /// Sessions subscribed to `topic`.
        public func subscriberCount(_ topic: String) -> Int { self.core.registry.subscriberCount(topic) }

        /// The open sessions.
        public var sessions: [Session] { self.core.allSessions }

        /// Closes every session with 1001 (onClose reports ``Live/Error/serverShutdown``) and
        /// waits, at most `timeout`, until they are gone. From the first moment new upgrades
        /// are refused (503 with `Retry-After`). The closes go out in batches spread over
        /// `spread` (at most half of `timeout`; 100 sessions or fewer close at once), so the
        /// clients of a busy server do not all reconnect in the same millisecond.
        public func shutdown(timeout: TimeAmount = .seconds(5), spread: TimeAmount = .seconds(1)) async {
            await self.shutdown(timeout: timeout, spread: spread) { offset, start in
                let wait = start + offset - .now()
                if wait > .zero { try? await Task.sleep(nanoseconds: UInt64(wait.nanoseconds)) }
            }
        }

        /// ``shutdown(timeout:spread:)`` with the wait before each batch injected (the batch's
        /// offset from the start, and the start), so tests check the schedule, not the clock.
        func shutdown(
            timeout: TimeAmount, spread: TimeAmount,
            waitForBatch: (_ offset: TimeAmount, _ start: NIODeadline) async -> Void
        ) async {
            let start = NIODeadline.now()
            let deadline = start + timeout
            let sessions = self.core.beginDrain()
            let schedule = DrainSchedule(sessions: sessions.count, spread: min(spread, .nanoseconds(timeout.nanoseconds / 2)))
            for batch in schedule.batches {
                await waitForBatch(batch.offset, start)
                for session in sessions[batch.range] { session.fail(.serverShutdown) }
            }
            while self.core.sessionCount > 0, NIODeadline.now() < deadline {
                try? await Task.sleep(nanoseconds: 5_000_000)
            }
        }
    }
}
