import NIOCore

/// Settings of a WebSocket endpoint. Every property has a default.
public struct WebSocketConfiguration: Sendable {
    /// Largest message accepted, assembled and (when compressed) inflated; larger closes
    /// with 1009. Default 16 MiB. Values past 2 GiB (`Int.max` for "no limit") count as
    /// 2 GiB: one message is one buffer, and the limit's arithmetic must not overflow.
    public var maxMessageSize: Int = 16 * 1024 * 1024
    /// permessage-deflate settings; nil declines compression. Offered by default.
    public var compression: PerMessageDeflateConfiguration? = PerMessageDeflateConfiguration()
    /// `maxMessageSize` as the parser and assembler apply it: 0 to 2 GiB.
    package var messageSizeLimit: Int { min(max(self.maxMessageSize, 0), Self.largestMessageSize) }

    /// What one `ByteBuffer` holds comfortably (its capacity is a `UInt32`).
    package static let largestMessageSize = 1 << 31

    /// Subprotocols the server speaks; the first one the client lists that is here is chosen.
    public var subprotocols: [String] = []
    /// Send a ping this often; nil (the default) sends none. The connections of an event
    /// loop share one timer, so the first ping comes between 7/8 of this and all of it
    /// after the connection opens.
    public var pingInterval: TimeAmount?
    /// After a ping, a peer that sends nothing for this long is closed as dead. Default 10 s.
    public var pongTimeout: TimeAmount = .seconds(10)
    /// A peer that sends no frame at all (data, ping, pong) for this long is closed as dead
    /// (``WebSocketCloseReason/heartbeatTimeout``), without pinging it: what a client sets
    /// to notice a frozen server that pings it regularly. nil (the default) waits forever.
    public var idleTimeout: TimeAmount?
    /// How long a peer may leave our output unread (the socket accepting no bytes at all)
    /// before the connection is dropped (``WebSocketCloseReason/writeTimeout``). Reading
    /// stops meanwhile. Default 30 s.
    public var writeStallTimeout: TimeAmount = .seconds(30)
    /// How long any close we start (a handshake, or the close frame after an error) may take
    /// before the TCP connection is closed anyway. Default 5 s.
    public var closeTimeout: TimeAmount = .seconds(5)
    /// Messages accepted for sending but not yet written to the socket; past this the
    /// connection is closed as a slow consumer. nil (the default) is unbounded.
    public var maxQueuedMessages: Int?
    /// Bytes written but not yet taken by the socket (the peer is not reading), as seen after
    /// each flush; past this the connection is closed as a slow consumer, so a connection
    /// holds a bounded amount of memory whatever the size of its messages. nil (the default)
    /// is unbounded.
    public var maxQueuedBytes: Int?
    /// The same bound over all of one client's connections together (a client is an IPv4
    /// address or an IPv6 /64): past it the client's connections holding the most are closed
    /// as slow consumers, until the rest hold three quarters of it. ``maxQueuedBytes`` alone
    /// lets a client hold it once per connection it opens. Connections whose peers read hold
    /// nothing here. nil (the default) is unbounded.
    public var maxQueuedBytesPerClient: Int?
    /// A message sent in fragments must end within this of its first: a peer that begins one
    /// and trickles the rest (an empty continuation now and then) holds what it sent so far
    /// for as long as it likes otherwise. Past it the connection is closed with 1008. nil (the
    /// default) waits forever.
    public var messageTimeout: TimeAmount?
    /// Hold writes this long before flushing, so messages that arrive meanwhile share one
    /// syscall (Centrifugo's `write_delay`): far less CPU per message under heavy fan-out, at
    /// the price of up to this much latency. nil (the default) flushes at the end of each
    /// event-loop tick.
    public var writeDelay: TimeAmount?

    /// Told the deepest send queue of any connection (Live's `mizu_live_send_queue_high_water`).
    package var sendQueueWatermark: SendQueueWatermark?

    /// The defaults.
    public init() {}
}
