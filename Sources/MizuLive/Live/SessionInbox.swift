import Foundation

/// A session's hook queue: open, client messages, then close, handled strictly in order by
/// at most one task, which exists only while there is work. An idle session holds no task
/// and no queue storage. A value kept under the session's lock (no lock of its own).
struct SessionInbox {
    enum Item: Sendable {
        case open
        case message(topic: String, data: Data)
        case bad(Data)
        case close
    }

    /// Items from `head` on wait; the array is released whenever it drains.
    private var items: [Item] = []
    private var head = 0
    private var running = false
    private var closed = false

    private var waiting: Int { self.items.count - self.head }

    /// Queues `item`; returns whether the caller must start the drain task, and how many
    /// items wait. Nothing is queued after `.close`.
    mutating func push(_ item: Item) -> (startDrain: Bool, waiting: Int) {
        guard !self.closed else { return (false, 0) }
        if case .close = item { self.closed = true }
        self.items.append(item)
        defer { self.running = true }
        return (!self.running, self.waiting)
    }

    /// The next item, or nil (and the drain task ends) when the queue is empty.
    mutating func next() -> (item: Item, remaining: Int)? {
        guard self.head < self.items.count else {
            self.running = false
            return nil
        }
        let item = self.items[self.head]
        self.head += 1
        if self.head == self.items.count {
            self.items = []
            self.head = 0
        }
        return (item, self.waiting)
    }
}
