import NIOCore

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
