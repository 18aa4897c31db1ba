import MizuTestSupport
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import Testing

@_spi(Benchmarking) @testable import MizuWebSocket

/// The protocol engine on an EmbeddedChannel: frames in, frames out, deadlines driven by the
/// embedded loop's clock. Edge cases of the state machine without sockets or timing.
@Suite struct WebSocketChannelHandlerTests {
    final class Recorder: Sendable {
        let messages = NIOLockedValueBox<[WebSocketMessage]>([])
        let reasons = NIOLockedValueBox<[WebSocketCloseReason]>([])

        var events: WebSocketEvents {
            WebSocketEvents(
                onMessage: { _, message in self.messages.withLockedValue { $0.append(message) } },
                onClose: { _, reason in self.reasons.withLockedValue { $0.append(reason) } })
        }
    }

    struct Harness {
        let loop = EmbeddedEventLoop()
        let channel: EmbeddedChannel
        let connection: WebSocketConnection
        let recorder = Recorder()

        init(_ configure: (inout WebSocketConfiguration) -> Void = { _ in }) throws {
            var configuration = WebSocketConfiguration()
            configuration.compression = nil
            configure(&configuration)
            self.channel = EmbeddedChannel(loop: self.loop)
            try self.channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
            self.connection = WebSocketConnection.unattached(eventLoop: self.loop, sendQueueLimit: configuration.maxQueuedMessages)
            try self.connection.attach(to: self.channel, configuration: configuration, events: self.recorder.events)
        }

        func receive(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true, mask: [UInt8]? = [1, 2, 3, 4]) throws {
            try self.channel.writeInbound(ByteBuffer(bytes: clientFrame(opcode, payload, fin: fin, mask: mask)))
            self.loop.run()
        }

        /// Every frame the server has flushed so far.
        func sent() throws -> [ServerFrame] {
            self.loop.run()
            var frames: [ServerFrame] = []
            while var buffer = try self.channel.readOutbound(as: ByteBuffer.self) {
                while let frame = ServerFrame.parse(&buffer) { frames.append(frame) }
            }
            return frames
        }

        var reasons: [WebSocketCloseReason] { self.recorder.reasons.withLockedValue { $0 } }
    }

