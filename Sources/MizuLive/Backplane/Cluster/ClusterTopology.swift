import NIOCore

/// Which node serves which slots, read from a `CLUSTER SLOTS` reply (an array of
/// `[first, last, [host, port, id, ...], replica...]`). Read strictly: a range out of 0-16383,
/// inverted, or overlapping another, a port out of range, a shape that is not the reply's:
/// the whole reply is refused (nil), so a confused node never redraws the map half-way.
struct ClusterTopology: Equatable, Sendable {
    struct Shard: Equatable, Sendable {
        var slots: ClosedRange<Int>
        var primary: ClusterNodeAddress
        var replicas: [ClusterNodeAddress]
    }

    /// Sorted by first slot, no overlap.
    private(set) var shards: [Shard]

    init?(shards: [Shard]) {
        let sorted = shards.sorted { $0.slots.lowerBound < $1.slots.lowerBound }
        for (previous, next) in zip(sorted, sorted.dropFirst()) where previous.slots.upperBound >= next.slots.lowerBound {
            return nil
        }
        self.shards = sorted
    }

    /// The primary that serves `slot`; nil when no shard does (the cluster is not fully covered).
    func primary(of slot: Int) -> ClusterNodeAddress? {
        var low = 0
        var high = self.shards.count - 1
        while low <= high {
            let middle = (low + high) / 2
            let shard = self.shards[middle]
            if slot < shard.slots.lowerBound {
                high = middle - 1
            } else if slot > shard.slots.upperBound {
                low = middle + 1
            } else {
                return shard.primary
            }
        }
        return nil
    }

    /// Whether every slot has a primary.
    var coversEverySlot: Bool {
        var next = 0
        for shard in self.shards {
            guard shard.slots.lowerBound == next else { return false }
            next = shard.slots.upperBound + 1
        }
        return next == ClusterSlot.count
    }

    /// Every primary, once each.
    var primaries: [ClusterNodeAddress] {
        var seen = Set<ClusterNodeAddress>()
        return self.shards.map(\.primary).filter { seen.insert($0).inserted }
    }

    /// Reads a `CLUSTER SLOTS` reply from the node at `asked` (an empty host, or `?`, means
    /// that node's own address, as the specification says).
    init?(slotsReply reply: RESPValue, asked: ClusterNodeAddress) {
        guard case .array(let entries?) = reply else { return nil }
        var shards: [Shard] = []
        for entry in entries {
            guard case .array(let fields?) = entry, fields.count >= 3,
                  case .integer(let first) = fields[0], case .integer(let last) = fields[1],
                  (0..<Int64(ClusterSlot.count)).contains(first), (0..<Int64(ClusterSlot.count)).contains(last), first <= last,
                  let primary = Self.node(fields[2], asked: asked)
            else { return nil }
            var replicas: [ClusterNodeAddress] = []
            for field in fields.dropFirst(3) {
                guard let replica = Self.node(field, asked: asked) else { return nil }
                replicas.append(replica)
            }
            shards.append(Shard(slots: Int(first)...Int(last), primary: primary, replicas: replicas))
        }
        self.init(shards: shards)
    }

    private static func node(_ value: RESPValue, asked: ClusterNodeAddress) -> ClusterNodeAddress? {
        guard case .array(let fields?) = value, fields.count >= 2, case .integer(let port) = fields[1], (1...65535).contains(port) else { return nil }
        let host: String
        switch fields[0] {
        case .bulkString(let buffer?): host = String(buffer: buffer)
        case .simpleString(let text): host = text
        case .bulkString(nil): host = ""
        default: return nil
        }
        if host.isEmpty || host == "?" { return ClusterNodeAddress(host: asked.host, port: Int(port)) }
        return ClusterNodeAddress("\(host):\(port)")
    }
}
