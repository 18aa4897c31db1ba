import Foundation
import NIOCore

/// Where presence members are kept and read: this process (``MemoryPresence``) or a broker every
/// node shares (``SharedPresenceStore``). Chosen once, when the server is made.
protocol PresenceStore: Sendable {
    /// A session of this node joined `topic`.
    func join(_ topic: String, _ record: PresenceRecord)
    /// False when the session was not a member (nothing to tell anyone).
    func leave(_ topic: String, id: Live.SessionID) -> Bool
    /// Every member of `topic`, oldest first.
    func members(_ topic: String) async throws -> [Live.PresenceMember]
    /// Renews what would otherwise expire (the housekeeping timer).
    func refresh()
}

extension MemoryPresence: PresenceStore {
    func refresh() {}
}

/// Members in a broker every node shares (Redis). This node's own members are kept here too:
/// they are renewed there before they expire, and a leave is told only for a member.
struct SharedPresenceStore: PresenceStore {
    let shared: any SharedState
    let local = MemoryPresence()
    /// How long a member outlives the node that holds it, unless renewed.
    let expiry: TimeAmount

    func join(_ topic: String, _ record: PresenceRecord) {
        self.local.join(topic, record)
        self.shared.presenceJoin(topic, [record.member], expiry: self.expiry)
    }

    func leave(_ topic: String, id: Live.SessionID) -> Bool {
        guard self.local.leave(topic, id: id) else { return false }
        self.shared.presenceLeave(topic, session: id.text)
        return true
    }

    func members(_ topic: String) async throws -> [Live.PresenceMember] { try await self.shared.presence(topic) }

    func refresh() {
        for (topic, members) in self.local.all { self.shared.presenceJoin(topic, members, expiry: self.expiry) }
    }
}
