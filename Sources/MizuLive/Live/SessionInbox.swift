import Foundation
import NIOConcurrencyHelpers

/// A session's hook queue: open, client messages, then close, handled strictly in order by
/// at most one task, which exists only while there is work. An idle session holds no task.
final class SessionInbox: Sendable {
    enum Item: Sendable {
        case open
        case message(topic: String, data: Data)
        case bad(Data)
        case close
    }

    private struct State {
        /// Items from `head` on wait; the array is released whenever it drains, so an idle
        /// session holds no queue storage.
        var items: [Item] = []
        var head = 0
        var running = false
        var closed = false

        var waiting: Int { self.items.count - self.head }

        mutating func popFirst() -> Item? {
            guard self.head < self.items.count else { return nil }
            let item = self.items[self.head]
            self.head += 1
            if self.head == self.items.count {
                self.items = []
                self.head = 0
            }
            return item
        }
    }

    private let state = NIOLockedValueBox(State())

    /// Queues `item` and starts a drain task if none runs; returns how many items wait.
    /// Nothing is queued after `.close`.
    func push(_ item: Item, _ drain: @escaping @Sendable () async -> Void) -> Int {
        let (start, waiting) = self.state.withLockedValue { state -> (Bool, Int) in
            guard !state.closed else { return (false, 0) }
            if case .close = item { state.closed = true }
            state.items.append(item)
            defer { state.running = true }
            return (!state.running, state.waiting)
        }
        if start { Task { await drain() } }
        return waiting
    }

    /// The next item, or nil (and the drain task ends) when the queue is empty.
    func next() -> (item: Item, remaining: Int)? {
        self.state.withLockedValue { state in
            guard let item = state.popFirst() else {
                state.running = false
                return nil
            }
            return (item, state.waiting)
        }
    }
}
