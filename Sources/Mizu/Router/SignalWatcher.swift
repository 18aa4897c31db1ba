import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Turns process signals into an awaitable event, for graceful shutdown.
///
/// `@unchecked Sendable`: every stored property is a `let`; the dispatch sources are only
/// cancelled after init, and `DispatchSource.cancel()` is documented thread-safe.
public final class SignalWatcher: @unchecked Sendable {
    private let sources: [any DispatchSourceSignal]
    private let stream: AsyncStream<Int32>
    private let continuation: AsyncStream<Int32>.Continuation

    /// Watches `signals` (their default action is replaced: the watcher handles them).
    public init(signals: [Int32]) {
        (self.stream, self.continuation) = AsyncStream.makeStream(of: Int32.self)
        let queue = DispatchQueue(label: "mizu.signals")
        let continuation = self.continuation
        self.sources = signals.map { number in
            signal(number, SIG_IGN)  // the dispatch source sees it instead of the default action
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { continuation.yield(number) }
            source.resume()
            return source
        }
    }

    /// The next signal received.
    public func next() async -> Int32 {
        for await number in self.stream { return number }
        return 0
    }

    /// Stops watching.
    public func stop() {
        for source in self.sources { source.cancel() }
        self.continuation.finish()
    }
}
