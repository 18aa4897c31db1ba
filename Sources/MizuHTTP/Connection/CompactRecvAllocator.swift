import NIOCore

/// NIO's adaptive receive-buffer policy (`AdaptiveRecvByteBufferAllocator`: halve after two
/// short reads, double after a full one, between 64 B and 64 KiB) in 8 bytes. A channel keeps
/// its allocator in an existential: NIO's own takes 33 bytes, more than fits inline, so every
/// connection carried a heap box for it (about 66 bytes with malloc's header); this one fits.
struct CompactRecvAllocator: RecvByteBufferAllocator {
    static let minimum: UInt32 = 64
    static let maximum: UInt32 = 65536

    private var next: UInt32
    private var decreaseNow = false

    /// `initial` is rounded down to a power of two within the bounds.
    init(initial: Int) {
        let clamped = UInt32(min(max(initial, Int(Self.minimum)), Int(Self.maximum)))
        self.next = 1 << (31 - clamped.leadingZeroBitCount)
    }

    func buffer(allocator: ByteBufferAllocator) -> ByteBuffer {
        allocator.buffer(capacity: Int(self.next))
    }

    func nextBufferSize() -> Int? { Int(self.next) }

    mutating func record(actualReadBytes: Int) -> Bool {
        let lower = self.next >> 1
        let upper = self.next << 1
        if actualReadBytes <= Int(lower) && lower >= Self.minimum {
            if self.decreaseNow { self.next = lower }
            self.decreaseNow.toggle()
            return false
        }
        self.decreaseNow = false
        guard actualReadBytes >= Int(self.next), upper <= Self.maximum else { return false }
        self.next = upper
        return true
    }
}
