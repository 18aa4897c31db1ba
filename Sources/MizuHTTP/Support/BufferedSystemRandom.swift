#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The system's CSPRNG, read 256 bytes at a time: `SystemRandomNumberGenerator` makes one
/// system call per value, so a 128-bit ID cost two per connection. The bytes are the kernel's
/// (/dev/urandom, or `arc4random_buf`), each handed out once; only the reads are fewer.
package struct BufferedSystemRandom: RandomNumberGenerator {
    package init() {}

    package mutating func next() -> UInt64 {
        Self.pool.withLock { $0.next() }
    }

    /// `InlineLock`, not `Mutex` directly: ThreadSanitizer builds swap in a lock it can see.
    private static let pool = InlineLock(Pool())

    private struct Pool {
        private var values = [UInt64](repeating: 0, count: 32)
        private var used = 32

        mutating func next() -> UInt64 {
            if self.used == self.values.count {
                self.refill()
                self.used = 0
            }
            defer { self.used += 1 }
            return self.values[self.used]
        }

        private mutating func refill() {
            let filled = self.values.withUnsafeMutableBytes { Self.fill($0, device: &self.device) }
            if !filled {
                // No bulk source: one value per call from the standard library's.
                var system = SystemRandomNumberGenerator()
                for index in self.values.indices { self.values[index] = system.next() }
            }
        }

        /// Linux: the kernel's pool through /dev/urandom (what `getrandom` reads; that call is
        /// not visible to Swift, and `arc4random_buf` needs glibc 2.36), kept open.
        private var device: CInt = -2

        private static func fill(_ buffer: UnsafeMutableRawBufferPointer, device: inout CInt) -> Bool {
            #if canImport(Glibc)
            if device == -2 { device = open("/dev/urandom", O_RDONLY | O_CLOEXEC) }
            guard device >= 0 else { return false }
            var offset = 0
            while offset < buffer.count {
                let read = Glibc.read(device, buffer.baseAddress! + offset, buffer.count - offset)
                if read > 0 {
                    offset += read
                } else if read < 0, errno == EINTR {
                    continue
                } else {
                    return false
                }
            }
            return true
            #elseif canImport(Darwin)
            arc4random_buf(buffer.baseAddress!, buffer.count)
            return true
            #else
            return false
            #endif
        }
    }
}
