@testable import MizuLive
import MizuTestSupport
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// Reading the slot map must not wait forever on one node: a node that completes the
/// handshake and then answers nothing (paused by a failover, stopped, cut off without a FIN)
/// gets the connect timeout, then the next node is asked. Without a deadline one such read
/// held the broker's only refresh for good, and the map never changed again.
@Suite(.timeLimit(.minutes(2))) struct ClusterMapReadTests {
    /// A cluster node as far as the map read goes: PONG to the handshake, then to `CLUSTER
    /// SLOTS` either a map with every slot on one primary, or silence.
    private final class StubNode: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let answersSlots: Bool
        let primaryPort: Int
        private var received = ""

        init(answersSlots: Bool, primaryPort: Int) {
            self.answersSlots = answersSlots
            self.primaryPort = primaryPort
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            self.received += String(buffer: Self.unwrapInboundIn(data))
            if self.received.contains("PING") {
                self.received = ""
                context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: "+PONG\r\n")), promise: nil)
            } else if self.received.contains("SLOTS") {
                self.received = ""
                guard self.answersSlots else { return }
                let port = String(self.primaryPort)
                let map = "*1\r\n*3\r\n:0\r\n:16383\r\n*3\r\n$9\r\n127.0.0.1\r\n:\(port)\r\n$2\r\nid\r\n"
                context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: map)), promise: nil)
            }
        }
    }

    private func stub(answersSlots: Bool, primaryPort: Int = 7000) async throws -> any Channel {
        try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(StubNode(answersSlots: answersSlots, primaryPort: primaryPort))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    /// A loaded machine must connect and shake hands within it (the silent node costs it).
    private static let timeout = Patience.scaled(TimeAmount.seconds(1))

    private func configuration(timeout: TimeAmount) -> Live.RedisClusterBroker.Configuration {
        var node = Live.RedisBroker.Configuration(host: "127.0.0.1", port: 1)
        node.connectTimeout = timeout
        return Live.RedisClusterBroker.Configuration(seeds: [], node: node)
    }

    @Test func aNodeThatNeverAnswersIsGivenUpAndTheNextOneAsked() async throws {
        let silent = try await self.stub(answersSlots: false)
        let answering = try await self.stub(answersSlots: true, primaryPort: 7001)
        defer {
            silent.close(promise: nil)
            answering.close(promise: nil)
        }
        let nodes = [silent, answering].map { ClusterNodeAddress(host: "127.0.0.1", port: $0.localAddress!.port!) }
        let configuration = self.configuration(timeout: Self.timeout)
        let topology = try await withDeadline("the map read") {
            try await Live.RedisClusterBroker.readTopology(from: nodes, configuration: configuration, eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
        }
        #expect(topology.primaries == [ClusterNodeAddress(host: "127.0.0.1", port: 7001)])
        #expect(topology.coversEverySlot)
    }

    @Test func noNodeAnsweringIsATimeoutNotAWaitForever() async throws {
        let silent = try await self.stub(answersSlots: false)
        defer { silent.close(promise: nil) }
        let node = ClusterNodeAddress(host: "127.0.0.1", port: silent.localAddress!.port!)
        let start = NIODeadline.now()
        let configuration = self.configuration(timeout: Self.timeout)
        await #expect(throws: Live.RedisError.timeout) {
            _ = try await withDeadline("the map read") {
                try await Live.RedisClusterBroker.readTopology(from: [node], configuration: configuration, eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
            }
        }
        #expect(NIODeadline.now() - start >= Self.timeout, "it waited the timeout")
    }
}
