/// The errors a Redis Cluster answers with instead of a result, read strictly: every number
/// (slot, port) checked, anything else is `.other` and never trusted.
enum ClusterRedirect: Equatable {
    /// `MOVED slot host:port`: the slot lives there now; update the map and retry there.
    case moved(slot: Int, to: ClusterNodeAddress)
    /// `ASK slot host:port`: this one command goes there, after `ASKING`; the map stays.
    case ask(slot: Int, to: ClusterNodeAddress)
    /// `TRYAGAIN`: a multi-key command during a migration; retry after a short wait.
    case tryAgain
    /// `CLUSTERDOWN`: the cluster cannot serve now (a failover in progress); retry with backoff.
    case clusterDown
    /// `ORDER`: a history publish whose predecessor of its topic is not applied (refused
    /// before it); held and sent again behind it (``PublishOrder``).
    case outOfOrder
    /// Any other error: not a redirect.
    case other

    /// Reads `text`, the error `asked` answered with (a redirect with an empty host, `:port`,
    /// means that node's own host, as the specification says).
    init(error text: String, asked: ClusterNodeAddress) {
        let words = text.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
        switch words.first {
        case "MOVED"?, "ASK"?:
            // `:port` alone (one colon) has no host; `::1:7000` is an IPv6 host.
            let given = words.count == 3 ? String(words[2]) : ""
            let target = given.hasPrefix(":") && given.utf8.filter({ $0 == UInt8(ascii: ":") }).count == 1 ? asked.host + given : given
            guard words.count == 3, let slot = Self.slot(words[1]), let address = ClusterNodeAddress(target) else {
                self = .other
                return
            }
            self = words[0] == "MOVED" ? .moved(slot: slot, to: address) : .ask(slot: slot, to: address)
        case "TRYAGAIN"?: self = .tryAgain
        case "CLUSTERDOWN"?: self = .clusterDown
        case "ORDER"?: self = .outOfOrder
        default: self = .other
        }
    }

    /// Plain digits below 16384.
    private static func slot(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.count <= 5, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let value = Int(text), value < ClusterSlot.count else { return nil }
        return value
    }
}

/// A cluster node's address as Redis gives it: `host:port` (the port after the last colon, so
/// an IPv6 address `::1:7000` or `[::1]:7000` reads too).
struct ClusterNodeAddress: Hashable, Sendable, CustomStringConvertible {
    var host: String
    var port: Int

    init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = String(text[..<colon])
        let portText = text[text.index(after: colon)...]
        guard !portText.isEmpty, portText.count <= 5, portText.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let port = Int(portText), (1...65535).contains(port) else { return nil }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, host.utf8.count <= 255, !host.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) else { return nil }
        self.host = host
        self.port = port
    }

    var description: String { self.host.contains(":") ? "[\(self.host)]:\(self.port)" : "\(self.host):\(self.port)" }
}
