import Foundation
import MizuHTTP
import MizuWebSocket
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

extension Live {
    /// One client connection: its ID, the value ``Options/onAuth`` returned, and a
    /// bounded send queue. Safe to use from any thread or task.
    public final class Session: Sendable, Hashable, CustomStringConvertible {
        /// The session's ID (from ``Options/idGenerator``; by default 128 random bits as hex).
        public var id: String { self.identity.text }
        /// What ``Options/onAuth`` returned (Go's `s.Value()`).
        public let value: (any Sendable)?
        /// The request that opened the session.
        public let request: Request

        let connection: WebSocketConnection
        let core: ServerCore

        private struct State {
            var close = SessionCloseState()
            var topics = SessionTopics()
            var inbox = SessionInbox()
        }

        /// Inline (a futex word on Linux), not a separate locked box: one allocation and a
        /// pthread mutex less per session.
        private let state = InlineLock(State())
        private let readingPaused = Atomic<Bool>(false)

        /// Unread messages past this pause reading from the socket; below half, it resumes.
        static let inboxHighWater = 64
        /// The same in bytes of message data: 64 large messages would be 64 read limits.
        static let inboxHighWaterBytes = 256 * 1024

        /// Kept as 16 bytes when random, and spelled out when read: an idle session is mostly
        /// what it stores.
        let identity: SessionID

        init(id: SessionID, value: (any Sendable)?, request: Request, connection: WebSocketConnection, core: ServerCore) {
            self.identity = id
            self.value = value
            self.request = request
            self.connection = connection
            self.core = core
        }

        public static func == (lhs: Session, rhs: Session) -> Bool { lhs === rhs }
        public func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
        public var description: String { "Session(\(self.id))" }

        /// Whether the session has closed (or is closing).
        public var isClosed: Bool { self.state.withLock { $0.close.isClosed } }

        /// Why the session closed; nil while open and after a clean close.
        public var closeError: Live.Error? { self.state.withLock { $0.close.error } }

        /// The topics the session is subscribed to now.
        public var topics: Set<String> { self.state.withLock { $0.topics.set } }

        /// Queues a message for this session. Throws ``Live/Error/sessionClosed`` once closed,
        /// and ``Live/Error/queueFull`` (closing the session) when its queue is full.
        /// Throws ``Live/Error/invalidData`` (and sends nothing) when `data` is not one JSON value.
        public func send(_ message: Message) throws(Live.Error) {
            guard !self.isClosed else { throw .sessionClosed }
            guard self.core.acceptsData(message.data, topic: message.topic) else { throw .invalidData }
            var payload = ByteBuffer()
            Message.encode(topic: message.topic, data: message.data, into: &payload)
            guard self.sendEncoded(CollectionOfOne(payload)) else { throw .queueFull }
        }

        /// Queues encoded messages in order; false (and nothing more is sent) when the queue
        /// was full. The WebSocket layer decides a slow consumer, for these sends as for
        /// broadcasts, and closes the connection; the session records why at once, so
        /// `closeError` says `queueFull` before the close has run.
        @discardableResult
        func sendEncoded(_ payloads: some Sequence<ByteBuffer>) -> Bool {
            for payload in payloads where self.connection.trySend(WebSocketMessage(dataOpcode: .text, data: payload)) == .queueFull {
                _ = self.state.withLock { $0.close.fail(.queueFull) }
                return false
            }
            return true
        }

        /// Sends `value` encoded as JSON on `topic`.
        public func send(topic: String, encoding value: some Encodable) throws {
            try self.send(Message(topic: topic, encoding: value))
        }

        /// Closes the session cleanly (close code 1000).
        public func close() {
            self.carryOut(self.state.withLock { $0.close.close() })
        }

        /// Closes the session with an application close code, which tells a client what to do
        /// next (PROTOCOL.md): 4000-4499 reconnect (with backoff), 4500-4999 do not (e.g. the
        /// user was banned, or logged in elsewhere). A code outside 4000-4999 closes with 1000.
        /// `reason` goes to the client (at most 123 bytes of it); onClose reports no error.
        public func close(code: UInt16, reason: String) {
            let code = (4000...4999).contains(code) ? code : 1000
            self.carryOut(self.state.withLock { $0.close.close(code: code, reason: reason) })
        }

