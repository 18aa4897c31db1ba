@testable import MizuHTTP
import MizuTestSupport
import NIOCore
import Testing

/// The receive-buffer policy every connection uses: NIO's adaptive one, smaller in memory.
struct CompactRecvAllocatorTests {
    @Test func fitsInlineInAnExistential() {
        // Three words: what an existential holds without a heap box.
        #expect(MemoryLayout<CompactRecvAllocator>.size <= 3 * MemoryLayout<Int>.size)
        #expect(MemoryLayout<AdaptiveRecvByteBufferAllocator>.size > 3 * MemoryLayout<Int>.size, "why it exists")
    }

    @Test(arguments: [64, 100, 256, 512, 4096, 65536])
    func decidesAsNIOsAdaptiveAllocatorForEveryRead(initial: Int) {
        var ours = CompactRecvAllocator(initial: initial)
        var nio = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: initial, maximum: 65536)
        var generator = SeededRandom(state: UInt64(initial))
        #expect(ours.nextBufferSize() == nio.nextBufferSize())
        for step in 0..<20_000 {
            let size = ours.nextBufferSize()!
            // Full reads, short ones and everything between, so it climbs and falls.
            let read = switch generator.next() % 4 {
            case 0: size
            case 1: Int(generator.next() % UInt64(size / 2 + 1))
            case 2: Int(generator.next() % UInt64(size + 1))
            default: 0
            }
            #expect(ours.record(actualReadBytes: read) == nio.record(actualReadBytes: read), "step \(step)")
            #expect(ours.nextBufferSize() == nio.nextBufferSize(), "step \(step): read \(read) of \(size)")
            if ours.nextBufferSize() != nio.nextBufferSize() { return }
        }
    }

    @Test func staysWithinItsBounds() {
        var allocator = CompactRecvAllocator(initial: 256)
        for _ in 0..<40 { _ = allocator.record(actualReadBytes: allocator.nextBufferSize()!) }
        #expect(allocator.nextBufferSize() == 65536)
        for _ in 0..<80 { _ = allocator.record(actualReadBytes: 0) }
        #expect(allocator.nextBufferSize() == 64)
        #expect(CompactRecvAllocator(initial: 1).nextBufferSize() == 64)
        #expect(CompactRecvAllocator(initial: 1 << 40).nextBufferSize() == 65536)
        #expect(CompactRecvAllocator(initial: 300).nextBufferSize() == 256)
    }
}
