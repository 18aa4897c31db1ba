import CAllocationCounter
import NIOCore

/// Allocations `body` makes on the calling thread; nothing in it may suspend.
func allocations(_ body: () throws -> Void) rethrows -> Int {
    mizu_allocation_counter_start()
    defer { _ = mizu_allocation_counter_stop() }
    try body()
    return Int(mizu_allocation_counter_stop())
}

/// Counts the allocations `eventLoop`'s thread makes between `start` and `stop`.
struct LoopAllocationWindow {
    let eventLoop: any EventLoop

    func start() async throws {
        try await self.eventLoop.submit { mizu_allocation_counter_start() }.get()
    }

    func stop() async throws -> Int {
        Int(try await self.eventLoop.submit { mizu_allocation_counter_stop() }.get())
    }

    /// What an empty window counts: the start's own task completing on the loop.
    func overhead() async throws -> Int {
        try await self.start()
        return try await self.stop()
    }
}
