import NIOCore

// For in-process harnesses (Benchmarks/Sources/MizuLiveBenchmarkSupport, tests): a connection made without a
// handshake, and its protocol engine put on a channel the caller owns.
extension WebSocketConnection {
    /// A connection on `eventLoop` with no channel yet; `compressed` stands for a negotiated
    /// permessage-deflate without server context takeover (window 15).
    @_spi(Benchmarking) public static func unattached(eventLoop: any EventLoop, compressed: Bool = false, sendQueueLimit: Int?) -> WebSocketConnection {
        let deflate = compressed
            ? NegotiatedDeflate(serverNoContextTakeover: true, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15)
            : nil
        return WebSocketConnection(eventLoop: eventLoop, subprotocol: nil, remoteAddress: nil, deflate: deflate, sendQueueLimit: sendQueueLimit)
    }

    /// Adds this connection's protocol engine to `channel`'s pipeline (on its event loop).
    /// `writesStraightToChannel`: data frames skip the pipeline, as the server's do on a plain
    /// (not TLS) connection; only for a pipeline with no outbound handler below this one.
    @_spi(Benchmarking) public func attach(
        to channel: any Channel, configuration: WebSocketConfiguration, events: WebSocketEvents = WebSocketEvents(),
        writesStraightToChannel: Bool = false
    ) throws {
        try channel.pipeline.syncOperations.addHandler(
            WebSocketChannelHandler(connection: self, events: events, settings: WebSocketSettings(configuration), writesStraightToChannel: writesStraightToChannel))
    }
}
