import NIOCore
import NIOHTTP1

/// Sends a client's opening handshake and reads the answer; on a valid 101 it hands the
/// channel to the protocol engine (``WebSocketChannelHandler`` in the client role), the bytes
/// that came after the 101 included. Anything else fails `promise` and closes the channel.
/// Runs on the channel's event loop only.
final class ClientHandshakeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let handshake: WebSocketClientHandshake
    private let settings: WebSocketSettings
    private let events: WebSocketEvents
    private let promise: EventLoopPromise<WebSocketConnection>
    private let encoder: HTTPRequestEncoder
    private let decoder: ByteToMessageHandler<HTTPResponseDecoder>
    private let timeout: TimeAmount
    private var timer: Scheduled<Void>?
    private var head: HTTPResponseHead?
    /// The start of a refusal's body, for the error (bounded: a server may send a lot).
    private var refusalBody = ""
    private static let maxRefusalBytes = 512
    private var sent = false
    private var done = false

    init(
        handshake: WebSocketClientHandshake, settings: WebSocketSettings, events: WebSocketEvents, timeout: TimeAmount,
        encoder: HTTPRequestEncoder, decoder: ByteToMessageHandler<HTTPResponseDecoder>, promise: EventLoopPromise<WebSocketConnection>
    ) {
        self.handshake = handshake
        self.settings = settings
        self.events = events
        self.timeout = timeout
        self.encoder = encoder
        self.decoder = decoder
        self.promise = promise
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        self.timer = context.eventLoop.scheduleTask(in: self.timeout) { bound.value.0.fail(.timeout, context: bound.value.1) }
        if context.channel.isActive { self.sendRequest(context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.timer?.cancel()
        if !self.done {
            self.done = true
            self.promise.fail(WebSocketClientError.closed)
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        self.sendRequest(context: context)
        context.fireChannelActive()
    }

    private func sendRequest(context: ChannelHandlerContext) {
        guard !self.sent else { return }
        self.sent = true
        context.write(self.wrapOutboundOut(.head(self.handshake.requestHead)), promise: nil)
        context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !self.done else { return }
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body(let body):
            let room = Self.maxRefusalBytes - self.refusalBody.utf8.count
            if room > 0 { self.refusalBody += String(decoding: body.readableBytesView.prefix(room), as: UTF8.self) }
        case .end:
            guard let head = self.head else { return self.fail(.invalidHandshake("no response head"), context: context) }
            guard head.status == .switchingProtocols else {
                let retryAfter = head.headers.first(name: "retry-after").flatMap { Int($0.trimmingHTTPWhitespace()) }.map { max(0, $0) }
                let reason = self.refusalBody.trimmingCharacters(in: .whitespacesAndNewlines)
                return self.fail(.refused(status: Int(head.status.code), retryAfter: retryAfter, reason: reason), context: context)
            }
            do {
                let agreement = try self.handshake.validate(head)
                try self.switchProtocols(agreement, context: context)
            } catch let error as WebSocketClientError {
                self.fail(error, context: context)
            } catch {
                self.fail(.invalidHandshake("\(error)"), context: context)
            }
        }
    }

    /// The protocol engine takes over; the decoder goes last, handing it the bytes it holds.
    private func switchProtocols(_ agreement: WebSocketClientHandshake.Agreement, context: ChannelHandlerContext) throws {
        self.done = true
        self.timer?.cancel()
        let channel = context.channel
        let connection = WebSocketConnection(
            eventLoop: channel.eventLoop, subprotocol: agreement.subprotocol, remoteAddress: channel.remoteAddress,
            deflate: agreement.deflate, sendQueueLimit: self.settings.configuration.maxQueuedMessages,
            watermark: self.settings.configuration.sendQueueWatermark)
        let operations = channel.pipeline.syncOperations
        try operations.addHandler(WebSocketChannelHandler(connection: connection, events: self.events, settings: self.settings))
        operations.removeHandler(self.encoder, promise: nil)
        operations.removeHandler(context: context, promise: nil)
        operations.removeHandler(self.decoder, promise: nil)
        self.promise.succeed(connection)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.fail(.closed, context: context)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.fail(.invalidHandshake("\(error)"), context: context)
    }

    private func fail(_ error: WebSocketClientError, context: ChannelHandlerContext) {
        guard !self.done else { return }
        self.done = true
        self.timer?.cancel()
        self.promise.fail(error)
        context.close(promise: nil)
    }
}
