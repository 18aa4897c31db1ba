import Foundation
import NIOConcurrencyHelpers
import NIOCore

extension Live {
    /// Joins several servers in one process into one pub/sub space, in memory: give each
    /// server its own ``node()``. For apps that serve live sessions on more than one listener
    /// or path, and for testing multi-node behaviour without Redis. (One server alone needs no
    /// broker: that is the default.)
    public final class LocalBroker: Sendable {
        private struct Member {
            var receive: (@Sendable (String, ByteBuffer) -> Void)?
            var topics: Set<String> = []
        }

        private let members = NIOLockedValueBox<[ObjectIdentifier: Member]>([:])

        /// A hub with no node yet; ``node()`` makes one per server.
        public init() {}

        /// A broker for one server; publishes reach the other nodes that have subscribers.
        public func node() -> any Broker {
            Node(hub: self)
        }

        private final class Node: Broker {
            let hub: LocalBroker

            init(hub: LocalBroker) {
                self.hub = hub
            }

            func attach(receive: @escaping @Sendable (String, ByteBuffer) -> Void) {
                self.hub.members.withLockedValue { members in
                    precondition(members[ObjectIdentifier(self)]?.receive == nil, "a broker node serves one Live.Server")
                    members[ObjectIdentifier(self), default: Member()].receive = receive
                }
            }

            func publish(_ topic: String, _ data: Data) {
                let me = ObjectIdentifier(self)
                // Called outside the lock: a receiver takes its own server's locks.
                let receivers = self.hub.members.withLockedValue { members in
                    members.compactMap { id, member in id != me && member.topics.contains(topic) ? member.receive : nil }
                }
                guard !receivers.isEmpty else { return }
                let buffer = ByteBuffer(bytes: data)
                for receive in receivers { receive(topic, buffer) }
            }

            func subscribe(_ topic: String) {
                _ = self.hub.members.withLockedValue { $0[ObjectIdentifier(self), default: Member()].topics.insert(topic) }
            }

            func unsubscribe(_ topic: String) {
                _ = self.hub.members.withLockedValue { $0[ObjectIdentifier(self), default: Member()].topics.remove(topic) }
            }

            deinit {
                let id = ObjectIdentifier(self)
                _ = self.hub.members.withLockedValue { $0.removeValue(forKey: id) }
            }
        }
    }
}
