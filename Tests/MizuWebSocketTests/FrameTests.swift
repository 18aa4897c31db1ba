@testable import MizuWebSocket
import MizuTestSupport
import NIOCore
import Testing

@Suite(.timeLimit(.minutes(10))) struct FrameTests {
    @Test(arguments: [0, 1, 7, 8, 125, 126, 65535, 65536, 70000])
    func parsesMaskedFramesOfEverySize(_ size: Int) throws {
        let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 * 31) }
        var parser = FrameParser(maxPayloadLength: 1 << 20)
        let wire = clientFrame(0x2, payload)
        var buffer = ByteBuffer(bytes: wire)
        // Byte by byte until complete: nothing is consumed before the frame is whole.
        var partial = ByteBuffer(bytes: wire.prefix(wire.count - 1))
        #expect(try parser.next(&partial) == nil)
        #expect(partial.readableBytes == wire.count - 1)
        let frame = try #require(try parser.next(&buffer))
        #expect(frame.opcode == .binary)
        #expect(frame.fin)
        #expect(Array(frame.payload.readableBytesView) == payload)
        #expect(buffer.readableBytes == 0)
    }

    @Test func rejectsProtocolViolations() {
        let cases: [([UInt8], WebSocketProtocolError)] = [
            (clientFrame(0x1, Array("x".utf8), mask: nil), .protocolError("unmasked client frame")),
            (clientFrame(0x3, []), .protocolError("reserved opcode 3")),
            (clientFrame(0xB, []), .protocolError("reserved opcode 11")),
            (clientFrame(0x9, [], fin: false), .protocolError("fragmented control frame")),
            (clientFrame(0x9, [UInt8](repeating: 0, count: 126)), .protocolError("control frame payload over 125 bytes")),
            (clientFrame(0x2, [UInt8](repeating: 0, count: 2000)), .messageTooLarge),
        ]
        for (wire, expected) in cases {
            var parser = FrameParser(maxPayloadLength: 1000)
            var buffer = ByteBuffer(bytes: wire)
            #expect(throws: expected) { try parser.next(&buffer) }
        }
        // A huge declared length is refused from the header alone, before any payload.
        var parser = FrameParser(maxPayloadLength: 1000)
        var header = ByteBuffer(bytes: [0x82, 0xFF, 0, 0, 0, 1, 0, 0, 0, 0])
        #expect(throws: WebSocketProtocolError.messageTooLarge) { try parser.next(&header) }
        var highBit = ByteBuffer(bytes: [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4])
        #expect(throws: WebSocketProtocolError.protocolError("payload length with the high bit set")) { try parser.next(&highBit) }
    }

    /// The client's half: what it writes a server reads back whole, whatever the size and key;
    /// what it reads must be unmasked (RFC 6455 section 5.1).
    @Test(arguments: [0, 1, 125, 126, 65535, 65536])
    func aClientsMaskedFramesReadBackWhole(_ size: Int) throws {
        let payload = ByteBuffer(bytes: (0..<size).map { UInt8(truncatingIfNeeded: $0 * 7 + 3) })
        for key: UInt32 in [0, 0x0102_0304, 0xFFFF_FFFF] {
            var wire = FrameWriter.maskedFrame(opcode: .text, fin: false, rsv1: true, payload: payload, key: key, allocator: ByteBufferAllocator())
            #expect(wire.getInteger(at: 1, as: UInt8.self)! & 0x80 != 0, "the mask bit")
            if size > 0 && key != 0 {
                #expect(wire.getSlice(at: wire.writerIndex - size, length: size) != payload, "the payload travels masked")
            }
            var server = FrameParser(maxPayloadLength: 1 << 20, role: .server)
            let frame = try #require(try server.next(&wire))
            #expect(frame.opcode == .text && !frame.fin && frame.rsv1 && frame.payload == payload)
        }
    }

    @Test func aClientReadsUnmaskedFramesAndRefusesMaskedOnes() throws {
        var client = FrameParser(maxPayloadLength: 1000, role: .client)
        var unmasked = FrameWriter.frame(opcode: .binary, payload: ByteBuffer(bytes: [1, 2, 3]), allocator: ByteBufferAllocator())
        #expect(try client.next(&unmasked)?.payload == ByteBuffer(bytes: [1, 2, 3]))
        var masked = ByteBuffer(bytes: clientFrame(0x2, [1, 2, 3]))
        #expect(throws: WebSocketProtocolError.protocolError("masked server frame")) { try client.next(&masked) }
        var huge = ByteBuffer(bytes: [0x82, 0x7F, 0, 0, 0, 1, 0, 0, 0, 0])
        #expect(throws: WebSocketProtocolError.messageTooLarge) { try client.next(&huge) }
    }

    @Test func writesServerFrames() {
        let allocator = ByteBufferAllocator()
        for size in [0, 125, 126, 65535, 65536] {
            let frame = FrameWriter.frame(opcode: .text, payload: ByteBuffer(repeating: 0x61, count: size), allocator: allocator)
            let bytes = Array(frame.readableBytesView)
            #expect(bytes[0] == 0x81)
            #expect(bytes[1] & 0x80 == 0, "server frames are not masked")
            #expect(bytes.count == FrameWriter.headerSize(payloadLength: size) + size)
        }
        let compressed = FrameWriter.frame(opcode: .binary, rsv1: true, payload: ByteBuffer(), allocator: allocator)
        #expect(Array(compressed.readableBytesView) == [0xC2, 0x00])
        let close = FrameWriter.closePayload(code: 1000, reason: String(repeating: "é", count: 100), allocator: allocator)
        #expect(close.readableBytes <= 125)
        #expect(String(validating: Array(close.readableBytesView.dropFirst(2)), as: UTF8.self) != nil, "cut on a character boundary")
    }
}