    @Test func everyPingIsAnsweredInOrderWhileThePeerReads() throws {
        let harness = try Harness()
        try harness.receive(0x9, [1])
        try harness.receive(0x9, [2])
        #expect(try harness.sent() == [
            ServerFrame(fin: true, rsv1: false, opcode: 0xA, payload: [1]),
            ServerFrame(fin: true, rsv1: false, opcode: 0xA, payload: [2]),
        ])
    }

    @Test func whileOurOutputIsStalledOnlyTheLatestPingIsAnswered() throws {
        let harness = try Harness()
        harness.channel.isWritable = false
        harness.channel.pipeline.fireChannelWritabilityChanged()
        for byte: UInt8 in 1...5 { try harness.receive(0x9, [byte]) }
        #expect(try harness.sent().isEmpty)
        harness.channel.isWritable = true
        harness.channel.pipeline.fireChannelWritabilityChanged()
        #expect(try harness.sent() == [ServerFrame(fin: true, rsv1: false, opcode: 0xA, payload: [5])])
    }

    @Test func aPeersCloseIsEchoedAndEndsTheConnection() throws {
        let harness = try Harness()
        try harness.receive(0x8, [0x0F, 0xA0] + Array("bye".utf8))
        #expect(try harness.sent().map(\.closeCode) == [4000])
        #expect(!harness.channel.isActive)
        #expect(harness.reasons == [.peerClosed(code: 4000, reason: "bye")])
    }

    @Test func anUnmaskedFrameFailsTheConnectionWith1002() throws {
        let harness = try Harness()
        try harness.receive(0x1, Array("hi".utf8), mask: nil)
        #expect(try harness.sent().map(\.closeCode) == [1002])
        #expect(!harness.channel.isActive, "failing the connection closes TCP once the close frame is out (RFC 6455 7.1.7)")
        guard case .protocolViolation(code: 1002, _) = harness.reasons.first, harness.reasons.count == 1 else {
            Issue.record("expected one protocol violation, got \(harness.reasons)")
            return
        }
    }

    @Test func aCloseWeStartEndsWithinTheCloseTimeoutIfThePeerNeverAnswers() throws {
        let harness = try Harness { $0.closeTimeout = .seconds(5) }
        harness.connection.close(code: 4001, reason: "done")
        #expect(try harness.sent().map(\.closeCode) == [4001])
        harness.loop.advanceTime(by: .seconds(4))
        #expect(harness.channel.isActive, "waiting for the peer's close")
        try harness.receive(0x1, Array("late".utf8))
        #expect(harness.recorder.messages.withLockedValue { $0 }.isEmpty, "nothing is delivered once closing")
        harness.loop.advanceTime(by: .seconds(1))
        #expect(!harness.channel.isActive, "the close deadline ended it")
        #expect(harness.reasons == [.serverClosed(code: 4001, reason: "done")])
    }

    @Test func aSilentPeerIsClosedOnePongTimeoutAfterAPing() throws {
        let harness = try Harness {
            $0.pingInterval = .seconds(8)
            $0.pongTimeout = .seconds(3)
        }
        harness.loop.advanceTime(by: .seconds(8))
        #expect(try harness.sent().map(\.opcode) == [0x9])
        harness.loop.advanceTime(by: .seconds(2))
        try harness.receive(0xA, [])  // any frame is a sign of life
        harness.loop.advanceTime(by: .seconds(5))
        #expect(harness.channel.isActive)
        harness.loop.advanceTime(by: .seconds(1))  // t = 16: the second ping
        #expect(try harness.sent().map(\.opcode) == [0x9])
        harness.loop.advanceTime(by: .seconds(3))
        #expect(!harness.channel.isActive)
        #expect(harness.reasons == [.heartbeatTimeout])
    }

    @Test func aPeerThatTakesNothingMeetsTheWriteStallDeadline() throws {
        let harness = try Harness { $0.writeStallTimeout = .seconds(30) }
        harness.channel.isWritable = false
        harness.channel.pipeline.fireChannelWritabilityChanged()
        harness.loop.advanceTime(by: .seconds(29))
        #expect(harness.channel.isActive)
        harness.loop.advanceTime(by: .seconds(1))
        #expect(!harness.channel.isActive)
        #expect(harness.reasons == [.writeTimeout])
    }

    @Test func aFullSendQueueClosesAsASlowConsumer() throws {
        let harness = try Harness { $0.maxQueuedMessages = 2 }
        harness.channel.isWritable = false  // nothing leaves: every send stays queued
        for index in 0..<2 { #expect(harness.connection.trySend(.text("m\(index)")) == .queued) }
        #expect(harness.connection.trySend(.text("one too many")) == .queueFull)
        harness.loop.run()
        #expect(harness.reasons == [.sendQueueFull], "the connection closed itself: no caller has to")
        #expect(!harness.channel.isActive)
    }

    @Test func fragmentsAreAssembledIntoOneMessage() throws {
        let harness = try Harness()
        try harness.receive(0x1, Array("hel".utf8), fin: false)
        try harness.receive(0x9, [7])  // a control frame between fragments is allowed
        try harness.receive(0x0, Array("lo".utf8))
        #expect(harness.recorder.messages.withLockedValue { $0 } == [.text("hello")])
        #expect(try harness.sent() == [ServerFrame(fin: true, rsv1: false, opcode: 0xA, payload: [7])])
    }

    @Test func withNoLimitAHugeDeclaredLengthStillClosesWith1009() throws {
        // A frame declaring 2^63 - 1 bytes against `maxMessageSize = .max` ("no limit"): the
        // header arithmetic must not overflow (it trapped), and no buffer can hold it.
        let harness = try Harness { $0.maxMessageSize = .max }
        var frame = ByteBuffer(bytes: [0x82, 0x80 | 127])
        frame.writeInteger(UInt64(Int64.max))
        frame.writeBytes([1, 2, 3, 4])
        try harness.channel.writeInbound(frame)
        harness.loop.run()
        #expect(try harness.sent().map(\.closeCode) == [1009])
        #expect(harness.reasons.count == 1)
    }

    @Test func aMessageBegunMustEndWithinItsTimeout() throws {
        let harness = try Harness { $0.messageTimeout = .seconds(10) }
        // Completed in time, with a control frame between its fragments: nothing happens.
        try harness.receive(0x1, Array("a".utf8), fin: false)
        harness.loop.advanceTime(by: .seconds(6))
        try harness.receive(0x9, [1])
        try harness.receive(0x0, Array("b".utf8))
        // The next message's deadline starts with its own first fragment, not the last one's.
        harness.loop.advanceTime(by: .seconds(6))
        try harness.receive(0x1, Array("c".utf8), fin: false)
        harness.loop.advanceTime(by: .seconds(6))
        #expect(harness.channel.isActive, "12 s after the first message began, 6 s after this one did")
        // Trickled: a continuation now and then is no progress towards the end.
        try harness.receive(0x0, [], fin: false)
        harness.loop.advanceTime(by: .seconds(4))
        #expect(try harness.sent().map(\.closeCode) == [nil, 1008], "the pong, then the close")
        #expect(harness.recorder.messages.withLockedValue { $0 } == [.text("ab")])
        #expect(harness.reasons == [.protocolViolation(code: 1008, reason: "message not completed in time")])
    }
}
