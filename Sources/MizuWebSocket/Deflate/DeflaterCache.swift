import NIOCore

/// One deflater per thread and setting, for messages compressed without context takeover:
/// such a deflater is reset after every message, so connections on one event loop can
/// share it instead of each holding ~256 KiB of zlib state.
final class DeflaterCache {
    private struct Key: Hashable {
        var windowBits: Int
        var level: Int
        var memoryLevel: Int
    }

    private var deflaters: [Key: Deflater] = [:]

    private static let perThread = PerThread { DeflaterCache() }

    /// The calling thread's cache.
    static var current: DeflaterCache { self.perThread.current }

    /// Compresses one message with no context kept, on this thread's shared deflater.
    func compress(_ payload: ByteBuffer, windowBits: Int, configuration: PerMessageDeflateConfiguration, allocator: ByteBufferAllocator) -> ByteBuffer? {
        let key = Key(windowBits: windowBits, level: configuration.compressionLevel, memoryLevel: configuration.memoryLevel)
        let deflater = self.deflaters[key] ?? Deflater(windowBits: windowBits, level: key.level, memoryLevel: key.memoryLevel)
        self.deflaters[key] = deflater
        return deflater.compress(payload, allocator: allocator, keepContext: false)
    }
}