        /// Closes because of `error` (recorded first, so onClose reports it).
        func fail(_ error: Live.Error) {
            self.carryOut(self.state.withLock { $0.close.fail(error) })
        }

        private func carryOut(_ command: SessionCloseState.Command?) {
            switch command {
            case nil: break
            case .close(let code, let reason): self.connection.close(code: code, reason: reason)
            case .closeAsSlowConsumer: self.connection.closeAsSlowConsumer()
            case .closeForShutdown: self.connection.closeForShutdown()
            }
        }

        // MARK: Subscriptions (the session lock is taken before the registry's)

        /// `recovering`: the session had the topic and is recovering it again (see
        /// ``TopicRegistry/restartRecovery(of:topic:)``).
        enum SubscribeOutcome: Equatable { case added, alreadySubscribed, recovering, refused(Refusal) }

        /// Why a subscribe was refused.
        enum Refusal: Equatable {
            case closed
            case topicTooLong
            case tooManySubscriptions

            /// What the client is told (nothing for a closed session).
            var commandError: CommandError? {
                switch self {
                case .closed: return nil
                case .topicTooLong: return .topicTooLong
                case .tooManySubscriptions: return .tooManySubscriptions
                }
            }
        }

        /// Refused when the session is closed, already has as many topics as
        /// ``Live/Options/maxTopicsPerSession`` allows (or its client as many as
        /// ``Live/Options/maxTopicsPerClient``), or the topic is longer than
        /// ``Live/Options/maxTopicLength``; the caller tells the client (``tell(_:)``).
        /// `recovering` adds it as a subscriber whose messages wait for its history read.
        func subscribe(_ topic: String, recovering: Bool = false) -> SubscribeOutcome {
            let limit = self.core.options.maxTopicsPerSession
            guard topic.utf8.count <= self.core.options.maxTopicLength else { return .refused(.topicTooLong) }
            let client = self.clientKey
            let outcome: SubscribeOutcome? = self.state.withLock { state in
                guard !state.close.isClosed else { return .refused(.closed) }
                guard !state.topics.contains(topic) else {
                    // A client re-synchronising (after a notice, or its own gap check) recovers
                    // again without leaving the topic.
                    guard recovering, self.core.registry.restartRecovery(of: self, topic: topic) else { return .alreadySubscribed }
                    return .recovering
                }
                guard state.topics.count < limit, self.core.limiter.takeSubscription(client) else { return nil }
                state.topics.insert(topic)
                self.core.registry.add(self, to: topic, recovering: recovering)
                return .added
            }
            guard let outcome else { return .refused(.tooManySubscriptions) }
            if outcome == .added { self.core.joined(self, topic) }
            return outcome
        }

        /// Tells the client why a subscribe was refused, the way the seed's applications did:
        /// `{"topic":"error","data":"<message>"}`.
        func tell(_ refusal: Refusal) {
            guard let error = refusal.commandError else { return }
            self.tell(error)
        }

        /// `{"topic":"error","data":"<message>"}`.
        func tell(_ error: CommandError) {
            var data = ByteBuffer()
            Message.writeJSONString(error.message, into: &data)
            try? self.send(Message(topic: "error", data: Data(data.readableBytesView)))
        }

        func unsubscribe(_ topic: String) {
            let removed = self.state.withLock { state in
                guard state.topics.remove(topic) else { return false }
                self.core.registry.remove(self, from: topic)
                return true
            }
            guard removed else { return }
            self.core.limiter.releaseSubscriptions(self.clientKey, count: 1)
            self.core.left(self, [topic])
        }

        /// The client this session counts against (per-client limits).
        private var clientKey: ClientAddressKey { ClientAddressKey(self.request.remoteAddress) }

        /// The connection ended: the session leaves every topic; true the first time.
        func markClosed(_ reason: WebSocketCloseReason) -> Bool {
            let topics: Set<String>? = self.state.withLock { state in
                guard state.close.connectionEnded(reason) else { return nil }
                let topics = state.topics.set
                for topic in topics { self.core.registry.remove(self, from: topic) }
                state.topics.removeAll()
                return topics
            }
            guard let topics else { return false }
            if !topics.isEmpty {
                self.core.limiter.releaseSubscriptions(self.clientKey, count: topics.count)
                self.core.left(self, topics)
            }
            return true
        }

