import NIOCore

/// Entry points for the libFuzzer target in Fuzz/: the paths untrusted bytes take through
/// the WebSocket layer. Not API: reachable only through `@_spi(Fuzzing) import MizuWebSocket`.
@_spi(Fuzzing) public enum WebSocketFuzzTargets {
    /// Frame decoding, message assembly (fragments, UTF-8, limits) and inflation.
    /// The first byte picks the extension settings; the rest arrives in two reads.
    public static func webSocketFrames(_ bytes: UnsafeRawBufferPointer) {
        Self.frames(bytes, role: .server)
    }

    /// The same as a client reads a server's frames (unmasked only).
    public static func webSocketClientFrames(_ bytes: UnsafeRawBufferPointer) {
        Self.frames(bytes, role: .client)
    }

    private static func frames(_ bytes: UnsafeRawBufferPointer, role: WebSocketRole) {
        guard let settings = bytes.first else { return }
        let deflate = settings & 1 == 0 ? nil : NegotiatedDeflate(
            serverNoContextTakeover: true, clientNoContextTakeover: settings & 2 != 0,
            serverMaxWindowBits: 15, clientMaxWindowBits: settings & 4 != 0 ? 8 : 15)
        let limit = settings & 8 != 0 ? 256 : 1 << 16
        var parser = FrameParser(maxPayloadLength: limit, role: role)
        var assembler = MessageAssembler(maxMessageSize: limit, deflate: deflate, role: role)
        let allocator = ByteBufferAllocator()
        let body = UnsafeRawBufferPointer(rebasing: bytes.dropFirst())
        let split = body.isEmpty ? 0 : Int(settings >> 4) % (body.count + 1)
        var buffer = ByteBuffer(bytes: body[..<split])
        do {
            for next in [body[split...], body[body.endIndex...]] {
                while let frame = try parser.next(&buffer) {
                    _ = try assembler.receive(frame, allocator: allocator)
                }
                buffer.writeBytes(UnsafeRawBufferPointer(rebasing: next))
            }
        } catch {
            // A protocol error is a correct outcome; only crashes and leaks are findings.
        }
    }

    /// The `Sec-WebSocket-Extensions` grammar and permessage-deflate negotiation.
    public static func extensionHeader(_ bytes: UnsafeRawBufferPointer) {
        guard let text = String(validating: bytes, as: UTF8.self), let offers = ExtensionHeaderParser.parse([text]) else { return }
        _ = NegotiatedDeflate.negotiate(offers: offers, configuration: PerMessageDeflateConfiguration())?.responseHeader
    }
}
