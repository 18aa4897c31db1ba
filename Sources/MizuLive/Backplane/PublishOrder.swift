import NIOConcurrencyHelpers
import NIOCore

/// Numbers a node's history publishes for the publish script's two checks, and remembers
/// each topic's last number: a publish carries its own number (Redis skips one it already
/// applied: a replay after a lost link) and its topic's previous one, its predecessor (Redis
/// refuses it, `ORDER`, while that one is not applied).
///
/// The predecessor matters on a Redis Cluster: a primary refuses writes for a while during a
/// failover (`CLUSTERDOWN`), and when that window closes in the middle of a pipelined batch
/// the later publishes of the batch would be applied before the refused ones, which, sent
/// again, the once-only check would then skip. With the predecessor check, everything after a
/// refused publish of its topic is refused too, and all of them are sent again in order.
///
/// A value: the cluster broker keeps one under a lock, shared by its shards (a topic moves
/// between them), so every rule here is tested alone.
struct PublishOrder {
    /// How long a predecessor is named: Redis keeps the last applied number for twice this
    /// (the replay window), so a predecessor applied is still known there when named.
    let window: TimeAmount
    private(set) var sequence: UInt64 = 0
    private var last: [String: (sequence: UInt64, at: NIODeadline)] = [:]
    /// Past this many topics, those not published within the window are forgotten.
    private var sweepAt: Int
    private let minimumSweep: Int

    init(window: TimeAmount, sweepAt: Int = 1024) {
        self.window = window
        self.sweepAt = sweepAt
        self.minimumSweep = sweepAt
    }

    /// Topics remembered (each costs its name and 24 bytes).
    var remembered: Int { self.last.count }

    /// The next number, and the topic's predecessor: 0 (none) when the topic was not published
    /// within the window.
    mutating func next(_ topic: String, now: NIODeadline) -> (sequence: UInt64, predecessor: UInt64) {
        self.sequence += 1
        let previous = self.last.updateValue((self.sequence, now), forKey: topic)
        if self.last.count > self.sweepAt { self.sweep(now: now) }
        guard let previous, now - previous.at < self.window else { return (self.sequence, 0) }
        return (self.sequence, previous.sequence)
    }

    private mutating func sweep(now: NIODeadline) {
        self.last = self.last.filter { now - $0.value.at < self.window }
        // Swept again when the live topics have doubled: amortised O(1) per publish.
        self.sweepAt = max(self.minimumSweep, self.last.count * 2)
    }

    /// The script's predecessor argument: fixed width, so a held command's can be cleared in
    /// place (``clearingPredecessor(of:)``).
    static func argument(_ predecessor: UInt64) -> String {
        let digits = String(predecessor)
        return String(repeating: "0", count: Self.width - digits.count) + digits
    }

    static let width = 20

    /// What a history publish command (the publish script's `EVAL`) carries: its publisher
    /// key (one per topic and node), number and predecessor; nil for any other command.
    static func inspect(_ command: ByteBuffer) -> (publisherKey: String, sequence: UInt64, predecessor: UInt64)? {
        var copy = command
        guard case .array(let items?)? = try? RESPParser().next(&copy), items.count == 18,
              items[0].text?.uppercased() == "EVAL", case .bulkString(let script?) = items[1],
              script.readableBytesView.elementsEqual(Live.RedisBroker.publishScript.utf8), items[2].text == "3",
              let key = items[5].text, let sequence = items[13].text.flatMap({ UInt64($0) }),
              let predecessor = items[17].text.flatMap({ UInt64($0) })
        else { return nil }
        return (key, sequence, predecessor)
    }

    /// The same command naming no predecessor (its predecessor is settled: applied, or given
    /// up, which would otherwise refuse it forever). The argument is the command's last.
    static func clearingPredecessor(of command: ByteBuffer) -> ByteBuffer {
        var cleared = command
        let digits = cleared.writerIndex - 2 - Self.width
        cleared.setString(String(repeating: "0", count: Self.width), at: digits)
        return cleared
    }
}

/// A ``PublishOrder`` shared by the shards of one cluster broker, with the id their publish
/// numbers are kept under in Redis (a topic's numbers stay one sequence when it moves).
final class SharedPublishOrder: Sendable {
    let id: String
    private let order: NIOLockedValueBox<PublishOrder>

    init(id: String, window: TimeAmount) {
        self.id = id
        self.order = NIOLockedValueBox(PublishOrder(window: window))
    }

    func next(_ topic: String) -> (sequence: UInt64, predecessor: UInt64) {
        let now = NIODeadline.now()
        return self.order.withLockedValue { $0.next(topic, now: now) }
    }
}
