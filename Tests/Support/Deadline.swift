import MizuHTTP
import NIOCore

/// Runs `body`, waiting at most `timeout` (times the patience): past it the test fails at once
/// with ``RawClient/Timeout``, even when `body` awaits something that ignores cancellation (a
/// future nobody completes), which a Swift Testing time limit cannot end: it only cancels.
public func withDeadline<T: Sendable>(
    _ what: String, timeout: TimeAmount = .seconds(10), _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withAbandoningDeadline(.nanoseconds(Patience.scaled(timeout).nanoseconds), expired: { RawClient.Timeout(waitingFor: what, received: "") }, body)
}
