@testable import MizuWebSocket
import NIOCore
import NIOEmbedded
import Testing

/// The close future is made only when asked for (not per connection): asked before the end,
/// after it, or twice, it gives the first end's reason.
@Suite struct WebSocketCloseFutureTests {
    @Test func theCloseFutureGivesTheFirstEndWhenEverItIsAsked() throws {
        let loop = EmbeddedEventLoop()
        let connection = WebSocketConnection(eventLoop: loop, subprotocol: nil, remoteAddress: nil, deflate: nil, sendQueueLimit: nil)
        let before = connection.closeFuture
        let again = connection.closeFuture
        connection.didClose(.heartbeatTimeout)
        connection.didClose(.writeTimeout)  // a second end changes nothing
        let after = connection.closeFuture
        for future in [before, again, after] {
            #expect(try future.wait() == .heartbeatTimeout)
        }
        let unasked = WebSocketConnection(eventLoop: loop, subprotocol: nil, remoteAddress: nil, deflate: nil, sendQueueLimit: nil)
        unasked.didClose(.serverShutdown)
        #expect(try unasked.closeFuture.wait() == .serverShutdown)
        try loop.syncShutdownGracefully()
    }
}
