import NIOConcurrencyHelpers

/// Waits at most `limit` for `body`: past it, throws `expired()` at once and cancels `body`'s
/// task, leaving it to end on its own. Unlike a task group (which waits for its children at
/// its end), a `body` that never returns and ignores cancellation (an awaited future nobody
/// completes, a callback to a server gone silent) cannot hold the caller. The caller's own
/// cancellation ends the wait too, with `CancellationError`.
package func withAbandoningDeadline<T: Sendable>(
    _ limit: Duration,
    expired: @escaping @Sendable () -> any Error,
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    // Resumed once, by whichever comes first: the answer, the limit, or the cancellation.
    let slot = NIOLockedValueBox<CheckedContinuation<T, any Error>?>(nil)
    let tasks = NIOLockedValueBox<[Task<Void, Never>]>([])
    @Sendable func finish(_ result: Result<T, any Error>) {
        guard let continuation = slot.withLockedValue({ taken in defer { taken = nil }; return taken }) else { return }
        for task in tasks.withLockedValue({ $0 }) { task.cancel() }
        continuation.resume(with: result)
    }
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { continuation in
            slot.withLockedValue { $0 = continuation }
            // Cancelled before the handler could find the continuation: nothing to wait for.
            if Task.isCancelled { return finish(.failure(CancellationError())) }
            let work = Task {
                do { finish(.success(try await body())) } catch { finish(.failure(error)) }
            }
            let timer = Task {
                guard (try? await Task.sleep(for: limit)) != nil else { return }
                finish(.failure(expired()))
            }
            tasks.withLockedValue { $0 = [work, timer] }
            // Either may have finished before the list was set: its cancels then missed.
            if slot.withLockedValue({ $0 == nil }) {
                work.cancel()
                timer.cancel()
            }
        }
    } onCancel: {
        finish(.failure(CancellationError()))
    }
}
