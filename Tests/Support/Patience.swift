import Foundation
import NIOCore

/// How much slower than an idle 2-core machine this run may be. Every wait a test makes for
/// something the server will do (a response, a frame, a close, a log line, a condition) is
/// multiplied by it, so one number says how slow a machine the suite tolerates. Set it with
/// `MIZU_TEST_PATIENCE` (an integer; `scripts/test.sh` uses 10, and 4 times that under ThreadSanitizer,
/// which slows code 5-15x). A longer wait costs nothing when the answer comes: waits end on
/// the answer, not on the clock.
public enum Patience {
    public static let factor: Int64 = {
        guard let text = ProcessInfo.processInfo.environment["MIZU_TEST_PATIENCE"],
              let value = Int64(text), value >= 1, value <= 100 else { return 1 }
        return value
    }()

    /// `amount` stretched by the factor.
    public static func scaled(_ amount: TimeAmount) -> TimeAmount {
        .nanoseconds(amount.nanoseconds * Self.factor)
    }

    /// `duration` stretched by the factor.
    public static func scaled(_ duration: Duration) -> Duration {
        duration * Int(Self.factor)
    }

    /// Said in every timeout, so a report shows what the run tolerated.
    public static var note: String { Self.factor == 1 ? "" : " (waits scaled x\(Self.factor) by MIZU_TEST_PATIENCE)" }
}
