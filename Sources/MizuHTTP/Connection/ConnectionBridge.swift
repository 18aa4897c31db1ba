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
        if self.eventLoop.inEventLoop {
            self.handler.value.cutResponse()
        } else {
            self.eventLoop.execute { self.handler.value.cutResponse() }
        }
    }

    func requestFinished(failed: Bool) {
        if self.eventLoop.inEventLoop {
            self.handler.value.requestFinished(failed: failed)
        } else {
            self.eventLoop.execute { self.handler.value.requestFinished(failed: failed) }
        }
    }
}
