@testable import MizuLive
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import MizuTestSupport
import Testing

/// An endpoint that completes the handshake and hangs up at once, forever: the broker must
/// back off as from any failure, not start again from the shortest delay after each handshake.
@Suite(.timeLimit(.minutes(10))) struct RedisReconnectTests {
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
        configuration.connectTimeout = Patience.scaled(.seconds(2))  // the first connect must succeed, however slow the machine
        let started = NIODeadline.now()
        let broker = try await Live.RedisBroker.connect(configuration)
        try await Task.sleep(nanoseconds: 2_000_000_000)
        await broker.close()
        let elapsed = NIODeadline.now() - started
        try await server.close()
        let count = accepted.withLockedValue { $0 }
        // Two connections (publisher, subscriber), each: 20, 40, 80, 160, then 200 ms (jittered
        // to 100-200): about 15 each in 2 s. Restarting at 20 ms after every handshake: 100+ each.
        // A count in wall time only bounds from above on a loaded machine; the delays
        // themselves are checked exactly by `theDelayDoublesToItsCapAndRestartsOnlyAfterHealth`.
        #expect(count >= 2, "it keeps trying")
        // At most one attempt per 100 ms (the capped delay's least) per link after the first
        // few, over however long the sleep really took on this machine.
        let bound = 2 * (Int(elapsed.nanoseconds / 100_000_000) + 5)
        #expect(count <= bound, "\(count) connections in \(elapsed): the backoff was reset by each handshake")
    }

    @Test func theDelayDoublesToItsCapAndRestartsOnlyAfterHealth() {
        var backoff = ReconnectBackoff(base: .milliseconds(100), cap: .seconds(1), healthyAfter: .seconds(10))
        func fullDelays(_ count: Int) -> [Int64] {
            (0..<count).map { _ in
                defer { backoff.attemptFailed() }
                return backoff.delay(jitter: 1).nanoseconds / 1_000_000
            }
        }
        #expect(fullDelays(6) == [100, 200, 400, 800, 1000, 1000], "doubling, capped")
        #expect(backoff.delay(jitter: 0).nanoseconds == 500_000_000, "jitter stays in the upper half")

        // A connection that drops at once is one more failure, not a fresh start.
        let start = NIODeadline.now()
        backoff.connected(at: start)
        backoff.lost(at: start + .milliseconds(50))
        #expect(backoff.failures == 7)
        #expect(backoff.delay(jitter: 1) == .seconds(1))

        // One that stayed up past the health threshold starts the doubling again.
        backoff.connected(at: start)
        backoff.lost(at: start + .seconds(10))
        #expect(backoff.failures == 0)
        #expect(backoff.delay(jitter: 1) == .milliseconds(100))
    }

    /// A base of hours doubled twenty times is past Int64's nanoseconds: the cap, never a
    /// wrapped (negative, so immediate) delay.
    @Test func aLongBaseDoubledPastTheRangeStaysAtItsCap() {
        var backoff = ReconnectBackoff(base: .hours(3), cap: .hours(6), healthyAfter: .hours(12))
        for _ in 0..<40 { backoff.attemptFailed() }
        #expect(backoff.delay(jitter: 1) == .hours(6))
        #expect(backoff.delay(jitter: 0) == .hours(3))
    }
}
