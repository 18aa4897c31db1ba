/// SHA-1 (RFC 3174), only for `Sec-WebSocket-Accept` (RFC 6455 section 4.2.2), where the
/// algorithm is fixed by the protocol and no security rests on it. Works on the stack: a
/// handshake costs no allocation here (it used to cost about fifteen).
enum SHA1 {
    typealias Digest = (UInt32, UInt32, UInt32, UInt32, UInt32)

    /// The digest of `first` followed by `second` (no copy of either is made).
    static func digest(_ first: some Sequence<UInt8>, _ second: some Sequence<UInt8>) -> Digest {
        var state: Digest = (0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0)
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { block in
            withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 80) { schedule in
                var filled = 0
                var length: UInt64 = 0
                func append(_ byte: UInt8) {
                    block[filled] = byte
                    filled += 1
                    if filled == 64 {
                        compress(&state, block, schedule)
                        filled = 0
                    }
                }
                for byte in first {
                    append(byte)
                    length &+= 1
                }
                for byte in second {
                    append(byte)
                    length &+= 1
                }
                // Padding: 0x80, zeros up to 56 bytes into a block, the length in bits.
                append(0x80)
                while filled != 56 { append(0) }
                let bits = length &* 8
                for shift in stride(from: 56, through: 0, by: -8) { append(UInt8(truncatingIfNeeded: bits >> UInt64(shift))) }
            }
        }
        return state
    }

    /// The digest as 20 bytes, for tests and the rare caller that wants an array.
    static func hash(_ message: [UInt8]) -> [UInt8] {
        let digest = digest(message, EmptyCollection())
        return [digest.0, digest.1, digest.2, digest.3, digest.4].flatMap { word in
            (0..<4).map { UInt8(truncatingIfNeeded: word >> UInt32(24 - $0 * 8)) }
        }
    }

    private static func compress(_ state: inout Digest, _ block: UnsafeMutableBufferPointer<UInt8>, _ w: UnsafeMutableBufferPointer<UInt32>) {
        for i in 0..<16 {
            let j = i * 4
            w[i] = UInt32(block[j]) << 24 | UInt32(block[j + 1]) << 16 | UInt32(block[j + 2]) << 8 | UInt32(block[j + 3])
        }
        for i in 16..<80 {
            let x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]
            w[i] = x << 1 | x >> 31
        }
        var (a, b, c, d, e) = state
        for i in 0..<80 {
            let f: UInt32, k: UInt32
            switch i {
            case 0..<20: f = (b & c) | (~b & d); k = 0x5A82_7999
            case 20..<40: f = b ^ c ^ d; k = 0x6ED9_EBA1
            case 40..<60: f = (b & c) | (b & d) | (c & d); k = 0x8F1B_BCDC
            default: f = b ^ c ^ d; k = 0xCA62_C1D6
            }
            let temp = (a << 5 | a >> 27) &+ f &+ e &+ k &+ w[i]
            e = d; d = c; c = b << 30 | b >> 2; b = a; a = temp
        }
        state = (state.0 &+ a, state.1 &+ b, state.2 &+ c, state.3 &+ d, state.4 &+ e)
    }
}

extension WebSocketHandshake {
    /// `Sec-WebSocket-Accept` for `key`: base64 of SHA-1 of the key and the protocol's GUID
    /// (RFC 6455 section 4.2.2), built with one allocation (the string itself).
    static func acceptValue(forKey key: String) -> String {
        let digest = SHA1.digest(key.utf8, Self.guid.utf8)
        let alphabet: StaticString = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        return String(unsafeUninitializedCapacity: 28) { output in
            alphabet.withUTF8Buffer { symbols in
                func byte(_ index: Int) -> UInt32 {
                    let word: UInt32
                    switch index / 4 {
                    case 0: word = digest.0
                    case 1: word = digest.1
                    case 2: word = digest.2
                    case 3: word = digest.3
                    default: word = digest.4
                    }
                    return (word >> UInt32(24 - (index % 4) * 8)) & 0xFF
                }
                var written = 0
                // 20 bytes: six groups of three, then two bytes and one '='.
                for group in 0..<7 {
                    let start = group * 3
                    let b0 = byte(start), b1 = byte(start + 1), b2 = start + 2 < 20 ? byte(start + 2) : 0
                    let triple = b0 << 16 | b1 << 8 | b2
                    output[written] = symbols[Int(triple >> 18 & 63)]
                    output[written + 1] = symbols[Int(triple >> 12 & 63)]
                    output[written + 2] = symbols[Int(triple >> 6 & 63)]
                    output[written + 3] = start + 2 < 20 ? symbols[Int(triple & 63)] : UInt8(ascii: "=")
                    written += 4
                }
                return written
            }
        }
    }
}
