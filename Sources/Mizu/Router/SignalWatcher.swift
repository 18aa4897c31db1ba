import Dispatch
import NIOConcurrencyHelpers
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What `signal(2)` sets and returns.
private typealias SignalAction = @convention(c) (Int32) -> Void

/// Turns process signals into an awaitable event, for graceful shutdown.
///
/// `@unchecked Sendable`: every stored property is a `let` (the stop flag a locked box); the
/// dispatch sources are only cancelled after init, and `DispatchSource.cancel()` is documented
/// thread-safe.
public final class SignalWatcher: @unchecked Sendable {
    private let sources: [any DispatchSourceSignal]
    private let stream: AsyncStream<Int32>
    private let continuation: AsyncStream<Int32>.Continuation
    private let signals: [Int32]
    private let stopped = NIOLockedValueBox(false)

    /// Watches `signals` (their default action is replaced until ``stop()``: the watcher
    /// handles them).
    public init(signals: [Int32]) {
        (self.stream, self.continuation) = AsyncStream.makeStream(of: Int32.self)
        let queue = DispatchQueue(label: "mizu.signals")
        let continuation = self.continuation
        self.sources = signals.map { number in
            // The dispatch source sees it instead of the default action.
            Self.ignore(number)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { continuation.yield(number) }
            source.resume()
            return source
        }
        self.signals = signals
    }

    /// Per signal, the watchers ignoring it and its action before the first: watchers may
    /// overlap (two apps in one process) and end in any order; the last one puts it back.
    private static let ignoring = NIOLockedValueBox<[Int32: (watchers: Int, before: SignalAction?)]>([:])

    private static func ignore(_ number: Int32) {
        Self.ignoring.withLockedValue { table in
            if let entry = table[number] {
                table[number] = (entry.watchers + 1, entry.before)
            } else {
                table[number] = (1, signal(number, SIG_IGN))
            }
        }
    }

    private static func restore(_ number: Int32) {
        Self.ignoring.withLockedValue { table in
            guard let entry = table[number] else { return }
            if entry.watchers > 1 {
                table[number] = (entry.watchers - 1, entry.before)
            } else {
                table[number] = nil
                signal(number, entry.before)
            }
        }
    }

    /// The next signal received; 0 once stopped (or when the waiting task is cancelled).
    public func next() async -> Int32 {
        for await number in self.stream { return number }
        return 0
    }

    /// Stops watching; the signals' earlier actions apply again (a SIGTERM after the watch
    /// ends the process, as it would have before).
    public func stop() {
        for source in self.sources { source.cancel() }
        self.continuation.finish()
        guard !self.stopped.withLockedValue({ stopped in defer { stopped = true }; return stopped }) else { return }
        for number in self.signals { Self.restore(number) }
    }
}
