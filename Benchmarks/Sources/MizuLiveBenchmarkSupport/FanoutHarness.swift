import Foundation
@_spi(Benchmarking) import MizuLive
@_spi(Benchmarking) import MizuWebSocket
import NIOCore
import NIOEmbedded

/// N live sessions on embedded channels whose socket writes are discarded: measures the
/// publish path (registry, encode once, per-session delivery, flush coalescing) in process.
public final class FanoutHarness {
    private let server: Live.Server
    private let eventLoop = EmbeddedEventLoop()
    private var channels: [EmbeddedChannel] = []
    public let topic = "bench"

    /// Builds `sessions` sessions subscribed to ``topic``; `compressed` negotiates
    /// permessage-deflate (no context takeover) for all of them; `history` keeps one for ``topic``.
    public init(sessions: Int, compressed: Bool = false, history: Live.HistoryPolicy? = nil) throws {
        var options = Live.Options(queueSize: 1 << 20)
        if let history { options.history = { @Sendable _ in history } }
        self.server = Live.Server(options)
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

/// Fills the in-memory history of `topics` topics with `messages` messages of `size` bytes
/// each, and keeps it: what a history costs in memory per topic.
public final class HistoryFill {
    private let server: Live.Server
    /// Resident memory the fill added (from /proc/self/statm; 0 where there is none).
    public let residentBytesAdded: Int

    public init(topics: Int, messages: Int, size: Int) {
        var options = Live.Options()
        options.history = { _ in Live.HistoryPolicy(size: messages, ttl: .hours(1)) }
        self.server = Live.Server(options)
        let before = Self.residentBytes()
        let bytes = Array(("\"" + String(repeating: "x", count: max(0, size - 2)) + "\"").utf8)
        for topic in 0..<topics {
            // A fresh Data per message, as publishes from the network are (not one shared buffer).
            for _ in 0..<messages { self.server.publish("topic-\(topic)", Data(bytes)) }
        }
        self.residentBytesAdded = Self.residentBytes() - before
    }
}

extension HistoryFill {
    /// Resident set size: the second field of /proc/self/statm, in pages.
    static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * 4096
    }
}
