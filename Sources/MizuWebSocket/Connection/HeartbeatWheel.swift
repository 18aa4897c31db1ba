import NIOCore

/// The heartbeat pings of every connection on one event loop with one ping interval, from
/// one timer: a repeating task per connection cost a `RepeatedTask`, its scheduled task
/// and closure (hundreds of bytes of an idle connection's memory) and a timer-heap insert
/// per connect. The interval is cut into ``slotCount`` slots; a connection joins the slot
/// the wheel visits last, so its pings come every interval, the first one between 7/8 of
/// an interval and one interval after it opened, and a loop's pings are spread over the
/// interval instead of all falling in one tick.
final class HeartbeatWheel<Member: HeartbeatMember> {
    static var slotCount: Int { 8 }

    /// Where a connection sits, so leaving is O(1) (swap with the slot's last).
    struct Position {
        var slot: Int32
        var index: Int32
    }

    private let eventLoop: any EventLoop
    private let interval: TimeAmount
    private let onEmpty: () -> Void
    private var slots: [[Member]] = Array(repeating: [], count: HeartbeatWheel.slotCount)
    private var cursor = 0
    private var members = 0
    private var ticker: RepeatedTask?

    /// A wheel for `eventLoop`; `onEmpty` runs when its last member leaves (the timer stops).
    init(eventLoop: any EventLoop, interval: TimeAmount, onEmpty: @escaping () -> Void = {}) {
        self.eventLoop = eventLoop
        self.interval = interval
        self.onEmpty = onEmpty
    }

    /// Adds `handler`; call on the wheel's loop.
    func add(_ handler: Member) -> Position {
        let slot = (self.cursor + Self.slotCount - 1) % Self.slotCount
        self.slots[slot].append(handler)
        self.members += 1
        if self.ticker == nil {
            let tick = TimeAmount.nanoseconds(max(1, self.interval.nanoseconds / Int64(Self.slotCount)))
            let bound = NIOLoopBound(self, eventLoop: self.eventLoop)
            self.ticker = self.eventLoop.scheduleRepeatedTask(initialDelay: tick, delay: tick) { _ in bound.value.tick() }
        }
        return Position(slot: Int32(slot), index: Int32(self.slots[slot].count - 1))
    }

    /// Removes the handler at `position`; the handler that moves into its place learns its new one.
    func leave(at position: Position) {
        let slot = Int(position.slot)
        let index = Int(position.index)
        let last = self.slots[slot].removeLast()
        if index < self.slots[slot].count {
            self.slots[slot][index] = last
            last.heartbeatMoved(to: position)
        }
        self.members -= 1
        if self.members == 0 {
            self.ticker?.cancel()
            self.ticker = nil
            self.onEmpty()
        }
    }

    private func tick() {
        // A copy: a ping that fails closes its connection, which leaves this slot meanwhile.
        let due = self.slots[self.cursor]
        self.cursor = (self.cursor + 1) % Self.slotCount
        for handler in due { handler.heartbeat() }
    }
}

/// What the wheel needs of a connection.
protocol HeartbeatMember: AnyObject, SendableMetatype {
    /// Time for a ping (or, with one unanswered, for nothing: the pong deadline decides).
    func heartbeat()
    /// The member's seat changed because another member left.
    func heartbeatMoved(to position: HeartbeatWheel<Self>.Position)
}

/// Each loop thread's wheels of WebSocket connections, by loop and interval; a wheel is
/// dropped once its last connection leaves.
enum HeartbeatWheels {
    private struct Key: Hashable {
        let eventLoop: ObjectIdentifier
        let intervalNanoseconds: Int64
    }

    private final class Wheels {
        var byKey: [Key: HeartbeatWheel<WebSocketChannelHandler>] = [:]
    }

    private static let perThread = PerThread { Wheels() }

    /// Seats `handler` on its loop's wheel for `interval`; call on that loop.
    static func join(
        _ handler: WebSocketChannelHandler, interval: TimeAmount, on eventLoop: any EventLoop
    ) -> (HeartbeatWheel<WebSocketChannelHandler>, HeartbeatWheel<WebSocketChannelHandler>.Position) {
        let key = Key(eventLoop: ObjectIdentifier(eventLoop), intervalNanoseconds: interval.nanoseconds)
        let wheels = Self.perThread.current
        if let wheel = wheels.byKey[key] { return (wheel, wheel.add(handler)) }
        let wheel = HeartbeatWheel<WebSocketChannelHandler>(eventLoop: eventLoop, interval: interval) { [unowned wheels] in
            wheels.byKey[key] = nil
        }
        wheels.byKey[key] = wheel
        return (wheel, wheel.add(handler))
    }
}
