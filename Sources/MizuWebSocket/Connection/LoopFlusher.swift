import NIOCore

/// Coalesces flushes: connections written to during one event-loop tick are flushed once,
/// together, by a single task at the end of that tick (one writev per connection instead of
/// one syscall per message).
final class LoopFlusher {
    private var dirty: [WebSocketChannelHandler] = []
    /// Connections with a write delay, flushed together when the oldest one's delay is up.
    private var delayed: [WebSocketChannelHandler] = []
    /// The list being flushed: swapped with `dirty` or `delayed`, so neither is copied (a
    /// copy still referenced would make the next append allocate a new buffer every tick).
    private var flushing: [WebSocketChannelHandler] = []
    /// The loops whose flush tasks are armed. A NIO loop owns its thread, but a testing loop
    /// runs on dispatch's threads, which several loops share: a handler of another loop than
    /// the armed one is flushed at once instead (its task would run on the wrong loop).
    private var dirtyLoop: ObjectIdentifier?
    private var delayedLoop: ObjectIdentifier?

    private static let perThread = PerThread { LoopFlusher() }

    /// The flusher of the calling event-loop thread.
    static var current: LoopFlusher { self.perThread.current }

    /// Flushes `handler` at the end of this tick.
    func schedule(_ handler: WebSocketChannelHandler, on eventLoop: any EventLoop) {
        self.add(handler, to: &self.dirty, armedFor: &self.dirtyLoop, on: eventLoop) {
            let bound = NIOLoopBound(self, eventLoop: eventLoop)
            eventLoop.execute { bound.value.flushAll() }
        }
    }

    /// Flushes `handler` `delay` after the first write since its loop's last delayed flush,
    /// together with every other delayed connection of the loop.
    func schedule(_ handler: WebSocketChannelHandler, after delay: TimeAmount, on eventLoop: any EventLoop) {
        self.add(handler, to: &self.delayed, armedFor: &self.delayedLoop, on: eventLoop) {
            let bound = NIOLoopBound(self, eventLoop: eventLoop)
            eventLoop.scheduleTask(in: delay) { bound.value.flushDelayed() }
        }
    }

    /// Adds `handler` to `list`, arming its flush task when the list was empty; a handler of
    /// another loop than the one armed is flushed at once.
    private func add(
        _ handler: WebSocketChannelHandler, to list: inout [WebSocketChannelHandler], armedFor armedLoop: inout ObjectIdentifier?,
        on eventLoop: any EventLoop, arm: () -> Void
    ) {
        if list.isEmpty {
            arm()
            armedLoop = ObjectIdentifier(eventLoop)
        } else if armedLoop != ObjectIdentifier(eventLoop) {
            return handler.flushNow()
        }
        list.append(handler)
    }

    private func flushDelayed() {
        swap(&self.delayed, &self.flushing)
        self.flushEach()
    }

    private func flushAll() {
        swap(&self.dirty, &self.flushing)
        self.flushEach()
    }

    /// Flushes what was swapped into `flushing`; a flush that schedules again lands in the
    /// emptied list, flushed by its own task.
    private func flushEach() {
        for index in self.flushing.indices { self.flushing[index].flushNow() }
        self.flushing.removeAll(keepingCapacity: true)
    }
}
