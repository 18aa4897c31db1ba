import Foundation
@_spi(Benchmarking) import MizuLive
@_spi(Benchmarking) import MizuWebSocket
import NIOCore
import NIOEmbedded

/// The publish path in process, on one embedded loop on this thread, where the counter sees
/// all of it: registry, encode once, the hand-over to the loop, every session's write and the
/// loop's flush. Sessions cost nothing per delivery: the count is the same for 10 as for 1,000.
enum EmbeddedFanOutGuard {
    static let message = Data(#"{"user":"ann","text":"a chat line of about sixty-four bytes, in JSON"}"#.utf8)

    static func run() throws {
        for compressed in [false, true] {
            let name = compressed ? "publish, permessage-deflate" : "publish"
            let few = try self.perPublish(sessions: 10, compressed: compressed)
            let many = try self.perPublish(sessions: 1000, compressed: compressed)
            // Today: the 7 of the socket guard's publish, plus the embedded loop's own
            // scheduling (a promise and a task per hop, which NIO's real loop does not
            // allocate); compression adds its output and frame.
            check("\(name), per publish (1,000 sessions)", measured: Double(many), budget: compressed ? 24 : 17, unit: "allocations")
            check("\(name), per delivery", measured: Double(many - few) / 990, budget: 0, unit: "allocations")
        }
    }

    /// Allocations of one publish to `sessions` sessions, once queues reached their working size.
    static func perPublish(sessions: Int, compressed: Bool) throws -> Int {
        let fanOut = try EmbeddedFanOut(sessions: sessions, compressed: compressed)
        for _ in 0..<20 { fanOut.publish(self.message) }
        let publishes = 50
        let total = allocations { for _ in 0..<publishes { fanOut.publish(self.message) } }
        guard fanOut.framesWritten == sessions * (20 + publishes) else {
            throw GuardError("\(fanOut.framesWritten) frames written, \(sessions * (20 + publishes)) expected")
        }
        return (total + publishes - 1) / publishes
    }
}

struct GuardError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Sessions on embedded channels of one embedded loop whose writes are counted and discarded.
final class EmbeddedFanOut {
    private let server: Live.Server
    private let eventLoop = EmbeddedEventLoop()
    private var channels: [EmbeddedChannel] = []
    private let sink = CountingSink()
    let topic = "room"

    init(sessions: Int, compressed: Bool) throws {
        self.server = Live.Server(Live.Options(queueSize: 1024))
        let configuration = self.server.webSocketConfiguration
        for index in 0..<sessions {
            let channel = EmbeddedChannel(loop: self.eventLoop)
            let connection = WebSocketConnection.unattached(
                eventLoop: self.eventLoop, compressed: compressed, sendQueueLimit: configuration.maxQueuedMessages)
            try channel.pipeline.syncOperations.addHandler(self.sink)
            try connection.attach(to: channel, configuration: configuration)
            self.server.subscribe(self.server.openDetachedSession(id: "s\(index)", connection: connection), self.topic)
            self.channels.append(channel)
        }
    }

    var framesWritten: Int { self.sink.writes }

    /// Publishes once and runs the loop until every session's frame is written and flushed.
    func publish(_ data: Data) {
        self.server.publish(self.topic, data)
        self.eventLoop.run()
    }
}

/// Counts writes where a socket would be and completes their promises. One instance serves
/// every channel of the fan-out.
private final class CountingSink: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    private(set) var writes = 0

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        self.writes += 1
        promise?.succeed()
    }

    func flush(context: ChannelHandlerContext) {}
}
