import NIOConcurrencyHelpers

/// The highest position of each topic this node has delivered, for the publish script: a
/// stream whose epoch is that one but whose top is below it lost messages this node saw (a
/// promoted replica lacking the last writes of its old primary, Redis replicating
/// asynchronously), and the script begins a new epoch rather than give those offsets again
/// to other messages. Shared by a cluster's shards, like ``SharedPublishOrder``.
final class StreamFloors: Sendable {
    private let floors = NIOLockedValueBox<[String: Live.StreamPosition]>([:])

    /// After a delivery: the topic's floor is now at least `position` (a new epoch replaces it).
    func raise(_ topic: String, to position: Live.StreamPosition) {
        self.floors.withLockedValue { floors in
            if let floor = floors[topic], floor.epoch == position.epoch, floor.offset >= position.offset { return }
            floors[topic] = position
        }
    }

    func floor(of topic: String) -> Live.StreamPosition? {
        self.floors.withLockedValue { $0[topic] }
    }

    /// The node no longer subscribes to the topic.
    func forget(_ topic: String) {
        _ = self.floors.withLockedValue { $0.removeValue(forKey: topic) }
    }

    var count: Int { self.floors.withLockedValue { $0.count } }
}
