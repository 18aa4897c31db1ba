/// How a topic's Redis names are formed, and which pub/sub commands carry its messages.
///
/// One Redis (`classic`): the names the broker has always used (`<prefix><topic>` as the
/// channel, `<prefix>history:<topic>` and so on), classic PUBLISH/SUBSCRIBE. A Redis Cluster
/// (`sharded`): every name of a topic holds the topic's hash tag (``ClusterSlot/hashTag(forTopic:)``),
/// so its stream, meta, presence keys and channel share one slot and one publish stays one
/// atomic script on one shard; messages go by SPUBLISH/SSUBSCRIBE, which only the slot's
/// owner (and its replicas) carries, instead of every node of the cluster.
struct RedisKeyspace: Sendable {
    let prefix: String
    let sharded: Bool

    /// The topic's channel: `<prefix><topic>`, or `<prefix>{<escaped topic>}`.
    func channel(_ topic: String) -> String {
        self.sharded ? self.prefix + ClusterSlot.hashTag(forTopic: topic) : self.prefix + topic
    }

    /// One of the topic's keys (`history`, `history-meta`, `presence`, ...):
    /// `<prefix><kind>:<topic>`, or `<prefix>{<escaped topic>}:<kind>`.
    func key(_ kind: String, _ topic: String) -> String {
        self.sharded ? self.prefix + ClusterSlot.hashTag(forTopic: topic) + ":" + kind : self.prefix + kind + ":" + topic
    }

    /// The slot every name of the topic is in (a Redis Cluster's; meaningless for one Redis).
    func slot(_ topic: String) -> Int {
        ClusterSlot.of(ClusterSlot.hashTag(forTopic: topic))
    }

    /// The topic a channel carries; nil for a channel that is not one of this keyspace's.
    func topic(ofChannel channel: some Collection<UInt8>) -> String? {
        let prefix = self.prefix.utf8
        guard channel.starts(with: prefix) else { return nil }
        let rest = channel.dropFirst(prefix.count)
        guard self.sharded else { return String(decoding: rest, as: UTF8.self) }
        let tag = Array(rest)
        guard tag.count >= 3, tag.first == UInt8(ascii: "{"), tag.last == UInt8(ascii: "}") else { return nil }
        return Self.unescape(tag.dropFirst().dropLast())
    }

    /// The inverse of the tag's escaping (`%25`, `%7B`, `%7D`); nil for any other `%`.
    private static func unescape(_ bytes: some Collection<UInt8>) -> String? {
        let bytes = Array(bytes)
        // The empty topic's tag is a lone "%".
        if bytes == [UInt8(ascii: "%")] { return "" }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "{") || byte == UInt8(ascii: "}") { return nil }
            guard byte == UInt8(ascii: "%") else {
                out.append(byte)
                index += 1
                continue
            }
            guard index + 2 < bytes.count else { return nil }
            switch (bytes[index + 1], bytes[index + 2]) {
            case (UInt8(ascii: "2"), UInt8(ascii: "5")): out.append(UInt8(ascii: "%"))
            case (UInt8(ascii: "7"), UInt8(ascii: "B")): out.append(UInt8(ascii: "{"))
            case (UInt8(ascii: "7"), UInt8(ascii: "D")): out.append(UInt8(ascii: "}"))
            default: return nil
            }
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: Commands and pushes

    var publishCommand: String { self.sharded ? "SPUBLISH" : "PUBLISH" }
    var subscribeCommand: String { self.sharded ? "SSUBSCRIBE" : "SUBSCRIBE" }
    var unsubscribeCommand: String { self.sharded ? "SUNSUBSCRIBE" : "UNSUBSCRIBE" }
    var messagePush: String { self.sharded ? "smessage" : "message" }
    var subscribePush: String { self.sharded ? "ssubscribe" : "subscribe" }
    var unsubscribePush: String { self.sharded ? "sunsubscribe" : "unsubscribe" }
}
