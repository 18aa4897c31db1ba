import CZlib
import NIOCore

/// Raw DEFLATE (RFC 1951) over system zlib, as permessage-deflate needs it (RFC 7692).
/// The z_stream lives at a fixed address because zlib's state points back at it.
final class Inflater {
    private let stream: UnsafeMutablePointer<z_stream>
    private var initialized = false
    let windowBits: Int32

    init(windowBits: Int) {
        self.windowBits = Int32(windowBits)
        self.stream = .allocate(capacity: 1)
        self.stream.initialize(to: z_stream())
    }

    deinit {
        if self.initialized { inflateEnd(self.stream) }
        self.stream.deinitialize(count: 1)
        self.stream.deallocate()
    }

    private func ensureInitialized() -> Bool {
        if self.initialized { return true }
        let result = inflateInit2_(self.stream, -self.windowBits, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        self.initialized = result == Z_OK
        return self.initialized
    }

    /// Drops the window (client_no_context_takeover) and frees zlib's memory until next use.
    func release() {
        if self.initialized {
            inflateEnd(self.stream)
            self.stream.pointee = z_stream()
            self.initialized = false
        }
    }

    enum Failure: Error {
        case corrupt
        case tooLarge
    }

    /// Inflates `input`, appending to `output`; fails when `output` would pass `limit` bytes,
    /// so a small compressed frame can never expand without bound.
    func inflate(_ input: ByteBuffer, into output: inout ByteBuffer, limit: Int) throws(Failure) {
        guard self.ensureInitialized() else { throw .corrupt }
        var failure: Failure?
        input.withUnsafeReadableBytes { inputBytes in
            let stream = self.stream
            stream.pointee.next_in = UnsafeMutablePointer(mutating: inputBytes.baseAddress?.assumingMemoryBound(to: Bytef.self))
            stream.pointee.avail_in = uInt(inputBytes.count)
            repeat {
                // One byte past the limit is room enough to learn the message is too large.
                let room = limit - output.readableBytes + 1
                let chunk = min(max(inputBytes.count * 4, 1024), room, 256 * 1024)
                var status: Int32 = Z_OK
                output.writeWithUnsafeMutableBytes(minimumWritableBytes: chunk) { outBytes in
                    let size = min(outBytes.count, room)
                    stream.pointee.next_out = outBytes.baseAddress!.assumingMemoryBound(to: Bytef.self)
                    stream.pointee.avail_out = uInt(size)
                    status = CZlib.inflate(stream, Z_SYNC_FLUSH)
                    return size - Int(stream.pointee.avail_out)
                }
                if output.readableBytes > limit { failure = .tooLarge; return }
                switch status {
                case Z_OK, Z_BUF_ERROR:
                    break
                case Z_STREAM_END:
                    // A final block ends the stream; anything after it would be garbage.
                    if stream.pointee.avail_in > 0 { failure = .corrupt; return }
                    inflateReset(stream)
                    return
                default:
                    failure = .corrupt
                    return
                }
                if stream.pointee.avail_in == 0 && stream.pointee.avail_out > 0 { return }
            } while true
        }
        if let failure { throw failure }
    }
}

/// Compresses messages with raw DEFLATE, ending each with a sync flush whose empty-block
/// tail is removed (RFC 7692 section 7.2.1).
final class Deflater {
    private let stream: UnsafeMutablePointer<z_stream>
    private var initialized = false
    let windowBits: Int32
    private let level: Int32
    private let memoryLevel: Int32

    init(windowBits: Int, level: Int, memoryLevel: Int) {
        // zlib turns a raw window of 8 into 9 (the window-bits-8 quirk); callers never ask for 8.
        precondition(windowBits >= 9 && windowBits <= 15)
        self.windowBits = Int32(windowBits)
        self.level = Int32(level)
        self.memoryLevel = Int32(memoryLevel)
        self.stream = .allocate(capacity: 1)
        self.stream.initialize(to: z_stream())
    }

    deinit {
        if self.initialized { deflateEnd(self.stream) }
        self.stream.deinitialize(count: 1)
        self.stream.deallocate()
    }

    /// Compresses one message. With `keepContext` false the next message starts afresh
    /// (server_no_context_takeover).
    func compress(_ input: ByteBuffer, allocator: ByteBufferAllocator, keepContext: Bool) -> ByteBuffer? {
        if !self.initialized {
            let result = deflateInit2_(
                self.stream, self.level, Z_DEFLATED, -self.windowBits, self.memoryLevel, Z_DEFAULT_STRATEGY,
                ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
            guard result == Z_OK else { return nil }
            self.initialized = true
        }
        let stream = self.stream
        var output = allocator.buffer(capacity: Int(deflateBound(stream, uLong(input.readableBytes))) + 16)
        var ok = true
        input.withUnsafeReadableBytes { inputBytes in
            stream.pointee.next_in = UnsafeMutablePointer(mutating: inputBytes.baseAddress?.assumingMemoryBound(to: Bytef.self))
            stream.pointee.avail_in = uInt(inputBytes.count)
            repeat {
                var status: Int32 = Z_OK
                output.writeWithUnsafeMutableBytes(minimumWritableBytes: 64) { outBytes in
                    stream.pointee.next_out = outBytes.baseAddress!.assumingMemoryBound(to: Bytef.self)
                    stream.pointee.avail_out = uInt(outBytes.count)
                    status = deflate(stream, Z_SYNC_FLUSH)
                    return outBytes.count - Int(stream.pointee.avail_out)
                }
                if status != Z_OK && status != Z_BUF_ERROR { ok = false; return }
            } while stream.pointee.avail_out == 0
        }
        if !keepContext { deflateReset(stream) }
        guard ok, output.readableBytes >= 4 else { return nil }
        // Drop the 00 00 FF FF tail of the sync flush.
        output.moveWriterIndex(to: output.writerIndex - 4)
        return output
    }
}
