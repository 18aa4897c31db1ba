/// Redis Cluster's key-to-slot rule (the cluster specification, "Keys distribution model"):
/// CRC16 (XMODEM: polynomial 0x1021, initial value 0) of the key, modulo 16384; when the key
/// holds a hash tag, a `{` followed later by a `}` with at least one byte between them (the
/// first `{` and the first `}` after it), only the bytes between are hashed, so keys that share
/// a tag share a slot.
enum ClusterSlot {
    static let count = 16_384

    static func of(_ key: some Collection<UInt8>) -> Int {
        let bytes = Array(key)
        if let open = bytes.firstIndex(of: UInt8(ascii: "{")),
           let close = bytes[(open + 1)...].firstIndex(of: UInt8(ascii: "}")), close > open + 1 {
            return Int(Self.crc16(bytes[(open + 1)..<close])) % Self.count
        }
        return Int(Self.crc16(bytes)) % Self.count
    }

    static func of(_ key: String) -> Int { Self.of(key.utf8) }

    static func crc16(_ bytes: some Sequence<UInt8>) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc = (crc << 8) ^ Self.table[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ byte)]
        }
        return crc
    }

    private static let table: [UInt16] = (0..<256).map { index in
        var value = UInt16(index) << 8
        for _ in 0..<8 { value = value & 0x8000 != 0 ? (value << 1) ^ 0x1021 : value << 1 }
        return value
    }

    /// `{tag}` for a topic's keys: every key of one topic in one slot. The topic is escaped so
    /// that no brace in a name can end the tag early or leave it empty (`%` as `%25`, `{` as
    /// `%7B`, `}` as `%7D`); an empty topic still gets a non-empty tag.
    static func hashTag(forTopic topic: String) -> String {
        var tag = "{"
        for scalar in topic.unicodeScalars {
            switch scalar {
            case "%": tag += "%25"
            case "{": tag += "%7B"
            case "}": tag += "%7D"
            default: tag.unicodeScalars.append(scalar)
            }
        }
        if topic.isEmpty { tag += "%" }
        return tag + "}"
    }
}
