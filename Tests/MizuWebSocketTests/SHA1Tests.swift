@testable import MizuWebSocket
import Testing

/// The stack-only SHA-1 against known digests (from Python's hashlib), across the block
/// boundaries where the padding changes shape, and the accept value of RFC 6455's example.
@Suite struct SHA1Tests {
    static let vectors: [(message: [UInt8], hex: String)] = [
        ([], "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        (Array("abc".utf8), "a9993e364706816aba3e25717850c26c9cd0d89d"),
        (Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8), "84983e441c3bd26ebaae4aa1f95129e5e54670f1"),
        (Array(repeating: UInt8(ascii: "a"), count: 55), "c1c8bbdc22796e28c0e15163d20899b65621d65a"),
        (Array(repeating: UInt8(ascii: "a"), count: 63), "03f09f5b158a7a8cdad920bddc29b81c18a551f5"),
        (Array(repeating: UInt8(ascii: "a"), count: 64), "0098ba824b5c16427bd7a1122a5a442a25ec644d"),
        (Array(repeating: UInt8(ascii: "a"), count: 119), "ee971065aaa017e0632a8ca6c77bb3bf8b1dfc56"),
        (Array(repeating: UInt8(ascii: "a"), count: 1000), "291e9a6c66994949b57ba5e650361e98fc36b1ba"),
    ]

    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }

    @Test func digestsMatchKnownValues() {
        for vector in Self.vectors {
            #expect(Self.hex(SHA1.hash(vector.message)) == vector.hex, "length \(vector.message.count)")
        }
    }

    @Test func aMessageInTwoPartsHasTheDigestOfTheWhole() {
        let message = Self.vectors[2].message
        for split in 0...message.count {
            let digest = SHA1.digest(message[..<split], message[split...])
            let whole = SHA1.digest(message, EmptyCollection())
            #expect(digest == whole, "split at \(split)")
        }
    }

    @Test func theAcceptValueOfRFC6455sExample() {
        #expect(WebSocketHandshake.acceptValue(forKey: "dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }
}
