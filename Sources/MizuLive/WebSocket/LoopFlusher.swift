import NIOCore

/// Coalesces flushes: connections written to during one event-loop tick are flushed once,
/// together, by a single task at the end of that tick (one writev per connection instead of
/// one syscall per message).
final class LoopFlusher {
    private var dirty: [WebSocketChannelHandler] = []

    private static let perThread = PerThread { LoopFlusher() }

    /// The flusher of the calling event-loop thread.
    static var current: LoopFlusher { self.perThread.current }

    /// Flushes `handler` at the end of this tick.
    func schedule(_ handler: WebSocketChannelHandler, on eventLoop: any EventLoop) {
        if self.dirty.isEmpty {
            let bound = NIOLoopBound(self, eventLoop: eventLoop)
            eventLoop.execute { bound.value.flushAll() }
        }
        self.dirty.append(handler)
    }

    private func flushAll() {
        let handlers = self.dirty
        self.dirty.removeAll(keepingCapacity: true)
        for handler in handlers { handler.flushNow() }
    }
}
