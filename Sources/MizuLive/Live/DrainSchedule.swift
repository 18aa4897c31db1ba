import NIOCore

/// When each session is closed during a shutdown: in batches spread over a window, so the
/// clients of a busy server do not all reconnect (to its peers, or to it after a restart)
/// in the same millisecond. Small servers close everything at once.
struct DrainSchedule: Equatable {
    /// Fewer sessions than this close in one batch.
    static let minimumBatch = 100
    /// Batches are at least this far apart.
    static let minimumStep = TimeAmount.milliseconds(10)

    struct Batch: Equatable {
        /// From the start of the drain.
        let offset: TimeAmount
        /// Indexes into the sessions being drained.
        let range: Range<Int>
    }

    let batches: [Batch]

    init(sessions count: Int, spread: TimeAmount) {
        guard count > 0 else {
            self.batches = []
            return
        }
        let byTime = max(1, Int(spread.nanoseconds / Self.minimumStep.nanoseconds))
        let bySize = (count + Self.minimumBatch - 1) / Self.minimumBatch
        let batchCount = min(byTime, bySize)
        self.batches = (0..<batchCount).map { index in
            Batch(
                offset: .nanoseconds(spread.nanoseconds * Int64(index) / Int64(batchCount)),
                range: (count * index / batchCount)..<(count * (index + 1) / batchCount))
        }
    }
}
