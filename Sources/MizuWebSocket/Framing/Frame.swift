import NIOCore

/// One frame as read from the peer, payload already unmasked.
struct WebSocketFrame {
    var fin: Bool
    var rsv1: Bool
    var rsv2: Bool
    var rsv3: Bool
    var opcode: WebSocketOpcode
    var payload: ByteBuffer
}

/// Writes frames: a server's are never masked, a client's always are (RFC 6455 section 5.1).
enum FrameWriter {
    /// Bytes of a frame header for a payload of `length` bytes.
    static func headerSize(payloadLength length: Int) -> Int {
        length < 126 ? 2 : (length <= 0xFFFF ? 4 : 10)
    }

    /// `masked`: the mask bit is set (the caller writes the key next).
    static func writeHeader(into buffer: inout ByteBuffer, opcode: WebSocketOpcode, fin: Bool = true, rsv1: Bool = false, masked: Bool = false, length: Int) {
        var first = opcode.rawValue
        if fin { first |= 0x80 }
        if rsv1 { first |= 0x40 }
        let mask: UInt8 = masked ? 0x80 : 0
        if length < 126 {
            buffer.writeMultipleIntegers(first, mask | UInt8(length))
        } else if length <= 0xFFFF {
            buffer.writeMultipleIntegers(first, mask | 126, UInt16(length))
        } else {
            buffer.writeMultipleIntegers(first, mask | 127, UInt64(length))
        }
    }

    /// A whole frame in one buffer: what a broadcast writes to every subscriber.
    static func frame(opcode: WebSocketOpcode, rsv1: Bool = false, payload: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: self.headerSize(payloadLength: payload.readableBytes) + payload.readableBytes)
        self.writeHeader(into: &buffer, opcode: opcode, rsv1: rsv1, length: payload.readableBytes)
        var payload = payload
        buffer.writeBuffer(&payload)
        return buffer
    }

    /// A client's frame: masked with `key` (RFC 6455 section 5.3; the key must be new and
    /// unpredictable for every frame, so a client draws it from the system's random source).
    static func maskedFrame(opcode: WebSocketOpcode, fin: Bool = true, rsv1: Bool = false, payload: ByteBuffer, key: UInt32, allocator: ByteBufferAllocator) -> ByteBuffer {
        let length = payload.readableBytes
        var buffer = allocator.buffer(capacity: self.headerSize(payloadLength: length) + 4 + length)
        self.writeHeader(into: &buffer, opcode: opcode, fin: fin, rsv1: rsv1, masked: true, length: length)
        buffer.writeInteger(key)
        var payload = payload
        var masked = allocator.buffer(capacity: length)
        masked.writeBuffer(&payload)
        FrameParser.unmask(&masked, length: length, key: key)  // XOR is its own inverse
        buffer.writeBuffer(&masked)
        return buffer
    }

    /// A close frame's payload: the code, then the UTF-8 reason (RFC 6455 section 5.5.1).
    static func closePayload(code: UInt16?, reason: String, allocator: ByteBufferAllocator) -> ByteBuffer {
        guard let code else { return allocator.buffer(capacity: 0) }
        var buffer = allocator.buffer(capacity: 2 + reason.utf8.count)
        buffer.writeInteger(code)
        // A control payload is at most 125 bytes; cut the reason on a character boundary.
        var reasonBytes = Array(reason.utf8.prefix(123))
        while !reasonBytes.isEmpty, String(validating: reasonBytes, as: UTF8.self) == nil { reasonBytes.removeLast() }
        buffer.writeBytes(reasonBytes)
        return buffer
    }
}
