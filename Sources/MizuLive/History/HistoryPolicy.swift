import Foundation
import NIOCore

extension Live {
    /// How much of a topic's stream is kept for late joiners and for recovery: the last
    /// `size` messages, none older than `ttl`. Set per topic with ``Options/history``.
    public struct HistoryPolicy: Sendable, Equatable {
        /// Most messages kept (1 to ``largestSize``; a value outside is brought in).
        public var size: Int {
            didSet { self.size = Self.bounded(self.size) }
        }
        /// How long a message is kept (at least 1 ms).
        public var ttl: TimeAmount

        /// The most messages a topic keeps: a recovery reads up to one more than the size in
        /// one reply, and a reply from Redis holds at most 1,048,576 entries.
        public static let largestSize = 1_000_000

        /// Keep the last `size` messages (1 to ``largestSize``), each for `ttl` (at least 1 ms).
        public init(size: Int, ttl: TimeAmount) {
            self.size = Self.bounded(size)
            self.ttl = max(.milliseconds(1), ttl)
        }

        private static func bounded(_ size: Int) -> Int { min(max(1, size), Self.largestSize) }
    }

    /// A place in a topic's stream. `offset` grows by one per message; `epoch` names one
    /// unbroken history: it changes whenever the history was lost (a restart without
    /// persistence, an expired stream), so an old position is never taken for a current one.
    public struct StreamPosition: Sendable, Hashable, Codable, CustomStringConvertible {
        /// The message's number in its epoch, from 1.
        public var offset: UInt64
        /// The history it belongs to.
        public var epoch: String

        /// A position, as a client sent it back (check ``isPlausible`` before trusting it).
        public init(offset: UInt64, epoch: String) {
            self.offset = offset
            self.epoch = epoch
        }

        public var description: String { "\(self.offset)@\(self.epoch)" }

        /// The largest offset a stream can reach: 2^53 - 1, the largest integer every JSON
        /// reader (JavaScript's numbers) and Redis's Lua read exactly. A position past it
        /// comes from a client, never from a stream: it recovers nothing and is never sent
        /// to a history store.
        public static let maxOffset: UInt64 = (1 << 53) - 1

        /// Whether the offset is one a stream can have.
        public var isPlausible: Bool { self.offset <= Self.maxOffset }
    }

    /// One message of a topic's history.
    public struct Publication: Sendable, Equatable {
        /// The raw JSON data, as published.
        public var data: Data
        /// Its place in the stream.
        public var position: StreamPosition
    }

    /// Why history could not be read.
    public enum HistoryError: Swift.Error, Sendable, Equatable {
        /// ``Options/history`` keeps no history for this topic.
        case notEnabled(String)
    }

    /// What ``Server/history(_:since:limit:)`` read.
    public struct HistoryPage: Sendable, Equatable {
        /// Oldest first.
        public var publications: [Publication]
        /// The stream's newest position (offset 0 for a stream with no message yet).
        public var top: StreamPosition
        /// Whether the messages after the asked position are all here (always false when the
        /// epoch differs or the position is older than what is kept).
        public var isComplete: Bool
    }

    /// What ``Server/subscribe(_:_:recoverFrom:latest:reply:)`` did.
    public struct SubscribeResult: Sendable, Equatable {
        /// The session is subscribed (false: closed, at its topic cap, or already subscribed).
        public var subscribed: Bool
        /// Every message after the asked position was sent, in order, before the live ones.
        /// False when no position was given, or the history could not cover it (another
        /// epoch, too old, or the history could not be read): the client must reload.
        public var recovered: Bool
        /// The stream's position when the live stream took over: the client's next position.
        public var top: StreamPosition?
        /// Messages sent from history.
        public var replayed: Int
    }
}

/// A topic's stream as one read of it saw it: its epoch, top offset, and entries (oldest
/// first) after the asked offset, or the latest ones.
struct HistoryRead: Sendable {
    var epoch: String
    var top: UInt64
    var entries: [Live.Publication]

    /// Whether `entries` continue the stream right after `since` (same epoch, nothing missing):
    /// up to the top, or up to the `count` entries the read asked for (more may follow).
    func covers(_ since: Live.StreamPosition, reading count: Int = .max) -> Bool {
        guard since.epoch == self.epoch, since.offset <= self.top else { return false }
        if since.offset == self.top { return true }
        return self.entries.first?.position.offset == since.offset + 1
            && (self.entries.last?.position.offset == self.top || self.entries.count >= count)
    }
}

/// A fresh epoch: 8 random hex digits.
func newEpoch() -> String {
    var generator = SystemRandomNumberGenerator()
    let digits = String(generator.next() as UInt32, radix: 16)
    return String(repeating: "0", count: 8 - digits.count) + digits
}
