import CoreMetrics
import Logging
@testable import MizuHTTP
import MizuTestSupport
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

/// The connection handler on a testing channel: no socket, time by the loop's clock.
@Suite(.timeLimit(.minutes(1))) struct HTTPConnectionHandlerTests {
    /// Answers `<method> <path> <body>` in a plain-text body.
    private struct EchoPath: HTTPHandler {
        func serveHTTP(_ writer: ResponseWriter, _ request: Request) async throws {
            let body = String(buffer: request.body)
            try await writer.write("\(request.method) \(request.path) \(body)")
        }
    }

    private func channel(
        handler: any HTTPHandler = EchoPath(), _ configure: (inout HTTPServerConfiguration) -> Void = { _ in }
    ) async throws -> NIOAsyncTestingChannel {
        var configuration = HTTPServerConfiguration()
        configure(&configuration)
        let channel = NIOAsyncTestingChannel()
        let settings = configuration
        // The pipeline HTTPServer builds for a plain connection, built on the channel's loop.
        try await channel.testingEventLoop.executeInContext {
            let connection = HTTPConnectionHandler(
                handler: handler, configuration: settings, logger: Logger(label: "test"),
                metrics: HTTPMetrics(factory: NOOPMetricsHandler.instance), secure: false,
                observer: nil)
            try channel.pipeline.syncOperations.addHandler(connection)
        }
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1))
        return channel
    }

    /// What the handler wrote until `predicate` holds for it (the handler runs in a task).
    private func output(_ channel: NIOAsyncTestingChannel, until predicate: (String) -> Bool) async throws -> String {
        var text = ""
        let deadline = NIODeadline.now() + Patience.scaled(.seconds(5))
        while NIODeadline.now() < deadline {
            // Work queued from the loop itself (the handler's task) runs when the loop is run.
            await channel.testingEventLoop.run()
            while let part = try await channel.readOutbound(as: IOData.self) {
                if case .byteBuffer(let buffer) = part { text += String(buffer: buffer) }
            }
            if predicate(text) { return text }
            await Task.yield()
            try await Task.sleep(nanoseconds: 1_000_000)
        }
        Issue.record("no such output; got \(text.debugDescription)")
        return text
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        let channel = try await self.channel()
        try await channel.writeInbound(ByteBuffer(string: "GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhiGET /c HTTP/1.1\r\nHost: x\r\n\r\n"))
        let text = try await self.output(channel) { $0.contains("GET /c") }
        let answers = ["GET /a ", "POST /b hi", "GET /c "].map { text.range(of: $0)?.lowerBound }
        #expect(answers.allSatisfy { $0 != nil } && answers.map { $0! } == answers.map { $0! }.sorted(), "\(text)")
        #expect(text.components(separatedBy: "HTTP/1.1 200 OK").count == 4)
        try await channel.close()
    }

    @Test func aHeadThatDoesNotArriveInTimeIsAnswered408ByTheLoopsClock() async throws {
        let channel = try await self.channel { $0.requestHeadTimeout = .seconds(10) }
        try await channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nHo"))
        await channel.testingEventLoop.advanceTime(by: .seconds(9))
        #expect(try await channel.readOutbound(as: IOData.self) == nil, "not before the deadline")
        await channel.testingEventLoop.advanceTime(by: .seconds(2))
        let text = try await self.output(channel) { $0.contains("\r\n\r\n") }
        #expect(text.hasPrefix("HTTP/1.1 408"), "\(text)")
        try await channel.closeFuture.get()
    }

    @Test func aBodyOverTheLimitIsRefused413WithoutRunningTheHandler() async throws {
        let channel = try await self.channel { $0.maxBodySize = 4 }
        try await channel.writeInbound(ByteBuffer(string: "POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"))
        let text = try await self.output(channel) { $0.contains("\r\n\r\n") }
        #expect(text.hasPrefix("HTTP/1.1 413"), "\(text)")
        #expect(!text.contains("POST /big"))
        try? await channel.close()
    }

    /// On a kept-alive connection the next head's deadline starts with its first bytes, not
    /// at the idle timeout: the read that brings them says so, with no handler of its own.
    @Test func aLaterHeadThatStallsMeetsTheHeadDeadlineNotTheIdleOne() async throws {
        let channel = try await self.channel {
            $0.requestHeadTimeout = .seconds(10)
            $0.idleTimeout = .seconds(60)
        }
        try await channel.writeInbound(ByteBuffer(string: "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"))
        _ = try await self.output(channel) { $0.contains("GET /a") }
        await channel.testingEventLoop.advanceTime(by: .seconds(30))
        try await channel.writeInbound(ByteBuffer(string: "GET /b HTTP/1.1\r\nHo"))
        await channel.testingEventLoop.advanceTime(by: .seconds(9))
        #expect(channel.isActive, "not before the head deadline")
        await channel.testingEventLoop.advanceTime(by: .seconds(2))
        let text = try await self.output(channel) { $0.contains("408") }
        #expect(text.contains("HTTP/1.1 408"), "\(text)")
    }

    @Test func anIdleConnectionIsClosedAfterTheIdleTimeout() async throws {
        let channel = try await self.channel { $0.idleTimeout = .seconds(60) }
        try await channel.writeInbound(ByteBuffer(string: "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"))
        _ = try await self.output(channel) { $0.contains("GET /a") }
        await channel.testingEventLoop.advanceTime(by: .seconds(59))
        #expect(channel.isActive)
        await channel.testingEventLoop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive, "closed at the deadline")
    }

    /// While the peer takes none of our output, the connection stays; at the write-stall
    /// deadline (by the loop's clock) it is dropped.
    @Test func aPeerThatTakesNoOutputIsDroppedAtTheWriteStallDeadline() async throws {
        let channel = try await self.channel { $0.writeStallTimeout = .seconds(30) }
        try await channel.writeInbound(ByteBuffer(string: "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"))
        _ = try await self.output(channel) { $0.contains("GET /a") }
        channel.isWritable = false
        try await channel.testingEventLoop.executeInContext { channel.pipeline.fireChannelWritabilityChanged() }
        await channel.testingEventLoop.advanceTime(by: .seconds(29))
        #expect(channel.isActive, "not before the deadline")
        await channel.testingEventLoop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive, "closed at the deadline")
    }

    /// A peer that becomes writable again before the deadline is not dropped.
    @Test func aPeerThatTakesItsOutputAgainIsKept() async throws {
        let channel = try await self.channel { $0.writeStallTimeout = .seconds(30); $0.idleTimeout = .seconds(600) }
        try await channel.writeInbound(ByteBuffer(string: "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"))
        _ = try await self.output(channel) { $0.contains("GET /a") }
        channel.isWritable = false
        try await channel.testingEventLoop.executeInContext { channel.pipeline.fireChannelWritabilityChanged() }
        await channel.testingEventLoop.advanceTime(by: .seconds(20))
        channel.isWritable = true
        try await channel.testingEventLoop.executeInContext { channel.pipeline.fireChannelWritabilityChanged() }
        await channel.testingEventLoop.advanceTime(by: .seconds(60))
        #expect(channel.isActive)
        try await channel.writeInbound(ByteBuffer(string: "GET /b HTTP/1.1\r\nHost: x\r\n\r\n"))
        _ = try await self.output(channel) { $0.contains("GET /b") }
        try await channel.close()
    }

    /// Takes whatever comes after an upgrade.
    private final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let received = NIOLockedValueBox("")

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let bytes = Self.unwrapInboundIn(data)
            self.received.withLockedValue { $0 += String(buffer: bytes) }
        }
    }

    /// Upgrades every request to a protocol whose handler is `collector`.
    private struct Upgrading: HTTPHandler {
        let collector: Collector

        func serveHTTP(_ writer: ResponseWriter, _ request: Request) async throws {
            let collector = self.collector
            try await writer.upgrade { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
            }
        }
    }

    /// The 101 goes out, the HTTP handlers leave the pipeline, and the bytes that came with
    /// the request head reach the new protocol's handler: nothing is lost or parsed as HTTP.
    @Test func anUpgradeHandsTheConnectionAndTheBytesAfterTheHeadToTheNewProtocol() async throws {
        let collector = Collector()
        let channel = try await self.channel(handler: Upgrading(collector: collector))
        try await channel.writeInbound(ByteBuffer(string: "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\nfirst bytes"))
        let text = try await self.output(channel) { $0.contains("\r\n\r\n") }
        #expect(text.hasPrefix("HTTP/1.1 101"), "\(text)")
        for _ in 0..<100 where collector.received.withLockedValue({ $0 }).isEmpty { await channel.testingEventLoop.run() }
        #expect(collector.received.withLockedValue { $0 } == "first bytes")
        try await channel.writeInbound(ByteBuffer(string: " and more"))
        #expect(collector.received.withLockedValue { $0 } == "first bytes and more")
        let httpLeft = try await channel.testingEventLoop.executeInContext {
            (try? channel.pipeline.syncOperations.handler(type: HTTPConnectionHandler.self)) == nil
        }
        #expect(httpLeft, "the HTTP handler left the pipeline")
        try await channel.close()
    }

    /// A handler that needs no waiting runs and answers inside the read that completed its
    /// request: no trip through the loop's queue (the loop is never run here). An upgrade is
    /// done before that read returns, so reading never stops around it (the bytes after the
    /// head follow one loop turn later, when NIO's decoder hands its leftovers over).
    @Test func aHandlerThatNeedsNoWaitingAnswersWithinTheReadThatCompletedItsRequest() async throws {
        let channel = try await self.channel()
        try await channel.writeInbound(ByteBuffer(string: "GET /now HTTP/1.1\r\nHost: x\r\n\r\n"))
        var text = ""
        while let part = try await channel.readOutbound(as: IOData.self) {
            if case .byteBuffer(let buffer) = part { text += String(buffer: buffer) }
        }
        #expect(text.hasPrefix("HTTP/1.1 200") && text.hasSuffix("GET /now "), "\(text)")

        let collector = Collector()
        let upgraded = try await self.channel(handler: Upgrading(collector: collector))
        try await upgraded.writeInbound(ByteBuffer(string: "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\nfirst bytes"))
        var head = ""
        while let part = try await upgraded.readOutbound(as: IOData.self) {
            if case .byteBuffer(let buffer) = part { head += String(buffer: buffer) }
        }
        #expect(head.hasPrefix("HTTP/1.1 101"), "\(head)")
        let handedOver = try await upgraded.testingEventLoop.executeInContext {
            (try? upgraded.pipeline.syncOperations.handler(type: HTTPConnectionHandler.self)) == nil
                && (try? upgraded.pipeline.syncOperations.handler(type: Collector.self)) != nil
        }
        #expect(handedOver, "the new protocol's handler replaced HTTP's before the read returned")
        try await channel.close()
        try await upgraded.close()
    }
}
