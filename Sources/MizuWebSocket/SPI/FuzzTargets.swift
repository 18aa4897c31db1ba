import NIOCore
import NIOHTTP1

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

    /// The in-place token scan of `Connection`/`Upgrade` (every handshake reads client bytes
    /// through it on an unsafe buffer), checked against a plain split-and-trim reading: up to
    /// the first NUL is the token, the rest is the header's lines, one per line feed.
    public static func headerTokens(_ bytes: UnsafeRawBufferPointer) {
        let parts = bytes.split(separator: 0, maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return }
        let token = String(decoding: parts[0], as: UTF8.self)
        let lines = parts[1].split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
            .map { String(decoding: $0, as: UTF8.self) }
        var headers = HTTPHeaders()
        for line in lines { headers.add(name: "Connection", value: line) }
        headers.add(name: "Other", value: token)
        // Bytes, not Characters: a comma followed by a combining mark is one Character.
        let lowered = { (bytes: ArraySlice<UInt8>) in bytes.map { $0 >= 65 && $0 <= 90 ? $0 | 0x20 : $0 } }
        let isOWS = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        let wanted = lowered(ArraySlice(token.utf8))
        let expected = lines.contains { line in
            Array(line.utf8).split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false).contains { item in
                var item = item
                while let first = item.first, isOWS(first) { item.removeFirst() }
                while let last = item.last, isOWS(last) { item.removeLast() }
                return lowered(item) == wanted
            }
        }
        precondition(headers.lists("connection", token: token) == expected, "token scan disagrees on \(lines) for \(token)")
    }
}
