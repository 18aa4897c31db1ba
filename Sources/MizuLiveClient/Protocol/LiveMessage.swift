import Foundation

/// A place in a topic's stream (PROTOCOL.md, "History and presence"): `offset` grows by one
/// per message; `epoch` names one unbroken history.
public struct StreamPosition: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The message's number in its epoch, from 1.
    public var offset: UInt64
    /// The history it belongs to.
    public var epoch: String

    /// A position (one the application kept, to subscribe from after a restart).
    public init(offset: UInt64, epoch: String) {
        self.offset = offset
        self.epoch = epoch
    }

    public var description: String { "\(self.offset)@\(self.epoch)" }

    /// The largest offset a stream can reach (2^53 - 1): anything larger from a server is refused.
    public static let maxOffset: UInt64 = (1 << 53) - 1
}

/// One message of a topic, as the server sent it.
public struct LiveMessage: Sendable, Equatable {
    /// The topic it was published on.
    public var topic: String
    /// The message's `data`: one JSON value, byte for byte as published.
    public var data: [UInt8]
    /// Its place in the topic's stream; nil for a topic without history.
    public var position: StreamPosition?

    /// A message with these fields.
    public init(topic: String, data: [UInt8], position: StreamPosition? = nil) {
        self.topic = topic
        self.data = data
        self.position = position
    }

    /// `data` as text (JSON).
    public var json: String { String(decoding: self.data, as: UTF8.self) }

    /// `data` decoded as `type`.
    public func decode<T: Decodable>(_ type: T.Type, using decoder: JSONDecoder = JSONDecoder()) throws -> T {
        try decoder.decode(type, from: Data(self.data))
    }
}

/// Where a new subscription starts.
public enum SubscribeStart: Sendable, Equatable {
    /// Only messages published from now on.
    case live
    /// The last `count` messages the server keeps (at most its `maxHistory`), then live ones.
    case latest(Int)
    /// Every message after `position` (recovery); when the server no longer has them all, the
    /// subscription says so (``LiveSubscription/Event/missed(resumesAfter:)``) and the latest `orLatest` come instead.
    case after(StreamPosition, orLatest: Int = 0)
}

/// A page of a topic's history (the `history` command).
public struct HistoryPage: Sendable, Equatable {
    /// The messages, the oldest first.
    public var messages: [LiveMessage]
    /// The stream's latest position when the page was read.
    public var position: StreamPosition
    /// Whether every message after the asked position is in the page.
    public var complete: Bool
}

/// Who is present in a topic (the `presence` command).
public struct PresenceSnapshot: Sendable, Equatable {
    /// One present session.
    public struct Member: Sendable, Equatable {
        /// The session's ID.
        public var session: String
        /// The member's info, JSON byte for byte (empty when the server gave none).
        public var info: [UInt8]
        /// When the member joined, in milliseconds since 1970.
        public var joinedAt: Int64
    }

    /// The members, as the server listed them.
    public var members: [Member]
    /// Whether the server left members out (over its `maxPresenceMembers`).
    public var truncated: Bool
}
