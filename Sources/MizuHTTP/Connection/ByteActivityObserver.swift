import NIOCore

/// Tells the connection handler that raw bytes arrived (a request head has started), so
/// the head timeout can run while the parser still waits for the end of the head.
final class ByteActivityObserver: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    var onBytes: (() -> Void)?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.onBytes?()
        context.fireChannelRead(data)
    }
}
