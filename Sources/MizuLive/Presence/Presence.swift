import Foundation
import NIOCore

extension Live {
    /// Who is subscribed to which topics, for the topics the application chooses.
    public struct PresenceOptions: Sendable {
        /// The topics that track presence.
        public var topics: @Sendable (String) -> Bool
        /// What a member shows of itself (raw JSON). Default: the value ``Options/onAuth``
        /// returned, when it is `Encodable`; otherwise `null`.
        public var info: (@Sendable (Session) -> Data)?
        /// Where join and leave events for a topic are published, as
        /// `{"type":"join","session":"<id>","info":<info>}` and `{"type":"leave","session":"<id>"}`;
        /// nil (the default) publishes none.
        public var eventTopic: (@Sendable (String) -> String)?
        /// Send each new subscriber of a presence topic the members as
        /// `{"type":"snapshot","members":[{"session":..,"info":..,"joinedAt":<ms>}]}` on the event topic.
        public var snapshotOnSubscribe = false
        /// With a shared broker (Redis), how long a member outlives the node that holds it:
        /// each node refreshes its members every third of this, so a node that dies leaves
        /// no ghost for longer. Default 30 s.
        public var expiry: TimeAmount = .seconds(30)

        /// Presence on the topics `topics` accepts; see each property for the rest.
        public init(
            topics: @escaping @Sendable (String) -> Bool,
            info: (@Sendable (Session) -> Data)? = nil,
            eventTopic: (@Sendable (String) -> String)? = nil,
            snapshotOnSubscribe: Bool = false,
            expiry: TimeAmount = .seconds(30)
        ) {
            self.topics = topics
            self.info = info
            self.eventTopic = eventTopic
            self.snapshotOnSubscribe = snapshotOnSubscribe
            self.expiry = max(.milliseconds(300), expiry)
        }
    }

    /// One session present on a topic.
    public struct PresenceMember: Sendable, Equatable {
        /// The session's ID.
        public var session: String
        /// What it shows of itself (raw JSON).
        public var info: Data
        /// When it subscribed.
        public var joinedAt: Date

        /// A member with these fields.
        public init(session: String, info: Data, joinedAt: Date) {
            self.session = session
            self.info = info
            self.joinedAt = joinedAt
        }

        /// `{"session":..,"info":..,"joinedAt":<ms since 1970>}`
        func encode(into buffer: inout ByteBuffer) {
            buffer.writeStaticString("{\"session\":")
            Message.writeJSONString(self.session, into: &buffer)
            buffer.writeStaticString(",\"info\":")
            buffer.writeBytes(self.info.isEmpty ? Data("null".utf8) : self.info)
            buffer.writeString(",\"joinedAt\":\(self.joinedAtMilliseconds)}")
        }

        /// `joinedAt` in whole milliseconds since 1970, within what JSON carries exactly
        /// (|n| < 2^53): a date from anywhere (the application, a shared store) must not trap
        /// in the conversion to an integer.
        var joinedAtMilliseconds: Int64 {
            let milliseconds = (self.joinedAt.timeIntervalSince1970 * 1000).rounded(.down)
            guard milliseconds.isFinite else { return 0 }
            return Int64(min(max(milliseconds, -Self.largestExactMilliseconds), Self.largestExactMilliseconds))
        }

        /// 2^53 - 1: the largest integer every JSON reader holds exactly (as stream offsets).
        static let largestExactMilliseconds = Double(Live.StreamPosition.maxOffset)

        /// The date of `milliseconds` read back from a shared store, nil when no member could
        /// have written it.
        static func joinedAt(milliseconds: Int64) -> Date? {
            guard Double(milliseconds).magnitude <= Self.largestExactMilliseconds else { return nil }
            return Date(timeIntervalSince1970: Double(milliseconds) / 1000)
        }
    }
}
