import NIOCore
import NIOHTTP1

/// Sends a client's opening handshake and reads the answer's head itself (bounded, no HTTP
/// codec to remove mid-read); on a valid 101 it hands the channel to the protocol engine
/// (``WebSocketChannelHandler`` in the client role) with the bytes that came after the head.
/// Anything else fails `promise` and closes the channel. Runs on the channel's event loop only.
final class ClientHandshakeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let handshake: WebSocketClientHandshake
    private let settings: WebSocketSettings
    private let events: WebSocketEvents
    private let promise: EventLoopPromise<WebSocketConnection>
    private let timeout: TimeAmount
    private var timer: Scheduled<Void>?
    private var received = ByteBuffer()
    /// A refusal's head, while the start of its body is read (for the error's reason).
    private var refusal: (head: HTTPResponseHead, bodyStart: Int, length: Int?)?
    private var sent = false
    private var done = false

    /// A server's response head may not be larger (a hostile one could send forever).
    static let maxHeadBytes = 16 * 1024
    /// How much of a refusal's body becomes the error's reason.
    static let maxReasonBytes = 512

    init(
        handshake: WebSocketClientHandshake, settings: WebSocketSettings, events: WebSocketEvents, timeout: TimeAmount,
        promise: EventLoopPromise<WebSocketConnection>
    ) {
        self.handshake = handshake
        self.settings = settings
        self.events = events
        self.timeout = timeout
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
        context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: self.handshake.requestText)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !self.done else { return }
        var bytes = self.unwrapInboundIn(data)
        self.received.writeBuffer(&bytes)
        if let refusal = self.refusal {
            return self.readRefusal(refusal, context: context)
        }
        let view = self.received.readableBytesView
        guard let end = view.firstRange(of: [13, 10, 13, 10]) else {
            if self.received.readableBytes > Self.maxHeadBytes {
                self.fail(.invalidHandshake("response head over \(Self.maxHeadBytes) bytes"), context: context)
            }
            return
        }
        let headLength = end.upperBound - view.startIndex
        guard headLength <= Self.maxHeadBytes, let head = Self.parseHead(self.received.readSlice(length: headLength)!) else {
            return self.fail(.invalidHandshake("malformed response head"), context: context)
        }
        guard head.status == .switchingProtocols else {
            let length = head.headers.first(name: "content-length").flatMap { Int($0.trimmingHTTPWhitespace()) }
            let refusal = (head: head, bodyStart: self.received.readerIndex, length: length)
            self.refusal = refusal
            return self.readRefusal(refusal, context: context)
        }
        do {
            try self.switchProtocols(try self.handshake.validate(head), context: context)
        } catch let error as WebSocketClientError {
            self.fail(error, context: context)
        } catch {
            self.fail(.invalidHandshake("\(error)"), context: context)
        }
    }

    /// Waits for the start of the refusal's body (its length, its first chunk, or
    /// ``maxReasonBytes``; or the close), then fails with it as the reason.
    private func readRefusal(_ refusal: (head: HTTPResponseHead, bodyStart: Int, length: Int?), context: ChannelHandlerContext, closed: Bool = false) {
        let available = self.received.getSlice(at: refusal.bodyStart, length: self.received.writerIndex - refusal.bodyStart) ?? ByteBuffer()
        let chunked = refusal.head.headers[canonicalForm: "transfer-encoding"].contains { $0.lowercased() == "chunked" }
        var body: ByteBuffer
        if chunked {
            // The first chunk: its size line, then that many bytes.
            guard let lineEnd = available.readableBytesView.firstRange(of: [13, 10]),
                let size = Int(String(decoding: available.readableBytesView[..<lineEnd.lowerBound], as: UTF8.self)
                    .split(separator: ";").first?.trimmingHTTPWhitespace() ?? "", radix: 16)
            else {
                guard closed || available.readableBytes >= Self.maxReasonBytes else { return }
                return self.failRefused(refusal.head, reason: ByteBuffer(), context: context)
            }
            let wanted = min(max(0, size), Self.maxReasonBytes)
            let start = lineEnd.upperBound - available.readableBytesView.startIndex
            guard closed || available.readableBytes - start >= wanted else { return }
            body = available.getSlice(at: available.readerIndex + start, length: min(wanted, available.readableBytes - start)) ?? ByteBuffer()
        } else {
            let wanted = min(refusal.length ?? Self.maxReasonBytes, Self.maxReasonBytes)
            guard closed || available.readableBytes >= wanted else { return }
            body = available.getSlice(at: available.readerIndex, length: min(wanted, available.readableBytes)) ?? ByteBuffer()
        }
        self.failRefused(refusal.head, reason: body, context: context)
    }

    private func failRefused(_ head: HTTPResponseHead, reason body: ByteBuffer, context: ChannelHandlerContext) {
        let retryAfter = head.headers.first(name: "retry-after").flatMap { Int($0.trimmingHTTPWhitespace()) }.map { max(0, $0) }
        let reason = String(decoding: body.readableBytesView, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        self.fail(.refused(status: Int(head.status.code), retryAfter: retryAfter, reason: reason), context: context)
    }

    /// `HTTP/1.x NNN reason`, then `name: value` lines (RFC 9112 sections 4 and 5; no obsolete
    /// line folding). Nil when it is not such a head.
    static func parseHead(_ buffer: ByteBuffer) -> HTTPResponseHead? {
        let text = String(decoding: buffer.readableBytesView, as: UTF8.self)
        var lines = text.split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
        while lines.last == "" { lines.removeLast() }
        guard let statusLine = lines.first else { return nil }
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0] == "HTTP/1.1" || parts[0] == "HTTP/1.0", parts[1].count == 3,
            let code = Int(parts[1]), (100...599).contains(code)
        else { return nil }
        var headers = HTTPHeaders()
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex,
                !line.hasPrefix(" "), !line.hasPrefix("\t")
            else { return nil }
            let name = line[..<colon]
            guard !name.contains(where: { $0 == " " || $0 == "\t" }) else { return nil }
            headers.add(name: String(name), value: String(line[line.index(after: colon)...]).trimmingHTTPWhitespace())
        }
        return HTTPResponseHead(version: parts[0] == "HTTP/1.0" ? .http1_0 : .http1_1, status: HTTPResponseStatus(statusCode: code), headers: headers)
    }

    /// The protocol engine takes over, and gets the bytes that came after the head.
    private func switchProtocols(_ agreement: WebSocketClientHandshake.Agreement, context: ChannelHandlerContext) throws {
        self.done = true
        self.timer?.cancel()
        let channel = context.channel
        let connection = WebSocketConnection(
            eventLoop: channel.eventLoop, subprotocol: agreement.subprotocol, remoteAddress: channel.remoteAddress,
            deflate: agreement.deflate, sendQueueLimit: self.settings.configuration.maxQueuedMessages,
            watermark: self.settings.configuration.sendQueueWatermark)
        let operations = channel.pipeline.syncOperations
        try operations.addHandler(WebSocketChannelHandler(connection: connection, events: self.events, settings: self.settings), position: .after(self))
        let rest = self.received
        self.received = ByteBuffer()
        if rest.readableBytes > 0 { context.fireChannelRead(NIOAny(rest)) }
        operations.removeHandler(context: context, promise: nil)
        self.promise.succeed(connection)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let refusal = self.refusal, !self.done { self.readRefusal(refusal, context: context, closed: true) }
        self.fail(.closed, context: context)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.fail(.connectFailed("\(error)"), context: context)
    }

    private func fail(_ error: WebSocketClientError, context: ChannelHandlerContext) {
        guard !self.done else { return }
        self.done = true
        self.timer?.cancel()
        self.promise.fail(error)
        context.close(promise: nil)
    }
}
