import Foundation
import Mizu
import NIOEmbedded
import NIOCore

/// Entry points for the libFuzzer target in Fuzz/: the paths untrusted bytes take.
/// Not API: reachable only through `@_spi(Fuzzing) import MizuLive`.
@_spi(Fuzzing) public enum FuzzTargets {
    /// Frame decoding, message assembly (fragments, UTF-8, limits) and inflation.
    /// The first byte picks the extension settings; the rest arrives in two reads.
    public static func webSocketFrames(_ bytes: UnsafeRawBufferPointer) {
        guard let settings = bytes.first else { return }
        let deflate = settings & 1 == 0 ? nil : NegotiatedDeflate(
            serverNoContextTakeover: true, clientNoContextTakeover: settings & 2 != 0,
            serverMaxWindowBits: 15, clientMaxWindowBits: settings & 4 != 0 ? 8 : 15)
        let limit = settings & 8 != 0 ? 256 : 1 << 16
        var parser = FrameParser(maxPayloadLength: limit)
        var assembler = MessageAssembler(maxMessageSize: limit, deflate: deflate)
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

    /// The live envelope parser (JSON scanner).
    public static func envelope(_ bytes: UnsafeRawBufferPointer) {
        if let message = Live.Message.parse(Data(bytes)) {
            _ = message.encoded()
        }
    }

    /// The RESP parser as the Redis backplane drives it: values out of bytes split at one
    /// point, every value walked (as the broker's push handling does).
    public static func resp(_ bytes: UnsafeRawBufferPointer) {
        guard let first = bytes.first else { return }
        let body = UnsafeRawBufferPointer(rebasing: bytes.dropFirst())
        let split = body.isEmpty ? 0 : Int(first) % (body.count + 1)
        var parser = RESPParser()
        parser.maxBulkLength = 1 << 16
        parser.maxArrayLength = 1 << 12
        var buffer = ByteBuffer(bytes: body[..<split])
        do {
            for next in [body[split...], body[body.endIndex...]] {
                while let value = try parser.next(&buffer) { Self.walk(value) }
                buffer.writeBytes(UnsafeRawBufferPointer(rebasing: next))
            }
        } catch {
            // Malformed RESP is refused with an error; only crashes and leaks are findings.
        }
    }

    private static func walk(_ value: RESPValue) {
        if case .array(let items?) = value { items.forEach(Self.walk) }
    }

    /// The `Sec-WebSocket-Extensions` grammar and permessage-deflate negotiation.
    public static func extensionHeader(_ bytes: UnsafeRawBufferPointer) {
        guard let text = String(validating: bytes, as: UTF8.self), let offers = ExtensionHeaderParser.parse([text]) else { return }
        _ = NegotiatedDeflate.negotiate(offers: offers, configuration: PerMessageDeflateConfiguration())?.responseHeader
    }
}

/// Decompresses server messages for the load generator in Benchmarks/ (a client of
/// `server_no_context_takeover` servers). Not API: `@_spi(Benchmarking) import MizuLive`.
@_spi(Benchmarking) public final class MessageInflater {
    private let inflater = Inflater(windowBits: 15)

    public init() {}

    /// Inflates one permessage-deflate payload (RFC 7692 section 7.2.2, tail re-added).
    public func inflate(_ payload: ByteBuffer, limit: Int = 1 << 24) throws -> ByteBuffer {
        var output = ByteBuffer()
        var input = payload
        input.writeBytes([0x00, 0x00, 0xFF, 0xFF])
        try self.inflater.inflate(input, into: &output, limit: limit)
        return output
    }
}

/// The hot paths, one call each, for the micro-benchmarks in Benchmarks/.
/// Not API: `@_spi(Benchmarking) import MizuLive`.
@_spi(Benchmarking) public enum BenchmarkKernels {
    /// Encodes one server text frame around `payload`.
    public static func encodeFrame(_ payload: ByteBuffer) -> ByteBuffer {
        FrameWriter.frame(opcode: .text, payload: payload, allocator: ByteBufferAllocator())
    }

    /// Decodes every masked client frame in `bytes` (unmasking in place); returns how many.
    public static func decodeFrames(_ bytes: ByteBuffer, maxPayloadLength: Int = 1 << 24) -> Int {
        var parser = FrameParser(maxPayloadLength: maxPayloadLength)
        var buffer = bytes
        var count = 0
        while let frame = try? parser.next(&buffer) {
            _ = frame
            count += 1
        }
        return count
    }

    /// Validates UTF-8 the way text messages are validated.
    public static func validateUTF8(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var validator = UTF8Validator()
        return validator.feed(bytes) && validator.isComplete
    }

