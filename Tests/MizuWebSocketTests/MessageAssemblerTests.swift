@testable import MizuWebSocket
import MizuTestSupport
import NIOCore
import Testing

@Suite(.timeLimit(.minutes(10))) struct MessageAssemblerTests {
    let allocator = ByteBufferAllocator()

    func frame(_ opcode: WebSocketOpcode, _ text: String, fin: Bool = true, rsv1: Bool = false) -> WebSocketFrame {
        WebSocketFrame(fin: fin, rsv1: rsv1, rsv2: false, rsv3: false, opcode: opcode, payload: ByteBuffer(string: text))
    }

    @Test func assemblesFragmentsWithControlFramesBetween() throws {
        var assembler = MessageAssembler(maxMessageSize: 100, deflate: nil)
        #expect(try assembler.receive(self.frame(.text, "Hel", fin: false), allocator: self.allocator) == .none)
        #expect(try assembler.receive(self.frame(.ping, "p"), allocator: self.allocator) == .ping(ByteBuffer(string: "p")))
        #expect(try assembler.receive(self.frame(.continuation, "lo", fin: false), allocator: self.allocator) == .none)
        #expect(try assembler.receive(self.frame(.continuation, "!"), allocator: self.allocator) == .message(.text("Hello!")))
        #expect(try assembler.receive(self.frame(.binary, "b"), allocator: self.allocator) == .message(.binary([0x62])))
    }

    @Test func enforcesContinuationRules() {
        var assembler = MessageAssembler(maxMessageSize: 100, deflate: nil)
        #expect(throws: WebSocketProtocolError.protocolError("continuation without a message")) {
            try assembler.receive(self.frame(.continuation, "x"), allocator: self.allocator)
        }
        var started = MessageAssembler(maxMessageSize: 100, deflate: nil)
        _ = try? started.receive(self.frame(.text, "a", fin: false), allocator: self.allocator)
        #expect(throws: WebSocketProtocolError.protocolError("new message before the previous one ended")) {
            try started.receive(self.frame(.binary, "b"), allocator: self.allocator)
        }
        var rsv = MessageAssembler(maxMessageSize: 100, deflate: nil)
        #expect(throws: WebSocketProtocolError.protocolError("RSV1 set without permessage-deflate")) {
            try rsv.receive(self.frame(.text, "a", rsv1: true), allocator: self.allocator)
        }
    }

    @Test func failsFastOnInvalidUTF8AndChecksTheEnd() {
        var assembler = MessageAssembler(maxMessageSize: 100, deflate: nil)
        let bad = WebSocketFrame(fin: false, rsv1: false, rsv2: false, rsv3: false, opcode: .text, payload: ByteBuffer(bytes: [0x61, 0xFF]))
        #expect(throws: WebSocketProtocolError.invalidUTF8) { try assembler.receive(bad, allocator: self.allocator) }
        var truncated = MessageAssembler(maxMessageSize: 100, deflate: nil)
        let cut = WebSocketFrame(fin: true, rsv1: false, rsv2: false, rsv3: false, opcode: .text, payload: ByteBuffer(bytes: [0xE2, 0x82]))
        #expect(throws: WebSocketProtocolError.invalidUTF8) { try truncated.receive(cut, allocator: self.allocator) }
    }

    @Test func enforcesTheReadLimitAcrossFragments() {
        var assembler = MessageAssembler(maxMessageSize: 5, deflate: nil)
        _ = try? assembler.receive(self.frame(.binary, "abc", fin: false), allocator: self.allocator)
        #expect(throws: WebSocketProtocolError.messageTooLarge) {
            try assembler.receive(self.frame(.continuation, "def"), allocator: self.allocator)
        }
    }

    @Test func validatesCloseFrames() throws {
        func close(_ bytes: [UInt8]) throws -> MessageAssembler.Action {
            try MessageAssembler.parseClose(ByteBuffer(bytes: bytes))
        }
        #expect(try close([]) == .close(code: nil, reason: ""))
        #expect(try close([0x03, 0xE8] + Array("bye".utf8)) == .close(code: 1000, reason: "bye"))
        #expect(try close([0x0F, 0xA0]) == .close(code: 4000, reason: ""))
        #expect(throws: WebSocketProtocolError.protocolError("close frame with a 1-byte payload")) { try close([0x03]) }
        for code: UInt16 in [0, 999, 1004, 1005, 1006, 1012, 1015, 2999, 5000] {
            #expect(throws: WebSocketProtocolError.protocolError("invalid close code \(code)")) {
                try close([UInt8(code >> 8), UInt8(code & 0xFF)])
            }
        }
        #expect(throws: WebSocketProtocolError.invalidUTF8) { try close([0x03, 0xE8, 0xFF]) }
    }

    @Test func inflatesCompressedMessagesWithinTheLimit() throws {
        let deflate = NegotiatedDeflate(serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 15, clientMaxWindowBits: 15)
        let text = String(repeating: "compress me please ", count: 50)
        let compressed = try #require(Deflater(windowBits: 15, level: 6, memoryLevel: 8).compress(ByteBuffer(string: text), allocator: self.allocator, keepContext: false))
        var assembler = MessageAssembler(maxMessageSize: 10_000, deflate: deflate)
        let frame = WebSocketFrame(fin: true, rsv1: true, rsv2: false, rsv3: false, opcode: .text, payload: compressed)
        #expect(try assembler.receive(frame, allocator: self.allocator) == .message(.text(text)))
        #expect(!assembler.holdsInflateState, "client_no_context_takeover: inflate state is freed after each message")

        // A zip bomb: 1 MiB of zeros compresses to about 1 KiB and must stop at the limit.
        let bomb = try #require(Deflater(windowBits: 15, level: 9, memoryLevel: 8).compress(ByteBuffer(repeating: 0, count: 1 << 20), allocator: self.allocator, keepContext: false))
        #expect(bomb.readableBytes < 2048)
        var limited = MessageAssembler(maxMessageSize: 64 * 1024, deflate: deflate)
        let bombFrame = WebSocketFrame(fin: true, rsv1: true, rsv2: false, rsv3: false, opcode: .binary, payload: bomb)
        #expect(throws: WebSocketProtocolError.messageTooLarge) { try limited.receive(bombFrame, allocator: self.allocator) }

        var corrupt = MessageAssembler(maxMessageSize: 1000, deflate: deflate)
        let garbage = WebSocketFrame(fin: true, rsv1: true, rsv2: false, rsv3: false, opcode: .binary, payload: ByteBuffer(bytes: [0xFF, 0xFF, 0xFF]))
        #expect(throws: WebSocketProtocolError.invalidPayload("invalid compressed data")) { try corrupt.receive(garbage, allocator: self.allocator) }
    }

    @Test func noLimitMeansTheLargestBufferAndItsArithmeticHolds() throws {
        // Int.max is how an application says "no limit": the limit's arithmetic (room left
        // for inflating, header plus payload) must not overflow, and it counts as 2 GiB.
        var configuration = WebSocketConfiguration()
        configuration.maxMessageSize = .max
        #expect(configuration.messageSizeLimit == WebSocketConfiguration.largestMessageSize)
        configuration.maxMessageSize = -1
        #expect(configuration.messageSizeLimit == 0)
        let deflate = NegotiatedDeflate(serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 15, clientMaxWindowBits: 15)
        let text = String(repeating: "no limit ", count: 40)
        let compressed = try #require(Deflater(windowBits: 15, level: 6, memoryLevel: 8).compress(ByteBuffer(string: text), allocator: self.allocator, keepContext: false))
        var assembler = MessageAssembler(maxMessageSize: WebSocketConfiguration.largestMessageSize, deflate: deflate)
        let frame = WebSocketFrame(fin: true, rsv1: true, rsv2: false, rsv3: false, opcode: .text, payload: compressed)
        #expect(try assembler.receive(frame, allocator: self.allocator) == .message(.text(text)))
    }
}
