import Foundation
import NIOConcurrencyHelpers

/// The members of presence topics held in this process: every member of every topic without
/// a shared broker, this node's own members with one (which it refreshes there). Bounded by
/// sessions times their topic cap.
final class MemoryPresence: Sendable {
    private let topics = NIOLockedValueBox<[String: [String: Live.PresenceMember]]>([:])

    func join(_ topic: String, _ member: Live.PresenceMember) {
        self.topics.withLockedValue { $0[topic, default: [:]][member.session] = member }
    }

    /// False when the session was not a member.
    @discardableResult
    func leave(_ topic: String, session: String) -> Bool {
        self.topics.withLockedValue { topics in
            guard topics[topic]?.removeValue(forKey: session) != nil else { return false }
            if topics[topic]?.isEmpty == true { topics.removeValue(forKey: topic) }
            return true
        }
    }

    /// Oldest first.
    func members(_ topic: String) -> [Live.PresenceMember] {
        self.topics.withLockedValue { Array(($0[topic] ?? [:]).values) }.sorted { $0.joinedAt < $1.joinedAt }
    }

    /// Every topic's members (for a broker refresh).
    var all: [String: [Live.PresenceMember]] {
        self.topics.withLockedValue { $0.mapValues { Array($0.values) } }
    }
}
