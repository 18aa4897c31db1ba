import CZlib
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore

/// A gzip (RFC 1952) compressor over system zlib, fed in pieces: each piece is flushed so what
/// was written so far can be decompressed at once (a streamed response stays live). The
/// z_stream lives at a fixed address because zlib's state points back at it. Not thread-safe:
/// its owner confines it (``ResponseCompression`` uses it under the writer's lock).
final class GzipStream {
    private let stream: UnsafeMutablePointer<z_stream>
    private let initialized: Bool
    /// What zlib allocated for this stream, counted by the allocator below (zlib hands it
    /// back as `opaque`): the memory a response's compressor holds.
    private let allocated: UnsafeMutablePointer<Int>

    /// `level` 1 (fastest) to 9 (smallest); zlib's default 6. zlib's state takes
    /// 2^(windowBits + 2) + 2^(memLevel + 9) bytes: 256 KiB with its defaults (a 32 KiB window),
    /// right for a body compressed at once and freed; `compact` (a 4 KiB window, 32 KiB in
    /// all) for a streamed body, which may hold it for as long as the client keeps it open.
    init(level: Int, compact: Bool = false) {
        self.stream = .allocate(capacity: 1)
        self.allocated = .allocate(capacity: 1)
        self.allocated.initialize(to: 0)
        var fresh = z_stream()
        fresh.opaque = UnsafeMutableRawPointer(self.allocated)
        fresh.zalloc = { opaque, items, size in
            let bytes = Int(items) * Int(size)
            opaque?.assumingMemoryBound(to: Int.self).pointee += bytes
            return calloc(Int(items), Int(size))
        }
        fresh.zfree = { _, address in free(address) }
        self.stream.initialize(to: fresh)
        // 16 + bits: a gzip header and trailer around the deflate stream.
        let (windowBits, memoryLevel): (Int32, Int32) = compact ? (12, 5) : (15, 8)
        self.initialized = deflateInit2_(
            self.stream, Int32(min(9, max(1, level))), Z_DEFLATED, 16 + windowBits, memoryLevel, Z_DEFAULT_STRATEGY, ZLIB_VERSION,
            Int32(MemoryLayout<z_stream>.size)) == Z_OK
    }

    /// zlib started (it fails only without memory).
    var isReady: Bool { self.initialized }

    /// Bytes zlib allocated for this stream's state.
    var stateBytes: Int { self.allocated.pointee }

    deinit {
        if self.initialized { deflateEnd(self.stream) }
        self.stream.deinitialize(count: 1)
        self.stream.deallocate()
        self.allocated.deallocate()
    }

    /// Compresses `input`; `last` ends the gzip member (trailer included), otherwise the output
    /// ends on a sync flush. Nil if zlib could not start (out of memory).
    func compress(_ input: ByteBuffer, last: Bool, allocator: ByteBufferAllocator) -> ByteBuffer? {
        guard self.initialized else { return nil }
        // deflateBound covers the worst case; the flush and the trailer add a few bytes.
        var output = allocator.buffer(capacity: Int(deflateBound(self.stream, uLong(input.readableBytes))) + 32)
        let mode = last ? Z_FINISH : Z_SYNC_FLUSH
        var failed = false
        input.withUnsafeReadableBytes { inputBytes in
            let stream = self.stream
            stream.pointee.next_in = UnsafeMutablePointer(mutating: inputBytes.baseAddress?.assumingMemoryBound(to: Bytef.self))
            stream.pointee.avail_in = uInt(inputBytes.count)
            while true {
                var status: Int32 = Z_OK
                output.writeWithUnsafeMutableBytes(minimumWritableBytes: 4096) { outBytes in
                    stream.pointee.next_out = outBytes.baseAddress!.assumingMemoryBound(to: Bytef.self)
                    stream.pointee.avail_out = uInt(outBytes.count)
                    status = deflate(stream, mode)
                    return outBytes.count - Int(stream.pointee.avail_out)
                }
                if status == Z_STREAM_END { return }
                guard status == Z_OK || status == Z_BUF_ERROR else {
                    failed = true
                    return
                }
                // Done when zlib left room in the output: all input taken and flushed.
                if stream.pointee.avail_out > 0 && stream.pointee.avail_in == 0 && !last { return }
            }
        }
        return failed ? nil : output
    }
}
