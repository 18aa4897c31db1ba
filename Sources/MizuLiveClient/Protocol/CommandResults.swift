/// The `result` objects of the commands' replies, read as strictly as ``ServerFrame``.
enum CommandResults {
    /// `{"topic":T,"recovered":B,"offset":O,"epoch":E}` (no position for a topic without history).
    struct Subscribed: Equatable {
        var recovered: Bool
        var position: StreamPosition?
    }

    static func subscribed(_ result: [UInt8]) -> Subscribed? {
        result.withUnsafeBytes { raw in
            var recovered = false
            var offset: UInt64?
            var epoch: String?
            let valid = JSONValue.forEachMember(raw) { key, value in
                switch key {
                case "recovered": recovered = JSONValue.bool(value) ?? false
                case "offset": offset = JSONValue.count(value)
                case "epoch": epoch = JSONValue.string(value)
                default: break
                }
            }
            guard valid else { return nil }
            let position = offset.flatMap { offset in epoch.map { StreamPosition(offset: offset, epoch: $0) } }
            return Subscribed(recovered: recovered, position: position)
        }
    }

    static func history(_ result: [UInt8], topic: String) -> HistoryPage? {
        result.withUnsafeBytes { raw in
            var messages: [LiveMessage] = []
            var offset: UInt64?
            var epoch: String?
            var complete = false
            var publicationsValid = true
            let valid = JSONValue.forEachMember(raw) { key, value in
                switch key {
                case "publications":
                    publicationsValid = JSONValue.forEachElement(value) { element in
                        guard let message = Self.publication(element, topic: topic) else {
                            publicationsValid = false
                            return
                        }
                        messages.append(message)
                    }
                case "offset": offset = JSONValue.count(value)
                case "epoch": epoch = JSONValue.string(value)
                case "complete": complete = JSONValue.bool(value) ?? false
                default: break
                }
            }
            guard valid, publicationsValid, let offset, let epoch else { return nil }
            return HistoryPage(messages: messages, position: StreamPosition(offset: offset, epoch: epoch), complete: complete)
        }
    }

    private static func publication(_ raw: UnsafeRawBufferPointer, topic: String) -> LiveMessage? {
        var data: [UInt8]?
        var offset: UInt64?
        var epoch: String?
        guard JSONValue.forEachMember(raw, { key, value in
            switch key {
            case "data": data = Array(value)
            case "offset": offset = JSONValue.count(value)
            case "epoch": epoch = JSONValue.string(value)
            default: break
            }
        }), let data, let offset, let epoch else { return nil }
        return LiveMessage(topic: topic, data: data, position: StreamPosition(offset: offset, epoch: epoch))
    }

    static func presence(_ result: [UInt8]) -> PresenceSnapshot? {
        result.withUnsafeBytes { raw in
            var members: [PresenceSnapshot.Member] = []
            var truncated = false
            var membersValid = true
            let valid = JSONValue.forEachMember(raw) { key, value in
                switch key {
                case "members":
                    membersValid = JSONValue.forEachElement(value) { element in
                        var session: String?
                        var info: [UInt8] = []
                        var joinedAt: Int64 = 0
                        let ok = JSONValue.forEachMember(element) { key, value in
                            switch key {
                            case "session": session = JSONValue.string(value)
                            case "info": info = Array(value)
                            case "joinedAt": joinedAt = JSONValue.count(value).map { Int64($0) } ?? 0
                            default: break
                            }
                        }
                        guard ok, let session else {
                            membersValid = false
                            return
                        }
                        members.append(PresenceSnapshot.Member(session: session, info: info, joinedAt: joinedAt))
                    }
                case "truncated": truncated = JSONValue.bool(value) ?? false
                default: break
                }
            }
            guard valid, membersValid else { return nil }
            return PresenceSnapshot(members: members, truncated: truncated)
        }
    }
}
