import NIOCore
import NIOPosix

/// Runs a task's jobs on one event loop, so a request handler or a session's hooks started
/// from a connection run on that connection's thread: no wake-up of another thread and no
/// context switch for each hop between the task and the channel (the connect path made
/// about six such hops). A job that awaits something elsewhere still resumes here.
///
/// The price, as with any NIO handler: code that blocks the thread (not an `await`) stalls
/// the loop's other connections; hand such work to another executor.
package final class EventLoopExecutor: TaskExecutor {
    package let eventLoop: any EventLoop

    private init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    package func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        self.eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }

    /// The executor of `eventLoop`; one per loop thread, made once, when asked on that loop.
    /// Cached only on NIO's own loop threads: a loop that runs on dispatch's threads (a
    /// testing loop) would be released by the thread-local value when such a thread exits,
    /// inside libdispatch's own thread clean-up, which then frees its cache twice.
    package static func of(_ eventLoop: any EventLoop) -> EventLoopExecutor {
        guard eventLoop.inEventLoop, let current = MultiThreadedEventLoopGroup.currentEventLoop, current === eventLoop else {
            return EventLoopExecutor(eventLoop: eventLoop)
        }
        if let cached = Self.current.currentValue, cached.eventLoop === eventLoop { return cached }
        let made = EventLoopExecutor(eventLoop: eventLoop)
        Self.current.currentValue = made
        return made
    }

    /// Each thread reads and writes only its own value.
    private static let current = ThreadSpecificVariable<EventLoopExecutor>()
}

extension Task where Failure == Never {
    /// Starts `operation` on `eventLoop` (see ``EventLoopExecutor``).
    @discardableResult
    package static func on(_ eventLoop: any EventLoop, _ operation: sending @escaping @isolated(any) () async -> Success) -> Task<Success, Never> {
        if #available(macOS 15.0, iOS 18.0, *) {
            return Task(executorPreference: EventLoopExecutor.of(eventLoop), operation: operation)
        }
        return Task(operation: operation)
    }

    /// Like ``on(_:_:)``, but called on `eventLoop` the task starts at once, on the calling
    /// thread, and runs until it first waits; only what follows a wait is queued on the loop.
    /// A request whose answer needs no waiting (a WebSocket upgrade that completes at once)
    /// then costs no trip through the loop's queue. The caller must be ready for `operation`
    /// to run, and even finish, before this returns.
    @discardableResult
    package static func startingNow(on eventLoop: any EventLoop, _ operation: sending @escaping @isolated(any) () async -> Success) -> Task<Success, Never> {
        if #available(macOS 26.0, iOS 26.0, *), eventLoop.inEventLoop {
            return Task.immediate(executorPreference: EventLoopExecutor.of(eventLoop), operation: operation)
        }
        return Task.on(eventLoop, operation)
    }
}
