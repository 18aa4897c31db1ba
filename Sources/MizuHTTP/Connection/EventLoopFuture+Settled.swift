import NIOCore

extension EventLoopFuture where Value == Void {
    /// The future's result, without suspending when it is already complete and the caller is
    /// on its loop (a write the socket took at once): a suspension costs a trip through the
    /// loop's queue to resume.
    package func valueWithoutWaitingIfDone() async throws {
        if let result = self.resultIfDone() { return try result.get() }
        try await self.get()
    }

    /// The result when the future is complete and the caller is on its loop, else nil.
    private func resultIfDone() -> Result<Void, any Error>? {
        guard self.eventLoop.inEventLoop else { return nil }
        let settled = SettledResult()
        // On the loop a complete future runs its callback before `whenComplete` returns.
        self.assumeIsolated().whenComplete { settled.result = $0 }
        return settled.result
    }
}

/// A callback's result read back on the same thread (not generic: a generic class's
/// metadata is looked up at run time for every instance made).
private final class SettledResult {
    var result: Result<Void, any Error>?
}
