import NIOCore

/// Watches a channel whose peer has stopped taking our output (the channel became unwritable):
/// after `timeout` it looks again, and if some output left meanwhile (slow, but moving) it
/// watches on; if none did, it calls `onStall`. Exists only while the channel is unwritable, so
/// an idle connection pays nothing for it. Event-loop bound.
package final class WriteStallWatch {
    private let channel: any Channel
    private let timeout: TimeAmount
    private let onStall: () -> Void
    private var scheduled: Scheduled<Void>?

    /// Starts watching `channel`, which has just become unwritable.
    package init(channel: any Channel, timeout: TimeAmount, onStall: @escaping () -> Void) {
        self.channel = channel
        self.timeout = timeout
        self.onStall = onStall
        self.arm(buffered: Self.bufferedBytes(channel))
    }

    /// The channel is writable again, or closing: stop watching.
    package func cancel() {
        self.scheduled?.cancel()
        self.scheduled = nil
    }

    private func arm(buffered: Int) {
        let bound = NIOLoopBound(self, eventLoop: self.channel.eventLoop)
        self.scheduled = self.channel.eventLoop.scheduleTask(in: self.timeout) {
            bound.value.fire(bufferedBefore: buffered)
        }
    }

    private func fire(bufferedBefore: Int) {
        self.scheduled = nil
        guard !self.channel.isWritable else { return }
        let buffered = Self.bufferedBytes(self.channel)
        if buffered < bufferedBefore {
            self.arm(buffered: buffered)
        } else {
            self.onStall()
        }
    }

    private static func bufferedBytes(_ channel: any Channel) -> Int {
        (try? channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0
    }
}
