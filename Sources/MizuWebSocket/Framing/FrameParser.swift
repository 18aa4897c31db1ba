import NIOCore

/// Reads the peer's frames from bytes (RFC 6455 section 5.2): a value-type state machine that
/// keeps no buffer of its own. Frame-level rules are checked here; message-level rules
/// (continuations, RSV meaning) belong to ``MessageAssembler``.
struct FrameParser {
    /// Frames with a larger payload are refused before it is read.
    var maxPayloadLength: Int
    /// Which side reads: a server reads masked frames only, a client unmasked ones only
    /// (RFC 6455 section 5.1).
    let role: WebSocketRole

    private struct Header {
        var first: UInt8
        var length: Int
        var mask: UInt32
        var headerLength: Int
    }

    init(maxPayloadLength: Int, role: WebSocketRole = .server) {
        self.maxPayloadLength = maxPayloadLength
        self.role = role
    }

    /// The next complete frame at the front of `buffer`, consuming it; nil when more bytes
    /// are needed (nothing is consumed then).
    mutating func next(_ buffer: inout ByteBuffer) throws(WebSocketProtocolError) -> WebSocketFrame? {
        guard let header = try self.header(buffer) else { return nil }
        guard buffer.readableBytes >= header.headerLength + header.length else { return nil }
        buffer.moveReaderIndex(forwardBy: header.headerLength)
        if header.mask != 0 {
            Self.unmask(&buffer, length: header.length, key: header.mask)
        }
        let payload = buffer.readSlice(length: header.length)!
        let first = header.first
        guard let opcode = WebSocketOpcode(rawValue: first & 0x0F) else {
            throw .protocolError("reserved opcode \(first & 0x0F)")
        }
        return WebSocketFrame(
            fin: first & 0x80 != 0, rsv1: first & 0x40 != 0, rsv2: first & 0x20 != 0, rsv3: first & 0x10 != 0,
            opcode: opcode, payload: payload)
    }

    private func header(_ buffer: ByteBuffer) throws(WebSocketProtocolError) -> Header? {
        guard let (first, second) = buffer.getMultipleIntegers(at: buffer.readerIndex, as: (UInt8, UInt8).self) else {
            return nil
        }
        let opcode = first & 0x0F
        guard WebSocketOpcode(rawValue: opcode) != nil else { throw .protocolError("reserved opcode \(opcode)") }
        let isControl = opcode & 0x8 != 0
        if isControl && first & 0x80 == 0 { throw .protocolError("fragmented control frame") }
        // RFC 6455 section 5.1: a server MUST close on an unmasked client frame, a client on a
        // masked server frame.
        let masked = second & 0x80 != 0
        switch self.role {
        case .server: guard masked else { throw .protocolError("unmasked client frame") }
        case .client: guard !masked else { throw .protocolError("masked server frame") }
        }
        var offset = buffer.readerIndex + 2
        var length = Int(second & 0x7F)
        if isControl && length > 125 { throw .protocolError("control frame payload over 125 bytes") }
        if length == 126 {
            guard let value = buffer.getInteger(at: offset, as: UInt16.self) else { return nil }
            length = Int(value)
            offset += 2
        } else if length == 127 {
            guard let value = buffer.getInteger(at: offset, as: UInt64.self) else { return nil }
            guard value & (1 << 63) == 0 else { throw .protocolError("payload length with the high bit set") }
            guard value <= UInt64(self.maxPayloadLength) else { throw .messageTooLarge }
            length = Int(value)
            offset += 8
        }
        guard length <= self.maxPayloadLength else { throw .messageTooLarge }
        var mask: UInt32 = 0
        if masked {
            guard let key = buffer.getInteger(at: offset, as: UInt32.self) else { return nil }
            mask = key
            offset += 4
        }
        return Header(first: first, length: length, mask: mask, headerLength: offset - buffer.readerIndex)
    }

    /// XORs the payload in place with the masking key (RFC 6455 section 5.3), eight bytes a step.
    static func unmask(_ buffer: inout ByteBuffer, length: Int, key: UInt32) {
        buffer.withUnsafeMutableReadableBytes { bytes in
            let bytes = UnsafeMutableRawBufferPointer(rebasing: bytes[0..<length])
            let keyBytes: (UInt8, UInt8, UInt8, UInt8) = (UInt8(key >> 24), UInt8((key >> 16) & 0xFF), UInt8((key >> 8) & 0xFF), UInt8(key & 0xFF))
            var wide: UInt64 = 0
            withUnsafeMutableBytes(of: &wide) { w in
                for i in 0..<8 {
                    switch i % 4 {
                    case 0: w[i] = keyBytes.0
                    case 1: w[i] = keyBytes.1
                    case 2: w[i] = keyBytes.2
                    default: w[i] = keyBytes.3
                    }
                }
            }
            var index = 0
            while index + 8 <= length {
                let value = bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                bytes.storeBytes(of: value ^ wide, toByteOffset: index, as: UInt64.self)
                index += 8
            }
            while index < length {
                let k: UInt8
                switch index % 4 {
                case 0: k = keyBytes.0
                case 1: k = keyBytes.1
                case 2: k = keyBytes.2
                default: k = keyBytes.3
                }
                bytes[index] ^= k
                index += 1
            }
        }
    }
}

/// Why the server must close a WebSocket connection (RFC 6455 section 7.4.1).
enum WebSocketProtocolError: Error, Equatable {
    /// 1002: the peer broke the framing rules.
    case protocolError(String)
    /// 1007: a text message (or close reason) is not valid UTF-8.
    case invalidUTF8
    /// 1009: a message is over the read limit.
    case messageTooLarge
    /// 1007: the payload cannot be what the message says it is (corrupt compressed data).
    case invalidPayload(String)

    var closeCode: UInt16 {
        switch self {
        case .protocolError: return 1002
        case .invalidUTF8, .invalidPayload: return 1007
        case .messageTooLarge: return 1009
        }
    }

    var reason: String {
        switch self {
        case .protocolError(let reason): return reason
        case .invalidUTF8: return "invalid UTF-8 in text"
        case .messageTooLarge: return "message too large"
        case .invalidPayload(let reason): return reason
        }
    }
}
