/// Where one subscription stands in its topic's stream, and what each arrival means
/// (PROTOCOL.md: "a message with the same epoch and an offset not past the last one seen is a
/// duplicate"). A value: events in, verdicts out; the client acts on them.
struct StreamTracker: Equatable {
    /// The last message handed on, or the position a reply or notice said the stream goes on after.
    private(set) var position: StreamPosition?
    /// After an answer that could not recover: the next message is the new start, whatever its offset.
    private(set) var restarting = false

    init(after position: StreamPosition? = nil) {
        self.position = position
    }

    enum Arrival: Equatable {
        /// The next message: hand it on.
        case deliver
        /// Already handed on: drop it.
        case duplicate
        /// Messages are missing in between (or the epoch changed unannounced): resubscribe from ``position``.
        case gap
    }

    /// Where a resubscribe starts: after the last message handed on.
    var resumePosition: StreamPosition? { self.position }

    mutating func receive(_ incoming: StreamPosition?) -> Arrival {
        // A topic without history: nothing to order or dedupe.
        guard let incoming else { return .deliver }
        guard let last = self.position else {
            self.position = incoming
            self.restarting = false
            return .deliver
        }
        if self.restarting {
            if incoming.epoch == last.epoch, incoming.offset <= last.offset { return .duplicate }
            self.position = incoming
            self.restarting = false
            return .deliver
        }
        guard incoming.epoch == last.epoch else { return .gap }
        if incoming.offset <= last.offset { return .duplicate }
        // (`last.offset` is at most 2^53 - 1: the parser refuses larger, so + 1 cannot overflow.)
        guard incoming.offset == last.offset + 1 else { return .gap }
        self.position = incoming
        return .deliver
    }

    /// The server answered a subscribe. `askedAfter` is the `since` it carried, `history` its
    /// count. Returns whether messages may have been missed (a recovery that failed), which
    /// the application must be told.
    mutating func subscribed(recovered: Bool, at stream: StreamPosition?, askedAfter: StreamPosition?, history: Int) -> Bool {
        // Recovered: every message after our position follows, then live ones.
        if recovered, askedAfter != nil { return false }
        guard let stream else {
            // A topic without history: no positions at all.
            self.position = nil
            self.restarting = false
            return false
        }
        if history > 0 {
            // The latest messages come next; those we already have (same epoch) are dropped.
            if self.position?.epoch != stream.epoch {
                self.position = StreamPosition(offset: 0, epoch: stream.epoch)
            }
            self.restarting = true
        } else {
            // Live from here: the next message is the one after the stream's position.
            self.position = stream
            self.restarting = false
        }
        return askedAfter != nil
    }

    /// A notice: messages before the next one may be missing; the stream goes on after `stream`.
    mutating func notice(_ stream: StreamPosition) {
        self.position = stream
        self.restarting = false
    }
}
