import NIOCore

/// Turns frames into messages (RFC 6455 section 5.4): continuation rules, control frames
/// between fragments, RSV1 meaning, incremental UTF-8 validation, the read limit (checked
/// as fragments arrive and again on the inflated size), and inflation for permessage-deflate.
struct MessageAssembler {
    /// What the connection should do with a frame.
    enum Action: Equatable {
        case none
        case message(WebSocketMessage)
        case ping(ByteBuffer)
        case pong(ByteBuffer)
        case close(code: UInt16?, reason: String)
    }

    private struct Partial {
        var opcode: WebSocketOpcode
        var compressed: Bool
        var data: ByteBuffer?
        var utf8 = UTF8Validator()
    }

    let maxMessageSize: Int
    /// How the peer compresses what it sends (nil: permessage-deflate was not agreed).
    let peerDeflate: NegotiatedDeflate.Direction?
    private var partial: Partial?
    private var inflater: Inflater?

    /// `role`: this end's (a server inflates with the client's parameters, a client with the server's).
    init(maxMessageSize: Int, deflate: NegotiatedDeflate?, role: WebSocketRole = .server) {
        self.maxMessageSize = maxMessageSize
        self.peerDeflate = deflate?.receiving(role)
    }

    /// Whether inflate state is allocated now (for memory tests).
    var holdsInflateState: Bool { self.inflater != nil }

    /// Whether a message has begun (a first fragment) and not yet ended.
    var isAssembling: Bool { self.partial != nil }

    mutating func receive(_ frame: WebSocketFrame, allocator: ByteBufferAllocator) throws(WebSocketProtocolError) -> Action {
        if frame.rsv2 || frame.rsv3 { throw .protocolError("reserved bit set without an extension") }
        switch frame.opcode {
        case .ping:
            if frame.rsv1 { throw .protocolError("RSV1 on a control frame") }
            return .ping(frame.payload)
        case .pong:
            if frame.rsv1 { throw .protocolError("RSV1 on a control frame") }
            return .pong(frame.payload)
        case .close:
            if frame.rsv1 { throw .protocolError("RSV1 on a control frame") }
            return try Self.parseClose(frame.payload)
        case .text, .binary:
            guard self.partial == nil else { throw .protocolError("new message before the previous one ended") }
            if frame.rsv1 && self.peerDeflate == nil { throw .protocolError("RSV1 set without permessage-deflate") }
            self.partial = Partial(opcode: frame.opcode, compressed: frame.rsv1)
        case .continuation:
            guard self.partial != nil else { throw .protocolError("continuation without a message") }
            if frame.rsv1 { throw .protocolError("RSV1 on a continuation frame") }
        }
        try self.append(frame.payload, allocator: allocator)
        guard frame.fin else { return .none }
        return .message(try self.finish(allocator: allocator))
    }

    private mutating func append(_ payload: ByteBuffer, allocator: ByteBufferAllocator) throws(WebSocketProtocolError) {
        guard var partial = self.partial else { return }
        self.partial = nil  // keep the buffer uniquely referenced while appending
        defer { self.partial = partial }
        if partial.compressed {
            var data = partial.data ?? allocator.buffer(capacity: 0)
            partial.data = nil
            let start = data.writerIndex
            try self.inflate(payload, into: &data)
            if partial.opcode == .text {
                try Self.validate(&partial.utf8, data, from: start)
            }
            partial.data = data
            return
        }
        if partial.opcode == .text {
            try Self.validate(&partial.utf8, payload, from: payload.readerIndex)
        }
        guard var data = partial.data else {
            partial.data = payload  // a single-frame message keeps the frame's bytes, no copy
            return
        }
        partial.data = nil
        guard data.readableBytes + payload.readableBytes <= self.maxMessageSize else { throw .messageTooLarge }
        var payload = payload
        data.writeBuffer(&payload)
        partial.data = data
    }

    private mutating func finish(allocator: ByteBufferAllocator) throws(WebSocketProtocolError) -> WebSocketMessage {
        guard var partial = self.partial else { throw .protocolError("no message") }
        self.partial = nil
        if partial.compressed {
            var data = partial.data ?? allocator.buffer(capacity: 0)
            partial.data = nil
            let start = data.writerIndex
            // RFC 7692 section 7.2.2: append the empty-block tail the sender removed.
            try self.inflate(ByteBuffer(bytes: [0x00, 0x00, 0xFF, 0xFF]), into: &data)
            if partial.opcode == .text { try Self.validate(&partial.utf8, data, from: start) }
            partial.data = data
            if self.peerDeflate?.noContextTakeover == true {
                self.inflater = nil  // nothing to remember: free the window until the next message
            }
        }
        if partial.opcode == .text && !partial.utf8.isComplete { throw .invalidUTF8 }
        return WebSocketMessage(dataOpcode: partial.opcode, data: partial.data ?? allocator.buffer(capacity: 0))
    }

    private mutating func inflate(_ input: ByteBuffer, into output: inout ByteBuffer) throws(WebSocketProtocolError) {
        let inflater = self.inflater ?? Inflater(windowBits: max(self.peerDeflate?.windowBits ?? 15, 8))
        self.inflater = inflater
        do {
            try inflater.inflate(input, into: &output, limit: self.maxMessageSize)
        } catch .tooLarge {
            throw .messageTooLarge
        } catch {
            throw .invalidPayload("invalid compressed data")
        }
    }

    private static func validate(_ validator: inout UTF8Validator, _ buffer: ByteBuffer, from index: Int) throws(WebSocketProtocolError) {
        let valid = buffer.withUnsafeReadableBytes { bytes in
            validator.feed(UnsafeRawBufferPointer(rebasing: bytes[(index - buffer.readerIndex)...]))
        }
        if !valid { throw .invalidUTF8 }
    }

    /// RFC 6455 sections 5.5.1 and 7.4: a code the peer may send, then a UTF-8 reason.
    static func parseClose(_ payload: ByteBuffer) throws(WebSocketProtocolError) -> Action {
        var payload = payload
        guard payload.readableBytes > 0 else { return .close(code: nil, reason: "") }
        guard let code = payload.readInteger(as: UInt16.self) else { throw .protocolError("close frame with a 1-byte payload") }
        guard WebSocketConnection.isSendable(code) else { throw .protocolError("invalid close code \(code)") }
        var validator = UTF8Validator()
        let valid = payload.withUnsafeReadableBytes { validator.feed($0) } && validator.isComplete
        guard valid else { throw .invalidUTF8 }
        let reason = String(buffer: payload)
        return .close(code: code, reason: reason)
    }
}
