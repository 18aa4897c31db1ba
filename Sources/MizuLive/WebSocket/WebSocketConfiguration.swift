import NIOCore

/// Settings of a WebSocket endpoint. Every property has a default.
public struct WebSocketConfiguration: Sendable {
    /// Largest message accepted, assembled and (when compressed) inflated; larger closes
    /// with 1009. Default 16 MiB.
    public var maxMessageSize: Int = 16 * 1024 * 1024
    /// permessage-deflate settings; nil declines compression. Offered by default.
    public var compression: PerMessageDeflateConfiguration? = PerMessageDeflateConfiguration()
    /// Subprotocols the server speaks; the first one the client lists that is here is chosen.
    public var subprotocols: [String] = []
    /// Send a ping this often; nil (the default) sends none.
    public var pingInterval: TimeAmount?
    /// After a ping, a peer that sends nothing for this long is closed as dead. Default 10 s.
    public var pongTimeout: TimeAmount = .seconds(10)
    /// How long a server-initiated close waits for the peer's close frame. Default 5 s.
    public var closeTimeout: TimeAmount = .seconds(5)
    /// Messages accepted for sending but not yet written to the socket; past this the
    /// connection is closed as a slow consumer. nil (the default) is unbounded.
    public var maxQueuedMessages: Int?

    /// The defaults.
    public init() {}
}
