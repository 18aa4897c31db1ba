import Foundation
import MizuLive
import MizuWebSocket
import NIOCore
import NIOEmbedded

/// N live sessions on embedded channels whose socket writes are discarded: measures the
/// publish path (registry, encode once, per-session delivery, flush coalescing) in process.
public final class FanoutHarness {
    private let server = Live.Server(Live.Options(queueSize: 1 << 20))
    private let eventLoop = EmbeddedEventLoop()
    private var channels: [EmbeddedChannel] = []
    public let topic = "bench"

    /// Builds `sessions` sessions subscribed to ``topic``; `compressed` negotiates
    /// permessage-deflate (no context takeover) for all of them.
    public init(sessions: Int, compressed: Bool = false) throws {
        var configuration = self.server.webSocketConfiguration
        configuration.maxQueuedMessages = 1 << 20
        for index in 0..<sessions {
            let channel = EmbeddedChannel(loop: self.eventLoop)
            let connection = WebSocketConnection.unattached(
                eventLoop: self.eventLoop, compressed: compressed, sendQueueLimit: configuration.maxQueuedMessages)
            try channel.pipeline.syncOperations.addHandler(DiscardingSink())
            try connection.attach(to: channel, configuration: configuration)
            let session = self.server.openDetachedSession(id: "s\(index)", connection: connection)
            self.server.subscribe(session, self.topic)
            self.channels.append(channel)
        }
    }

    /// Publishes once and runs the loop until every session's frame is written and flushed.
    public func publish(_ data: Data) {
        self.server.publish(self.topic, data)
        self.eventLoop.run()
    }
}

/// Swallows writes where a socket would be, completing their promises.
private final class DiscardingSink: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        promise?.succeed()
    }

    func flush(context: ChannelHandlerContext) {}
}