        // MARK: Delivery (on the session's event loop)

        // MARK: Hooks, in order, on a task that exists only while there is work

        /// The most message bytes that ever waited for this session's hooks.
        var inboxPeakBytes: Int { self.state.withLock { $0.inbox.peakBytes } }

        /// Queues a hook call; past either high-water mark (messages or bytes) the socket stops
        /// being read, so a session holds at most that plus one message its hooks have not
        /// taken, however slowly they take them.
        func enqueue(_ item: SessionInbox.Item) {
            let (startDrain, waiting) = self.state.withLock { $0.inbox.push(item) }
            if startDrain {
                // The opening hook starts at once on the loop (one that needs no waiting runs
                // within this call). Messages wait for a job of their own: the frames of one
                // read then share one task (started at once, a burst of 128 made 128 tasks).
                // The inbox keeps the hooks in order and one at a time either way.
                if case .open = item {
                    Task.startingNow(on: self.connection.eventLoop) { await self.drainInbox() }
                } else {
                    Task.on(self.connection.eventLoop) { await self.drainInbox() }
                }
            }
            if waiting.isAbove(Self.inboxHighWater, bytes: Self.inboxHighWaterBytes),
                !self.readingPaused.exchange(true, ordering: .relaxed)
            {
                self.connection.setReading(false)
            }
        }

        /// Waits `wait` for a paced message's turn (meanwhile the inbox fills and the socket
        /// stops being read); false, at once, when the session closes first. In slices, so a
        /// closing session (a shutdown closes them all) stops waiting within one.
        private func waitForTurn(_ wait: TimeAmount) async -> Bool {
            var left = max(0, wait.nanoseconds)
            while left > 0 {
                if self.isClosed { return false }
                let slice = min(left, Self.turnWaitSlice)
                try? await Task.sleep(nanoseconds: UInt64(slice))
                left -= slice
            }
            return true
        }

        private static let turnWaitSlice: Int64 = 50_000_000

        private func drainInbox() async {
            while let (item, remaining) = self.state.withLock({ $0.inbox.next() }) {
                if item.isClientMessage, let wait = self.core.limiter.takeMessageTurn(self.clientKey),
                    !(await self.waitForTurn(wait))
                {
                    // Closed while it waited: the turn goes back and the message is dropped, so
                    // a client cannot leave closed sessions queueing paced work (and memory).
                    self.core.limiter.returnMessageTurn(self.clientKey)
                    continue
                }
                await self.runHook(item)
                if !remaining.isAbove(Self.inboxHighWater / 2, bytes: Self.inboxHighWaterBytes / 2),
                    self.readingPaused.exchange(false, ordering: .relaxed)
                {
                    self.connection.setReading(true)
                }
            }
        }
    }

    /// A session ID: 128 random bits (the default) or the application's own string.
    enum SessionID: Sendable, Hashable {
        case random(UInt64, UInt64)
        case custom(String)

        /// From the system CSPRNG.
        static func random() -> SessionID {
            var generator = BufferedSystemRandom()
            return .random(generator.next(), generator.next())
        }

        var text: String {
            switch self {
            case .random(let high, let low): return Self.hex(high) + Self.hex(low)
            case .custom(let text): return text
            }
        }

        private static func hex(_ value: UInt64) -> String {
            let digits = String(value, radix: 16)
            return String(repeating: "0", count: 16 - digits.count) + digits
        }
    }
}

extension Live.Session {
    /// Runs one hook; a session's hooks run one at a time, in order (see ``SessionInbox``).
    func runHook(_ item: SessionInbox.Item) async {
        // Fields read one by one: a copy of the whole options (35 fields, most of them
        // references) retained and released each of them for every hook run.
        let core = self.core
        switch item {
        case .open:
            await core.options.onOpen?(Live.Context(request: self.request), self)
        case .message(let topic, let data):
            if let commands = core.options.commands, await core.runCommand(self, topic, data, commands) { return }
            await core.options.onMessage?(Live.Context(request: self.request), self, topic, data)
        case .bad(let data):
            if let onBadMessage = core.options.onBadMessage {
                await onBadMessage(self, data)
            } else {
                try? self.send(Live.Message(topic: "error", data: Data(#""bad message""#.utf8)))
            }
        case .close:
            await core.options.onClose?(self, self.closeError)
        }
    }
}
