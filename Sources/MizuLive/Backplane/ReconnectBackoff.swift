import NIOCore

/// When to try a lost Redis connection again: a delay that doubles with each failure up to a
/// cap, with jitter, and that starts again from the bottom only after a connection stayed up
/// long enough to count as healthy. A handshake alone is not health: an endpoint that accepts
/// and drops at once must still meet a growing delay. A value: events in, a delay out.
struct ReconnectBackoff {
    let base: TimeAmount
    let cap: TimeAmount
    /// How long a connection must stay up for its loss not to count as a failure.
    let healthyAfter: TimeAmount
    /// Failures since the last healthy connection.
    private(set) var failures = 0
    private var connectedAt: NIODeadline?

    init(base: TimeAmount, cap: TimeAmount, healthyAfter: TimeAmount) {
        self.base = base
        self.cap = cap
        self.healthyAfter = healthyAfter
    }

    mutating func connected(at now: NIODeadline) {
        self.connectedAt = now
    }

    /// The connection went away: a failure unless it had been up for `healthyAfter`.
    mutating func lost(at now: NIODeadline) {
        if let connectedAt = self.connectedAt, now - connectedAt >= self.healthyAfter {
            self.failures = 0
        } else {
            self.failures += 1
        }
        self.connectedAt = nil
    }

    /// An attempt to connect failed.
    mutating func attemptFailed() {
        self.failures += 1
    }

    /// The wait before the next attempt: `base` doubled per failure, at most `cap`, then
    /// jittered into its upper half by `unit` (0...1) so many nodes do not retry in step.
    func delay(jitter unit: Double) -> TimeAmount {
        // Checked: a shift would drop the high bits of a long base (hours) and go negative.
        let cap = max(0, self.cap.nanoseconds)
        let (grown, overflow) = max(0, self.base.nanoseconds).multipliedReportingOverflow(by: 1 << min(self.failures, 20))
        let full = overflow ? cap : min(cap, grown)
        return .nanoseconds(full / 2 + Int64(Double(full / 2) * min(max(unit, 0), 1)))
    }
}
