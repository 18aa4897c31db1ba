import MizuTestSupport
import NIOCore
import NIOEmbedded
import Testing

@_spi(Benchmarking) @testable import MizuWebSocket

/// Data frames written straight to the channel (the server's path on a plain connection) skip
/// the pipeline only when the handler is told to; whatever goes both ways keeps its order.
@Suite struct StraightWriteTests {
    /// Below the WebSocket handler: marks every buffer that passes with a leading 0xEE, as a
    /// TLS handler would transform it.
    final class Marker: ChannelOutboundHandler {
        typealias OutboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            var marked = ByteBuffer(bytes: [0xEE])
            var buffer = self.unwrapOutboundIn(data)
            marked.writeBuffer(&buffer)
            context.write(self.wrapOutboundOut(marked), promise: promise)
        }
    }

    /// What reached the channel's outbound: (marked, frame) per buffer, empty buffers skipped.
    private func written(_ channel: EmbeddedChannel) throws -> [(marked: Bool, frame: ServerFrame)] {
        (channel.eventLoop as! EmbeddedEventLoop).run()
        var result: [(Bool, ServerFrame)] = []
        while var buffer = try channel.readOutbound(as: ByteBuffer.self) {
            guard buffer.readableBytes > 0 else { continue }
            let marked = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) == 0xEE
            if marked { buffer.moveReaderIndex(forwardBy: 1) }
            while let frame = ServerFrame.parse(&buffer) { result.append((marked, frame)) }
        }
        return result
    }

    private func attached(straight: Bool, on loop: EmbeddedEventLoop = EmbeddedEventLoop()) throws -> (EmbeddedChannel, WebSocketConnection) {
        let channel = EmbeddedChannel(loop: loop)
        try channel.pipeline.syncOperations.addHandler(Marker())
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
        var configuration = WebSocketConfiguration()
        configuration.compression = nil
        let connection = WebSocketConnection.unattached(eventLoop: loop, sendQueueLimit: configuration.maxQueuedMessages)
        try connection.attach(to: channel, configuration: configuration, writesStraightToChannel: straight)
        return (channel, connection)
    }

    @Test func withoutTheFlagEveryFrameGoesThroughThePipeline() throws {
        let (channel, connection) = try self.attached(straight: false)
        #expect(connection.write(BroadcastFrame(text: ByteBuffer(string: "a"), sharedWindows: [], compression: PerMessageDeflateConfiguration())))
        connection.send(text: "b")
        let frames = try self.written(channel)
        #expect(frames.map(\.marked) == [true, true])
        #expect(frames.map { String(decoding: $0.frame.payload, as: UTF8.self) } == ["a", "b"])
    }

    @Test func withTheFlagDataFramesSkipThePipelineAndControlFramesDoNotAndOrderHolds() throws {
        let (channel, connection) = try self.attached(straight: true)
        #expect(connection.write(BroadcastFrame(text: ByteBuffer(string: "a"), sharedWindows: [], compression: PerMessageDeflateConfiguration())))
        connection.ping([7])
        connection.send(text: "b")
        connection.close(code: 1000, reason: "done")
        let frames = try self.written(channel)
        #expect(frames.map(\.frame.opcode) == [0x1, 0x9, 0x1, 0x8])
        #expect(frames.map(\.marked) == [false, true, false, true])
        #expect(frames[2].frame.payload == Array("b".utf8))
        // After the close nothing more is written, straight or not.
        #expect(!connection.write(BroadcastFrame(text: ByteBuffer(string: "late"), sharedWindows: [], compression: PerMessageDeflateConfiguration())))
        #expect(try self.written(channel).isEmpty)
    }

    /// The channel's writes as they arrived (one buffer each), and the frames in each.
    private func writes(_ channel: EmbeddedChannel) throws -> [[String]] {
        (channel.eventLoop as! EmbeddedEventLoop).run()
        var result: [[String]] = []
        while var buffer = try channel.readOutbound(as: ByteBuffer.self) {
            guard buffer.readableBytes > 0 else { continue }
            var frames: [String] = []
            while let frame = ServerFrame.parse(&buffer) { frames.append(String(decoding: frame.payload, as: UTF8.self)) }
            #expect(buffer.readableBytes == 0)
            result.append(frames)
        }
        return result
    }

    private func broadcast(_ text: String) -> BroadcastFrame {
        BroadcastFrame(text: ByteBuffer(string: text), sharedWindows: [], compression: PerMessageDeflateConfiguration())
    }

    @Test func framesOfOneTickReachTheChannelAsOneWriteAndTheSharedFrameStaysIntact() throws {
        // Two connections of one loop, as a publish reaches them.
        let loop = EmbeddedEventLoop()
        let (first, firstConnection) = try self.attached(straight: true, on: loop)
        let (second, secondConnection) = try self.attached(straight: true, on: loop)
        let a = self.broadcast("a"), b = self.broadcast("b"), c = self.broadcast("c")
        for broadcast in [a, b, c] {
            #expect(firstConnection.write(broadcast))
            #expect(secondConnection.write(broadcast))
        }
        #expect(try self.writes(first) == [["a", "b", "c"]])
        #expect(try self.writes(second) == [["a", "b", "c"]])
        // Copied on write: the frame every connection shares still holds its own frame only.
        #expect(a.plain.readableBytes == 3)
        // A single frame in a tick goes as it is, and the next tick starts a new batch.
        #expect(firstConnection.write(b))
        #expect(try self.writes(first) == [["b"]])
    }

    /// One thread, two loops (testing loops share dispatch's threads): the flush armed on the
    /// first loop never takes the second loop's connection along (flushing it from the wrong
    /// loop trapped); that one is flushed at once instead.
    @Test func aConnectionOfAnotherLoopOnTheSameThreadIsFlushedOnItsOwn() throws {
        let (first, firstConnection) = try self.attached(straight: true)
        let (second, secondConnection) = try self.attached(straight: true)
        #expect(firstConnection.write(self.broadcast("a")))
        #expect(secondConnection.write(self.broadcast("b")))
        var early = try second.readOutbound(as: ByteBuffer.self) ?? ByteBuffer()
        let frame = ServerFrame.parse(&early)
        #expect(frame.map { String(decoding: $0.payload, as: UTF8.self) } == "b", "flushed without its loop's task")
        #expect(try self.writes(first) == [["a"]])
        #expect(try self.writes(second).isEmpty)
    }

    @Test func largeFramesAreHandedOverAsTheyAreAndABatchIsBounded() throws {
        let (channel, connection) = try self.attached(straight: true)
        let large = String(repeating: "L", count: WebSocketChannelHandler.coalescedFrameLimit + 1)
        let small = String(repeating: "s", count: 1000)
        #expect(connection.write(self.broadcast("a")))
        #expect(connection.write(self.broadcast(large)))
        // Past the batch bound a new batch begins.
        let perBatch = WebSocketChannelHandler.coalescedBatchLimit / 1004
        for _ in 0..<(perBatch + 1) { #expect(connection.write(self.broadcast(small))) }
        let writes = try self.writes(channel)
        // The large frame goes alone, copied into no batch (it may be shared by every subscriber).
        #expect(writes.count == 4)
        #expect(writes.first == ["a"])
        #expect(writes.dropFirst().first == [large])
        #expect(writes.dropFirst(2).first?.count == perBatch)
        #expect(writes.flatMap { $0 } == ["a", large] + Array(repeating: small, count: perBatch + 1))
    }

    @Test func controlFramesAndTheCloseComeAfterTheFramesHeldBeforeThem() throws {
        let (channel, connection) = try self.attached(straight: true)
        #expect(connection.write(self.broadcast("a")))
        #expect(connection.write(self.broadcast("b")))
        connection.ping([7])
        #expect(connection.write(self.broadcast("c")))
        connection.close(code: 1000, reason: "done")
        let frames = try self.written(channel)
        #expect(frames.map(\.frame.opcode) == [0x1, 0x1, 0x9, 0x1, 0x8])
        #expect(frames.map(\.marked) == [false, false, true, false, true])
    }
}
