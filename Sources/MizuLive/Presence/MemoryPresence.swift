import Foundation
import NIOConcurrencyHelpers

/// A member as this node keeps it: the session's ID as its 16 bytes (spelled out only when
/// read), so an idle member costs no string of its own.
struct PresenceRecord: Sendable {
    var id: Live.SessionID
    var info: Data
    var joinedAt: Date

    var member: Live.PresenceMember { Live.PresenceMember(session: self.id.text, info: self.info, joinedAt: self.joinedAt) }
}

/// The members of presence topics held in this process: every member of every topic without
/// a shared broker, this node's own members with one (which it refreshes there). Bounded by
/// sessions times their topic cap.
final class MemoryPresence: Sendable {
    /// A member as stored: its ID is the key, not repeated in the value (24 bytes less per
    /// bucket, and a presence topic the ChatApp's size has a bucket per connection).
    private struct Entry {
        var info: Data
        var joinedAt: Date
    }

    private let topics = NIOLockedValueBox<[String: [Live.SessionID: Entry]]>([:])

    func join(_ topic: String, _ record: PresenceRecord) {
        self.topics.withLockedValue { $0[topic, default: [:]][record.id] = Entry(info: record.info, joinedAt: record.joinedAt) }
    }

    private static func member(_ id: Live.SessionID, _ entry: Entry) -> Live.PresenceMember {
        PresenceRecord(id: id, info: entry.info, joinedAt: entry.joinedAt).member
    }

    /// False when the session was not a member.
    @discardableResult
    func leave(_ topic: String, id: Live.SessionID) -> Bool {
        self.topics.withLockedValue { topics in
            guard topics[topic]?.removeValue(forKey: id) != nil else { return false }
            if topics[topic]?.isEmpty == true { topics.removeValue(forKey: topic) }
            return true
        }
    }

    /// Oldest first.
    func members(_ topic: String) -> [Live.PresenceMember] {
        self.topics.withLockedValue { Array($0[topic] ?? [:]) }.sorted { $0.value.joinedAt < $1.value.joinedAt }.map { Self.member($0.key, $0.value) }
    }

    /// Every topic's members (for a broker refresh).
    var all: [String: [Live.PresenceMember]] {
        self.topics.withLockedValue { $0.mapValues { $0.map { Self.member($0.key, $0.value) } } }
    }
}