    /// Compresses one message without context takeover on this thread's shared deflater.
    public static func deflate(_ payload: ByteBuffer) -> ByteBuffer? {
        DeflaterCache.current.compress(payload, windowBits: 15, configuration: PerMessageDeflateConfiguration(), allocator: ByteBufferAllocator())
    }
}

/// N live sessions on embedded channels whose socket writes are discarded: measures the
/// publish path (registry, encode once, per-session delivery, flush coalescing) in process.
@_spi(Benchmarking) public final class FanoutHarness {
    private let core: ServerCore
    private let eventLoop = EmbeddedEventLoop()
    private var channels: [EmbeddedChannel] = []
    public let topic = "bench"

    /// Builds `sessions` sessions subscribed to ``topic``; `compressed` negotiates
    /// permessage-deflate (no context takeover) for all of them.
    public init(sessions: Int, compressed: Bool = false) throws {
        self.core = ServerCore(options: Live.Options(queueSize: 1 << 20))
        let request = Request(method: .GET, uri: "/ws")
        let deflate = compressed ? NegotiatedDeflate(serverNoContextTakeover: true, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15) : nil
        var configuration = self.core.webSocketConfiguration
        configuration.maxQueuedMessages = 1 << 20
        let settings = WebSocketSettings(configuration)
        for index in 0..<sessions {
            let channel = EmbeddedChannel(loop: self.eventLoop)
            let connection = WebSocketConnection(eventLoop: self.eventLoop, subprotocol: nil, remoteAddress: nil, deflate: deflate, sendQueueLimit: configuration.maxQueuedMessages)
            try channel.pipeline.syncOperations.addHandler(DiscardingSink())
            try channel.pipeline.syncOperations.addHandler(WebSocketChannelHandler(connection: connection, events: WebSocketEvents(), settings: settings))
            let session = Live.Session(id: .custom("s\(index)"), value: nil, request: request, connection: connection, core: self.core)
            _ = self.core.register(session)
            _ = session.subscribe(self.topic)
            self.channels.append(channel)
        }
    }

    /// Publishes once and runs the loop until every session's frame is written and flushed.
    public func publish(_ data: Data) {
        self.core.publish(self.topic, data)
        self.eventLoop.run()
    }
}

/// Sessions without sockets, to measure what subscribing, unsubscribing and registering cost
/// at sizes no single machine's file limit reaches with real connections.
@_spi(Benchmarking) public final class RegistryHarness {
    private let core = ServerCore(options: Live.Options())
    private let eventLoop = EmbeddedEventLoop()
    private var sessions: [Live.Session] = []

    /// `count` sessions, registered with the server as open sessions are.
    public init(sessions count: Int) {
        let request = Request(method: .GET, uri: "/ws")
        self.sessions.reserveCapacity(count)
        for index in 0..<count {
            let connection = WebSocketConnection(eventLoop: self.eventLoop, subprotocol: nil, remoteAddress: nil, deflate: nil, sendQueueLimit: 256)
            let session = Live.Session(id: .custom("s\(index)"), value: nil, request: request, connection: connection, core: self.core)
            _ = self.core.register(session)
            self.sessions.append(session)
        }
    }

    /// Subscribes sessions `range` to `topic` as `server.subscribe` does.
    public func subscribe(_ range: Range<Int>, to topic: String) {
        for index in range { _ = self.sessions[index].subscribe(topic) }
    }

    /// Unsubscribes session `index` from `topic` as `server.unsubscribe` does.
    public func unsubscribe(_ index: Int, from topic: String) {
        self.sessions[index].unsubscribe(topic)
    }

    /// Adds session `index` to `topic` in the topic registry alone (no per-session topic cap).
    public func registryAdd(_ index: Int, to topic: String) {
        self.core.registry.add(self.sessions[index], to: topic)
    }

    /// Removes session `index` from `topic` in the topic registry alone.
    public func registryRemove(_ index: Int, from topic: String) {
        self.core.registry.remove(self.sessions[index], from: topic)
    }

    /// Removes session `index` from the server's session table and adds it back (what a
    /// disconnect and a connect cost there).
    public func reregister(_ index: Int) {
        self.core.unregister(self.sessions[index])
        _ = self.core.register(self.sessions[index])
    }

    public func subscriberCount(_ topic: String) -> Int { self.core.registry.subscriberCount(topic) }
    public var topicCount: Int { self.core.registry.topicCount }
}

/// Swallows writes where a socket would be, completing their promises.
private final class DiscardingSink: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        promise?.succeed()
    }

    func flush(context: ChannelHandlerContext) {}
}
