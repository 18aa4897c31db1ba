import NIOCore
import Synchronization

/// What a WebSocket endpoint does with a connection's events. Every callback runs on the
/// connection's event loop, in order; it must not block (hand long work to a task).
public struct WebSocketEvents: Sendable {
    /// The connection is open (the 101 has been sent).
    public var onOpen: @Sendable (WebSocketConnection) -> Void
    /// A complete message arrived.
    public var onMessage: @Sendable (WebSocketConnection, WebSocketMessage) -> Void
    /// The connection ended; called exactly once.
    public var onClose: @Sendable (WebSocketConnection, WebSocketCloseReason) -> Void

    /// Events with the given callbacks (each does nothing by default).
    public init(
        onOpen: @escaping @Sendable (WebSocketConnection) -> Void = { _ in },
        onMessage: @escaping @Sendable (WebSocketConnection, WebSocketMessage) -> Void = { _, _ in },
        onClose: @escaping @Sendable (WebSocketConnection, WebSocketCloseReason) -> Void = { _, _ in }
    ) {
        self.onOpen = onOpen
        self.onMessage = onMessage
        self.onClose = onClose
    }
}
