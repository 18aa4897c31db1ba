import Logging
import NIOCore
import NIOHTTP1

/// Asks a connection to finish its current response and close: graceful shutdown sends it
/// to every open connection (upgraded protocols see it too).
public struct ServerQuiesceEvent: Sendable {
    public init() {}
}

/// One HTTP/1.1 connection: assembles requests (bounded), runs the handler for each in
/// order (pipelining), enforces the timeouts, and performs upgrades.
///
/// Everything here runs on the channel's event loop; the handler runs in a task and
/// reaches back through ``ConnectionBridge``.
final class HTTPConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// A request read ahead, or an error answer that must wait for earlier responses.
    private enum Pending {
        case request(Request)
        case reject(HTTPResponseStatus, String)
    }

    private enum Reading {
        case idle
        case body(head: HTTPRequestHead, body: ByteBuffer)
        case discarding  // after a rejected request: nothing more is read
    }

    private enum TimerKind { case idle, head }

    /// Shared by every request without a body: most requests then allocate no body storage.
    private static let emptyBody = ByteBuffer()

    private let handler: any HTTPHandler
    private let configuration: HTTPServerConfiguration
    private let logger: Logger
    private let decoder: any RemovableChannelHandler
    private let encoder: any RemovableChannelHandler
    private let observer: ByteActivityObserver

    private var context: ChannelHandlerContext?
    private var reading = Reading.idle
    private var pending = CircularBuffer<Pending>()
    private var busy = false
    private var upgrading = false
    private var closeAfterResponse = false
    private var readHeld = false
    private var timer: (kind: TimerKind, task: Scheduled<Void>)?
    private var currentRequestIsUpgrade = false

    init(
        handler: any HTTPHandler,
        configuration: HTTPServerConfiguration,
        logger: Logger,
        decoder: any RemovableChannelHandler,
        encoder: any RemovableChannelHandler,
        observer: ByteActivityObserver
    ) {
        self.handler = handler
        self.configuration = configuration
        self.logger = logger
        self.decoder = decoder
        self.encoder = encoder
        self.observer = observer
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.observer.onBytes = { [unowned self] in self.bytesArrived() }
        if context.channel.isActive { self.armTimer(.idle) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.cancelTimer()
        self.observer.onBytes = nil
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        self.armTimer(.idle)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.cancelTimer()
        self.pending.removeAll()
        context.fireChannelInactive()
    }

    // MARK: Reading requests

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (self.unwrapInboundIn(data), self.reading) {
        case (_, .discarding):
            return
        case (.head(let head), .idle):
            self.cancelTimer()
            self.begin(head: head, context: context)
        case (.body(var chunk), .body(let head, var body)):
            guard body.readableBytes + chunk.readableBytes <= self.configuration.maxBodySize else {
                self.reject(.payloadTooLarge, "request body exceeds \(self.configuration.maxBodySize) bytes")
                return
            }
            self.reading = .idle  // drop the reference so the append does not copy
            body.writeBuffer(&chunk)
            self.reading = .body(head: head, body: body)
        case (.end, .body(let head, let body)):
            self.reading = .idle
            var request = Request(
                method: head.method,
                uri: head.uri,
                headers: head.headers,
                version: head.version,
                body: body,
                remoteAddress: context.channel.remoteAddress
            )
            request.pathParameters = [:]
            self.pending.append(.request(request))
            self.processNext()
        default:
            self.reject(.badRequest, "malformed request")
        }
    }

    private func begin(head: HTTPRequestHead, context: ChannelHandlerContext) {
        if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > self.configuration.maxBodySize {
            self.reject(.payloadTooLarge, "request body exceeds \(self.configuration.maxBodySize) bytes")
            return
        }
        if let expect = head.headers.first(name: "expect") {
            guard expect.lowercased() == "100-continue" else {
                self.reject(.expectationFailed, "unsupported expectation")
                return
            }
            // RFC 9110 section 10.1.1: only ask for the body when we will read it now.
            if !self.busy && self.pending.isEmpty {
                context.writeAndFlush(self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
            }
        }
        self.reading = .body(head: head, body: Self.emptyBody)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let parserError = error as? HTTPParserError {
            switch parserError {
            case .headerOverflow:
                self.reject(.requestHeaderFieldsTooLarge, "request head exceeds \(self.configuration.maxHeadSize) bytes")
            default:
                self.reject(.badRequest, "malformed request: \(parserError)")
            }
            return
        }
        if error is ByteToMessageDecoderError {
            self.reading = .discarding
            return
        }
        self.logger.debug("connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    /// Queues an error answer behind earlier responses and stops reading further requests.
    private func reject(_ status: HTTPResponseStatus, _ reason: String) {
        self.reading = .discarding
        self.pending.append(.reject(status, reason))
        self.processNext()
    }

    // MARK: Running requests

    private func processNext() {
        guard let context, !self.busy, !self.upgrading, let next = self.pending.popFirst() else { return }
        switch next {
        case .reject(let status, let reason):
            self.writeFinalError(status, reason, context: context)
        case .request(let request):
            self.busy = true
            self.currentRequestIsUpgrade = request.headers.contains(name: "upgrade")
            if !request.keepAlive || self.currentRequestIsUpgrade {
                // After an upgrade request the parser stops, so no further request can follow.
                self.closeAfterResponse = true
            }
            self.run(request, context: context)
        }
    }

    private func run(_ request: Request, context: ChannelHandlerContext) {
        let eventLoop = context.eventLoop
        let bridge = ConnectionBridge(handler: NIOLoopBound(self, eventLoop: eventLoop), eventLoop: eventLoop)
        let writer = ResponseWriter(connection: bridge, requestMethod: request.method, allocator: context.channel.allocator)
        let handler = self.handler
        let logger = self.logger
        Task {
            var failed = false
            do {
                try await handler.serveHTTP(writer, request)
            } catch {
                logger.error("handler failed", metadata: ["path": "\(request.path)", "error": "\(error)"])
                if writer.headSent {
                    failed = true
                } else {
                    writer.status = .internalServerError
                    writer.headers = ["content-type": "text/plain; charset=utf-8"]
                    try? await writer.write("internal server error\n")
                }
            }
            do {
                try await writer.finish()
            } catch {
                failed = true
            }
            bridge.requestFinished(failed: failed)
        }
    }

    fileprivate func requestFinished(failed: Bool) {
        guard let context, !self.upgrading else { return }
        self.busy = false
        if failed || self.closeAfterResponse {
            context.close(promise: nil)
            return
        }
        if self.pending.isEmpty {
            if case .idle = self.reading { self.armTimer(.idle) }
            self.resumeReading()
        } else {
            self.processNext()
        }
    }

    /// Nil when the connection is gone (or upgraded): the caller fails the write.
    fileprivate func writeResponse(_ parts: [HTTPServerResponsePart], isHeadRequest: Bool) -> EventLoopFuture<Void>? {
        guard let context, !self.upgrading else { return nil }
        let promise = context.eventLoop.makePromise(of: Void.self)
        for (index, part) in parts.enumerated() {
            var part = part
            if case .head(var head) = part {
                if self.closeAfterResponse {
                    head.headers.replaceOrAdd(name: "connection", value: "close")
                } else if head.headers[canonicalForm: "connection"].contains(where: { $0.lowercased() == "close" }) {
                    self.closeAfterResponse = true
                }
                if !head.headers.contains(name: "date") { head.headers.add(name: "date", value: HTTPDate.now) }
                part = .head(head)
            }
            context.write(self.wrapOutboundOut(part), promise: index == parts.count - 1 ? promise : nil)
        }
        context.flush()
        return promise.futureResult
    }

    private func writeFinalError(_ status: HTTPResponseStatus, _ reason: String, context: ChannelHandlerContext) {
        self.cancelTimer()
        self.closeAfterResponse = true
        self.busy = true
        let body = context.channel.allocator.buffer(string: reason + "\n")
        let headers: HTTPHeaders = [
            "content-type": "text/plain; charset=utf-8",
            "content-length": String(body.readableBytes),
            "connection": "close",
            "date": HTTPDate.now,
        ]
        context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(self.wrapOutboundOut(.end(nil))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    // MARK: Upgrades

    fileprivate func upgrade(head: HTTPResponseHead, configure: @escaping @Sendable (any Channel) -> EventLoopFuture<Void>) -> EventLoopFuture<Void>? {
        guard let context, !self.upgrading else { return nil }
        guard self.currentRequestIsUpgrade else {
            return context.eventLoop.makeFailedFuture(UpgradeError.notAnUpgradeRequest)
        }
        self.upgrading = true
        self.cancelTimer()
        let channel = context.channel
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        return context.writeAndFlush(self.wrapOutboundOut(.head(head))).flatMapThrowing {
            bound.value.removeHTTPHandlers()
        }.flatMap {
            configure(channel)
        }.flatMapThrowing {
            // Removing the decoder forwards the bytes it holds to the new protocol's handlers.
            bound.value.removeDecoder(from: channel.pipeline)
        }.flatMapErrorThrowing { error in
            channel.close(promise: nil)
            throw error
        }
    }

    private func removeHTTPHandlers() {
        guard let context else { return }
        let sync = context.pipeline.syncOperations
        sync.removeHandler(self.observer, promise: nil)
        sync.removeHandler(self.encoder, promise: nil)
        sync.removeHandler(context: context, promise: nil)
    }

    private func removeDecoder(from pipeline: ChannelPipeline) {
        pipeline.syncOperations.removeHandler(self.decoder, promise: nil)
    }

    /// Why an upgrade could not happen.
    enum UpgradeError: Error {
        /// The request did not ask for an upgrade, so the parser did not stop after it.
        case notAnUpgradeRequest
    }

    // MARK: Flow control and timers

    func read(context: ChannelHandlerContext) {
        // Read ahead at most one request while another is being answered.
        if self.upgrading || (self.busy && !self.pending.isEmpty) || self.isDiscarding {
            self.readHeld = true
            return
        }
        context.read()
    }

    private var isDiscarding: Bool {
        if case .discarding = self.reading { return true }
        return false
    }

    private func resumeReading() {
        guard self.readHeld, let context else { return }
        self.readHeld = false
        context.read()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ServerQuiesceEvent {
            self.closeAfterResponse = true
            if !self.busy && self.pending.isEmpty {
                context.close(promise: nil)
            }
            return
        }
        if let event = event as? ChannelEvent, event == .inputClosed, !self.busy {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func bytesArrived() {
        if self.timer?.kind == .idle, !self.busy {
            self.armTimer(.head)
        }
    }

    private func armTimer(_ kind: TimerKind) {
        guard let context else { return }
        self.cancelTimer()
        let delay = kind == .idle ? self.configuration.idleTimeout : self.configuration.requestHeadTimeout
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let task = context.eventLoop.scheduleTask(in: delay) { bound.value.timerFired(kind) }
        self.timer = (kind, task)
    }

    private func cancelTimer() {
        self.timer?.task.cancel()
        self.timer = nil
    }

    private func timerFired(_ kind: TimerKind) {
        guard let context else { return }
        self.timer = nil
        switch kind {
        case .idle:
            context.close(promise: nil)
        case .head:
            self.logger.debug("request head timeout", metadata: ["peer": "\(context.channel.remoteAddress.map { "\($0)" } ?? "?")"])
            self.reject(.requestTimeout, "request head not received in time")
        }
    }
}

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

/// The writer's way back to its connection, from any thread.
struct ConnectionBridge: ResponseConnection {
    let handler: NIOLoopBound<HTTPConnectionHandler>
    let eventLoop: any EventLoop

    func write(_ parts: [HTTPServerResponsePart], isHeadRequest: Bool) -> EventLoopFuture<Void> {
        self.eventLoop.flatSubmit {
            self.handler.value.writeResponse(parts, isHeadRequest: isHeadRequest)
                ?? self.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel)
        }
    }

    func upgrade(head: HTTPResponseHead, configure: @escaping @Sendable (any Channel) -> EventLoopFuture<Void>) -> EventLoopFuture<Void> {
        self.eventLoop.flatSubmit {
            self.handler.value.upgrade(head: head, configure: configure)
                ?? self.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel)
        }
    }

    func requestFinished(failed: Bool) {
        self.eventLoop.execute { self.handler.value.requestFinished(failed: failed) }
    }
}
