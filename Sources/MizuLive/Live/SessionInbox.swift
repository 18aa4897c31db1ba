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

        /// A message the client sent (paced per client), not a lifecycle hook.
        var isClientMessage: Bool {
            switch self {
            case .message, .bad: true
            case .open, .close: false
            }
        }

        /// The bytes it holds (the topic, the data).
        var size: Int {
            switch self {
            case .message(let topic, let data): topic.utf8.count + data.count
            case .bad(let data): data.count
            case .open, .close: 0
            }
        }
    }

    /// How much waits: items, and the bytes of their data.
    struct Backlog: Equatable {
        var items = 0
        var bytes = 0

        func isAbove(_ items: Int, bytes: Int) -> Bool { self.items > items || self.bytes > bytes }
    }

    /// Items from `head` on wait; the array is released whenever it drains.
    private var items: [Item] = []
    private var head = 0
    private var running = false
    private var closed = false
    private var waitingBytes = 0
    /// The most bytes that ever waited (tests check the bound with it).
    private(set) var peakBytes = 0

    private var waiting: Backlog { Backlog(items: self.items.count - self.head, bytes: self.waitingBytes) }

    /// Queues `item`; returns whether the caller must start the drain task, and what waits.
    /// Nothing is queued after `.close`.
    mutating func push(_ item: Item) -> (startDrain: Bool, waiting: Backlog) {
        guard !self.closed else { return (false, Backlog()) }
        if case .close = item { self.closed = true }
        self.items.append(item)
        self.waitingBytes += item.size
        self.peakBytes = max(self.peakBytes, self.waitingBytes)
        defer { self.running = true }
        return (!self.running, self.waiting)
    }

    /// The next item, or nil (and the drain task ends) when the queue is empty.
    mutating func next() -> (item: Item, remaining: Backlog)? {
        guard self.head < self.items.count else {
            self.running = false
            return nil
        }
        let item = self.items[self.head]
        self.head += 1
        self.waitingBytes -= item.size
        if self.head == self.items.count {
            self.items = []
            self.head = 0
        }
        return (item, self.waiting)
    }
}
