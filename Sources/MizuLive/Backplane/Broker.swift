import Foundation
import NIOCore

extension Live {
    /// Carries publishes between servers (nodes) so several of them form one pub/sub space.
    ///
    /// A server with no broker (the default) is its own, in-memory pub/sub space. With a
    /// broker, every ``Server/publish(_:_:)`` is delivered to the node's own subscribers
    /// directly (encoded once, as always) and handed to the broker for the other nodes; what
    /// the broker receives from other nodes goes to the local subscribers the same way. The
    /// broker never sends a node's own publishes back to it.
    ///
    /// The server tells the broker which topics it needs: ``subscribe(_:)`` when a topic gets
    /// its first local subscriber and ``unsubscribe(_:)`` when the last one leaves, in that
    /// order for each topic. These calls and ``publish(_:_:)`` come from any thread, sometimes
    /// under the server's locks: they must not block or call back into the server.
    public protocol Broker: Sendable {
        /// Called once, by the server that uses this broker, before any other call.
        /// `receive` delivers a remote publish (topic, raw JSON data) to the local subscribers.
        func attach(receive: @escaping @Sendable (_ topic: String, _ data: ByteBuffer) -> Void)
        /// Sends a local publish to the other nodes (best effort).
        func publish(_ topic: String, _ data: Data)
        /// The node now has a subscriber for `topic`: start receiving it.
        func subscribe(_ topic: String)
        /// The node's last subscriber of `topic` left: stop receiving it.
        func unsubscribe(_ topic: String)
        /// As ``publish(_:_:)``, saying whether the broker took the message (false: it will
        /// not reach the other nodes). The default publishes and says true.
        func tryPublish(_ topic: String, _ data: Data) -> Bool
    }
}

extension Live.Broker {
    public func tryPublish(_ topic: String, _ data: Data) -> Bool {
        self.publish(topic, data)
        return true
    }
}
