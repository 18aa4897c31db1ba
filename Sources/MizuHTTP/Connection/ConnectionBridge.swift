import NIOCore
import NIOHTTP1

/// The writer's way back to its connection, from any thread.
struct ConnectionBridge: ResponseConnection {
    let handler: NIOLoopBound<HTTPConnectionHandler>
    let eventLoop: any EventLoop

    // Handlers usually run on the connection's loop (Task.on): then no hop at all.

    func write(_ parts: [HTTPServerResponsePart], isHeadRequest: Bool) -> EventLoopFuture<Void> {
        if self.eventLoop.inEventLoop {
            return self.handler.value.writeResponse(parts, isHeadRequest: isHeadRequest)
                ?? self.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel)
        }
        return self.eventLoop.flatSubmit {
            self.handler.value.writeResponse(parts, isHeadRequest: isHeadRequest)
                ?? self.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel)
        }
    }

    func upgrade(head: HTTPResponseHead, configure: @escaping @Sendable (any Channel) -> EventLoopFuture<Void>) -> EventLoopFuture<Void> {
        if self.eventLoop.inEventLoop {
            return self.handler.value.upgrade(head: head, configure: configure)
                ?? self.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel)
        }
        return self.eventLoop.flatSubmit {
            self.handler.value.upgrade(head: head, configure: configure)
                ?? self.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel)
        }
    }

    func cut() {
        self.onLoop { $0.cutResponse() }
    }

    func requestFinished(failed: Bool) {
        self.onLoop { $0.requestFinished(failed: failed) }
    }

    /// Runs `body` with the handler now when on its loop, else on the loop soon.
    private func onLoop(_ body: @escaping @Sendable (HTTPConnectionHandler) -> Void) {
        if self.eventLoop.inEventLoop {
            body(self.handler.value)
        } else {
            self.eventLoop.execute { body(self.handler.value) }
        }
    }
}
