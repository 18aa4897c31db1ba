import Foundation

extension Live {
    /// The standard command set (protocol version 1, PROTOCOL.md): `subscribe` (with recovery
    /// and history), `unsubscribe`, `publish`, `history` and `presence`, answered by the server
    /// itself, each guarded by the application's hooks. Switched on with ``Options/commands``;
    /// every other topic still goes to ``Options/onMessage``, and without it nothing changes.
    ///
    /// A command is a message whose topic is the command's name and whose data is an object;
    /// one that carries an `"id"` (a number below 2^53 or a string of at most 64 bytes) is
    /// answered `{"topic":"reply","data":{"id":...,"result":{...}}}` or
    /// `{"topic":"reply","data":{"id":...,"error":{"code":...,"message":...,"temporary":...}}}`
    /// (``CommandError``), so a client can await it. Without an id, `subscribe` and
    /// `unsubscribe` answer as the seed's ChatApp did (errors as `{"topic":"error","data":"..."}`).
    /// Sessions that offer the WebSocket subprotocol `mizu-live.v1` are told it is spoken.
    public struct Commands: Sendable {
        /// Whether `session` may read `topic`: subscribe to it, read its history or its members.
        /// A session may unsubscribe only from what it could subscribe to, so subscriptions the
        /// server made itself (a presence topic, say) stay.
        public var canSubscribe: @Sendable (Session, SubscribeRequest) async -> Bool
        /// Whether `session` may publish `data` on a topic with the `publish` command.
        public var canPublish: @Sendable (Session, _ topic: String, _ data: Data) async -> Bool
        /// What a client's publish sends (default: its data as is), e.g. the data wrapped with
        /// the sender's name. Must return one JSON value.
        public var publication: (@Sendable (Session, _ topic: String, _ data: Data) -> Data)?
        /// Awaited before a command reads a history or presence store (a subscribe with `since`
        /// or `history`, `history`, `presence`): the place to pace clients that read in a loop.
        public var willRead: (@Sendable (Session) async -> Void)?
        /// Runs after a subscribe succeeded and its replay was queued, before the next command
        /// of the session; e.g. to send a snapshot the application shapes itself.
        public var subscribed: (@Sendable (Session, SubscribeRequest) async -> Void)?
        /// The most messages a `subscribe` with `history` or a `history` command returns. Default 50.
        public var maxHistory: Int = 50
        /// The most members a `presence` reply lists (the earliest; the reply says `truncated`).
        /// Default 1,000.
        public var maxPresenceMembers: Int = 1000

        /// A command set whose subscribes and reads are allowed by `canSubscribe` and whose
        /// publishes by `canPublish`.
        public init(
            canSubscribe: @escaping @Sendable (Session, SubscribeRequest) async -> Bool,
            canPublish: @escaping @Sendable (Session, _ topic: String, _ data: Data) async -> Bool
        ) {
            self.canSubscribe = canSubscribe
            self.canPublish = canPublish
        }

        /// The WebSocket subprotocol a server with the command set selects when offered.
        public static let subprotocol = "mizu-live.v1"
    }

    /// What a client asked to read: a subscribe (with its recovery point and history), or a
    /// `history` or `presence` read of `topic`.
    public struct SubscribeRequest: Sendable {
        /// The topic asked for.
        public var topic: String
        /// Recover from this position (the last message's `offset` and `epoch`).
        public var since: StreamPosition?
        /// How many recent messages to send when not recovering (capped by ``Commands/maxHistory``).
        public var history: Int?
        /// The request's whole data object, for members of the application's own (JSON bytes).
        public var data: Data

        /// A request for `topic` (the server makes these from the client's command).
        public init(topic: String, since: StreamPosition? = nil, history: Int? = nil, data: Data = Data("{}".utf8)) {
            self.topic = topic
            self.since = since
            self.history = history
            self.data = data
        }
    }

    /// Why a command failed: a stable `code` (part of the protocol), a short message, and
    /// whether the same command may succeed later (`temporary`).
    public struct CommandError: Swift.Error, Sendable, Equatable {
        /// The protocol's code (`not_allowed`, `bad_request`, `not_enabled`, `unavailable`...).
        public var code: String
        /// A short human-readable reason.
        public var message: String
        /// True when the same command may succeed later (a client retries it).
        public var temporary: Bool

        /// An error with these fields, sent to the client as the command's reply.
        public init(code: String, message: String, temporary: Bool) {
            self.code = code
            self.message = message
            self.temporary = temporary
        }

        /// The command's data is not what the command takes.
        public static let badRequest = CommandError(code: "bad_request", message: "bad request", temporary: false)
        /// A hook refused it.
        public static let notAllowed = CommandError(code: "not_allowed", message: "not allowed", temporary: false)
        /// The topic is longer than ``Options/maxTopicLength``.
        public static let topicTooLong = CommandError(code: "topic_too_long", message: "topic too long", temporary: false)
        /// The session (or its client) holds as many topics as it may.
        public static let tooManySubscriptions = CommandError(code: "too_many_subscriptions", message: "too many subscriptions", temporary: false)
        /// The topic keeps no history (or tracks no presence).
        public static let notEnabled = CommandError(code: "not_enabled", message: "not enabled for this topic", temporary: false)
        /// The store could not be read now (Redis away); try again.
        public static let unavailable = CommandError(code: "unavailable", message: "temporarily unavailable", temporary: true)
        /// The publish did not reach everyone (the backplane away too long); try again.
        public static let notSent = CommandError(code: "not_sent", message: "not sent", temporary: true)
        /// The session closed before the command completed.
        public static let sessionClosed = CommandError(code: "session_closed", message: "session closed", temporary: true)
        /// A recovery of this topic for this session is already running (started by the application).
        public static let busy = CommandError(code: "busy", message: "a recovery of this topic is running", temporary: true)
    }
}
