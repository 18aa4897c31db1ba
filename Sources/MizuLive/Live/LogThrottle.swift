import NIOCore
import Synchronization

/// Lets one log line through per interval, from any thread, however often it is asked (a
/// flood of bad input must not become a flood of log lines).
final class LogThrottle: Sendable {
    private let interval: TimeAmount
    /// When a line last went through (uptime, ns); 0: never.
    private let last = Atomic<UInt64>(0)

    init(every interval: TimeAmount) {
        self.interval = interval
    }

    /// True for the first call of each interval.
    func allows() -> Bool {
        self.allows(at: NIODeadline.now())
    }

    /// ``allows()`` at `deadline` (tests give the time; a real caller, the clock's).
    func allows(at deadline: NIODeadline) -> Bool {
        let now = deadline.uptimeNanoseconds
        let last = self.last.load(ordering: .relaxed)
        guard last == 0 || now &- last >= UInt64(self.interval.nanoseconds) else { return false }
        return self.last.compareExchange(expected: last, desired: now, ordering: .relaxed).exchanged
    }
}
