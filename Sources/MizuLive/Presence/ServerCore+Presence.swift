import Foundation
import MizuWebSocket
import NIOCore

extension ServerCore {
    /// `session` subscribed to `topic`: it becomes a member when the topic tracks presence.
    func joined(_ session: Live.Session, _ topic: String) {
        guard let presence = self.options.presence, presence.topics(topic) else { return }
        let record = PresenceRecord(id: session.identity, info: self.presenceInfo(session, presence), joinedAt: Date())
        self.presenceMembers.join(topic, record)
        guard let eventTopic = presence.eventTopic?(topic) else { return }
        var fields = ByteBuffer()
        record.member.encode(into: &fields)
        fields.moveReaderIndex(forwardBy: 1)  // the member's own "{": its fields join the event's
        var event = ByteBuffer()
        event.writeStaticString("{\"type\":\"join\",")
        event.writeBuffer(&fields)
        self.publish(eventTopic, Data(event.readableBytesView))
        guard presence.snapshotOnSubscribe else { return }
        // Shared with every subscriber asking meanwhile (see PresenceReads): no task and no
        // read of its own per subscribe, whatever the topic's size or the store's speed.
        self.presenceReads.members(topic, read: self.presenceStoreRead) { result in
            guard case .success(let members) = result else { return }
            try? session.send(Live.Message(topic: eventTopic, data: Self.snapshot(members)))
        }
    }

    /// `session` left `topics` (unsubscribed or closed).
    func left(_ session: Live.Session, _ topics: Set<String>) {
        guard let presence = self.options.presence else { return }
        for topic in topics where presence.topics(topic) && self.presenceMembers.leave(topic, id: session.identity) {
            guard let eventTopic = presence.eventTopic?(topic) else { continue }
            var event = ByteBuffer()
            event.writeStaticString("{\"type\":\"leave\",\"session\":")
            Live.Message.writeJSONString(session.id, into: &event)
            event.writeStaticString("}")
            self.publish(eventTopic, Data(event.readableBytesView))
        }
    }

    /// Every read of members goes through ``presenceReads``, the application's too.
    func presence(_ topic: String) async throws -> [Live.PresenceMember] {
        try await self.presenceReads.members(topic, read: self.presenceStoreRead)
    }

    /// The store's read, without keeping the core alive in a running read.
    private var presenceStoreRead: PresenceReads.Read {
        { [weak self] topic in try await self?.presenceMembers.members(topic) ?? [] }
    }

    private func presenceInfo(_ session: Live.Session, _ presence: Live.PresenceOptions) -> Data {
        if let info = presence.info?(session), !info.isEmpty, info.withUnsafeBytes({ JSONScanner.isValue($0) }) { return info }
        guard presence.info == nil else { return Data("null".utf8) }
        // The common value, a user's ID, written directly: JSONEncoder costs more than the rest
        // of a presence join (a connect profile: 1.6 % of the server's CPU).
        if let text = session.value as? String {
            var buffer = ByteBuffer()
            JSONString.write(text, into: &buffer)
            return Data(buffer.readableBytesView)
        }
        if let value = session.value as? any Encodable, let data = try? JSONEncoder().encode(value) { return data }
        return Data("null".utf8)
    }

    static func snapshot(_ members: [Live.PresenceMember]) -> Data {
        var buffer = ByteBuffer()
        buffer.writeStaticString("{\"type\":\"snapshot\",\"members\":[")
        for (index, member) in members.enumerated() {
            if index > 0 { buffer.writeStaticString(",") }
            member.encode(into: &buffer)
        }
        buffer.writeStaticString("]}")
        return Data(buffer.readableBytesView)
    }
}
