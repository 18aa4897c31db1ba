import NIOCore

/// Watches a channel whose peer may have stopped taking our output (the channel became
/// unwritable, or a flush left bytes the kernel would not take): after `timeout` it looks
/// again; once nothing is left it stops, if some output left meanwhile (slow, but moving) it
/// watches on, and if none did it calls `onStall`. Whatever the write-buffer water marks say:
/// a pending write below the high mark leaves a channel writable while its peer reads nothing.
/// Exists only while output is pending, so an idle connection pays nothing for it.
/// Event-loop bound.
package final class WriteStallWatch {
    private let channel: any Channel
    private let timeout: TimeAmount
    private let onStall: () -> Void
    private var scheduled: Scheduled<Void>?
    /// Set by the owner when some output is known to have left (a write completed): while
    /// new writes keep coming, the buffered count alone may not shrink although the peer reads.
    private var progressed = false

    /// Whether it still watches (it stops by itself once the output has left).
    package var isWatching: Bool { self.scheduled != nil }

    /// Whether `channel` holds output its peer has not taken yet.
    package static func hasPendingOutput(_ channel: any Channel) -> Bool { Self.bufferedBytes(channel) > 0 }

    /// Starts watching `channel`, which has output pending.
    package init(channel: any Channel, timeout: TimeAmount, onStall: @escaping () -> Void) {
        self.channel = channel
        self.timeout = timeout
        self.onStall = onStall
        self.arm(buffered: Self.bufferedBytes(channel))
    }

    /// Some output left since the last look (a write's promise completed).
    package func noteProgress() {
        self.progressed = true
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
        let buffered = Self.bufferedBytes(self.channel)
        guard !self.channel.isWritable || buffered > 0 else { return }  // everything left: nothing to watch
        if buffered < bufferedBefore || self.progressed {
            self.progressed = false
            self.arm(buffered: buffered)
        } else {
            self.onStall()
        }
    }

    private static func bufferedBytes(_ channel: any Channel) -> Int {
        (try? channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0
    }
}
