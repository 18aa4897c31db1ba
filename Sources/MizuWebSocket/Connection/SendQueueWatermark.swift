import Synchronization

/// The deepest send queue any connection of an endpoint has reached: one shared high-water
/// mark, told to `onNewPeak` whenever it rises (rarely), so a metric can show how close
/// clients come to the queue limit. One atomic load per queued message otherwise.
package final class SendQueueWatermark: Sendable {
    private let peak = Atomic<Int>(0)
    private let onNewPeak: @Sendable (Int) -> Void

    package init(onNewPeak: @escaping @Sendable (Int) -> Void) {
        self.onNewPeak = onNewPeak
    }

    package var value: Int { self.peak.load(ordering: .relaxed) }

    func observe(_ depth: Int) {
        var current = self.peak.load(ordering: .relaxed)
        while depth > current {
            let (exchanged, original) = self.peak.compareExchange(expected: current, desired: depth, ordering: .relaxed)
            if exchanged {
                self.onNewPeak(depth)
                return
            }
            current = original
        }
    }
}
