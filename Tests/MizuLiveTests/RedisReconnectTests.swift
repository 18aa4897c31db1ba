@testable import MizuLive
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// An endpoint that completes the handshake and hangs up at once, forever: the broker must
/// back off as from any failure, not start again from the shortest delay after each handshake.
@Suite(.timeLimit(.minutes(2))) struct RedisReconnectTests {
    private final class HandshakeThenHangUp: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let channel = context.channel
            context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: "+PONG\r\n"))).whenComplete { _ in
                channel.close(promise: nil)
            }
        }
    }

    @Test func aFlappingEndpointMeetsAGrowingDelay() async throws {
        let accepted = NIOLockedValueBox(0)
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                accepted.withLockedValue { $0 += 1 }
                return channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(HandshakeThenHangUp()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        var configuration = Live.RedisBroker.Configuration(host: "127.0.0.1", port: server.localAddress!.port!)
        configuration.reconnectDelay = .milliseconds(20)
        configuration.maxReconnectDelay = .milliseconds(200)
        let broker = try await Live.RedisBroker.connect(configuration)
        try await Task.sleep(nanoseconds: 2_000_000_000)
        await broker.close()
        try await server.close()
        let count = accepted.withLockedValue { $0 }
        // Two connections (publisher, subscriber), each: 20, 40, 80, 160, then 200 ms (jittered
        // to 100-200): about 15 each in 2 s. Restarting at 20 ms after every handshake: 100+ each.
        // Without the 200 ms cap the delays would reach 1.3 s: about 7 each, 14 in all.
        #expect(count >= 20, "\(count) connections in 2 s: the delay grew past its cap")
        #expect(count <= 50, "\(count) connections in 2 s: the backoff was reset by each handshake")
    }
}
