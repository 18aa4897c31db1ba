import Logging
import NIOCore
import NIOHTTP1
#if TLS
import NIOTLS
#endif

/// One HTTP/1.1 connection: reads requests from bytes (``HTTPRequestParser``), writes
/// responses as bytes (``HTTPResponseFramer``) and carries out what its
/// ``HTTPConnectionStateMachine`` decides (requests assembled within bounds, answered in order,
/// deadlines, backpressure, upgrades). One handler per connection: on an upgrade it hands the
/// bytes after the request to the new protocol's handlers and leaves.
///
/// Everything here runs on the channel's event loop; the handler runs in a task and
/// reaches back through ``ConnectionBridge``.
final class HTTPConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    private let handler: any HTTPHandler
    private let configuration: HTTPServerConfiguration
    private let logger: Logger
    private var parser: HTTPRequestParser
    /// Read and not yet parsed: a head or chunk line in progress, or, once the input has stopped
    /// (an upgrade or CONNECT request, an error, the last request), what follows it.
    private var inbound = HTTPConnectionHandler.noBytes
    private static let noBytes = ByteBuffer()
    /// Responses leave as bytes written here: no encoder handler to add, or remove on an upgrade.
    private var framer = HTTPResponseFramer()
    /// Before the TLS handler, on TLS connections only: ciphertext counts as a head begun (a
    /// handshake that never completes meets the head deadline). A plain connection needs no
    /// handler of its own for that: ``channelReadComplete(context:)`` tells.
    private let observer: ByteActivityObserver?
    /// A request head was decoded in the current socket read.
    private var headDecodedInThisRead = false

    private var context: ChannelHandlerContext?
    private var machine: HTTPConnectionStateMachine
    /// The input deadline armed, if any, and the one timer that watches it. Re-arming (a
    /// connection does it three times before its first request runs) only moves the deadline
    /// when the timer would fire first anyway: it then finds the deadline later and waits again.
    /// A scheduled task costs three allocations; moving a deadline, none.
    private var inputDeadline: (kind: HTTPConnectionStateMachine.Deadline, due: NIODeadline)?
    private var inputTimer: Scheduled<Void>?
    private var inputTimerFiresAt = NIODeadline.distantPast
    private var stallWatch: WriteStallWatch?
    private let metrics: HTTPMetrics
    /// The connection is TLS: its requests say so (`Request.isSecure`).
    private let secure: Bool

    init(
        handler: any HTTPHandler,
        configuration: HTTPServerConfiguration,
        logger: Logger,
        metrics: HTTPMetrics,
        secure: Bool,
        observer: ByteActivityObserver?
    ) {
        self.handler = handler
        self.configuration = configuration
        self.logger = logger
        self.metrics = metrics
        self.secure = secure
        self.parser = HTTPRequestParser(maxHeadSize: configuration.maxHeadSize, maxBodySize: configuration.maxBodySize)
        self.observer = observer
        self.machine = HTTPConnectionStateMachine(maxBodySize: configuration.maxBodySize, secure: secure)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.observer?.onBytes = { [unowned self] in
            self.perform(self.machine.bytesArrived())
        }
        if context.channel.isActive { self.perform(self.machine.started()) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.cancelTimers()
        self.observer?.onBytes = nil
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        self.perform(self.machine.started())
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.cancelTimers()
        context.fireChannelInactive()
    }

    // MARK: Reading requests

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = self.unwrapInboundIn(data)
        if self.machine.input == .draining {
            self.perform(self.machine.dropped(bytes.readableBytes))
            return
        }
        if self.inbound.readableBytes == 0 {
            self.inbound = bytes
        } else {
            // What is left unparsed is bounded (a head, a chunk line, one held read): keep only it.
            self.inbound.discardReadBytes()
            self.inbound.writeBuffer(&bytes)
        }
        self.parseInput(context)
    }

    /// Hands the parser's events to the machine until the bytes run out or the input stops:
    /// after an upgrade or CONNECT request, an error or the last request, the bytes are not
    /// HTTP's; they wait (reads are held) for the new protocol's handlers, or for nothing.
    private func parseInput(_ context: ChannelHandlerContext) {
        while self.context != nil, self.machine.parsesInput, let event = self.parser.next(&self.inbound) {
            switch event {
            case .head(let head):
                self.headDecodedInThisRead = true
                self.perform(self.machine.receivedHead(head))
            case .body(var chunk):
                self.perform(self.machine.receivedBodyPart(&chunk))
            case .end:
                self.perform(self.machine.receivedEnd(remoteAddress: context.channel.remoteAddress, secure: self.secure))
            case .refused(let status, let reason):
                self.perform(self.machine.reject(status, reason))
            }
        }
        // All parsed: the read's buffer goes back to the channel for its next read.
        if self.context != nil, self.inbound.readableBytes == 0 { self.inbound = Self.noBytes }
    }

    /// Bytes were read. Unless they completed a head, a head has begun (or a body goes on):
    /// its deadline runs from now, even while the parser still waits for the rest.
    func channelReadComplete(context: ChannelHandlerContext) {
        if self.observer == nil, !self.headDecodedInThisRead { self.perform(self.machine.bytesArrived()) }
        self.headDecodedInThisRead = false
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.logger.debug("connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    // MARK: Running requests

    /// Carries out what the state machine decided, in its order.
    private func perform(_ actions: HTTPConnectionStateMachine.Actions) {
        guard let context else { return }
        if let version = actions.sendContinue {
            let line: StaticString = version.minor == 0 ? "HTTP/1.0 100 Continue\r\n\r\n" : "HTTP/1.1 100 Continue\r\n\r\n"
            context.writeAndFlush(self.wrapOutboundOut(.byteBuffer(context.channel.allocator.buffer(staticString: line))), promise: nil)
        }
        if actions.close {
            context.close(promise: nil)
            return
        }
        if case .finalError(let status, let reason) = actions.start { self.writeFinalError(status, reason, context: context) }
        if actions.closeOutput { context.close(mode: .output, promise: nil) }
        if actions.read { context.read() }
        switch actions.deadline {
        case .keep: break
        case .cancel:
            // The timer, if any, fires and finds nothing armed (it is cancelled for real when
            // the connection ends or leaves HTTP).
            self.inputDeadline = nil
        case .arm(let deadline):
            self.armInputTimer(deadline, context: context)
        }
        // Last: the handler starts running here and now, and may answer, finish (performing
        // the machine's next actions, nested) or upgrade (this handler then leaves the
        // pipeline) before `run` returns. Nothing of these actions may be left for after it.
        if case .request(let request, _) = actions.start { self.run(request, context: context) }
    }

    private func run(_ request: Request, context: ChannelHandlerContext) {
        let eventLoop = context.eventLoop
        let bridge = ConnectionBridge(handler: NIOLoopBound(self, eventLoop: eventLoop), eventLoop: eventLoop)
        let writer = ResponseWriter(connection: bridge, requestMethod: request.method, allocator: context.channel.allocator)
        HTTPRequestRunner(handler: self.handler, logger: self.logger, metrics: self.metrics).start(request, writer: writer, on: eventLoop) {
            bridge.requestFinished(failed: $0)
        }
    }

    /// The response cannot be completed: closed now (its handler's end, when it comes, finds
    /// the connection gone).
    func cutResponse() {
        self.context?.close(promise: nil)
    }

    func requestFinished(failed: Bool) {
        guard self.context != nil else { return }
        self.perform(self.machine.responseFinished(failed: failed))
    }

    /// Nil when the connection is gone (or upgraded): the caller fails the write.
    func writeResponse(_ parts: [HTTPServerResponsePart], isHeadRequest: Bool) -> EventLoopFuture<Void>? {
        guard let context, !self.machine.upgrading else { return nil }
        let allocator = context.channel.allocator
        // The bytes in order; small parts join the head's buffer (one write of one buffer).
        var pending: ByteBuffer?
        var out: [IOData] = []
        func append(_ part: IOData) {
            if case .byteBuffer(var bytes) = part, pending != nil, bytes.readableBytes <= HTTPResponseFramer.coalescedBodyLimit {
                pending!.writeBuffer(&bytes)
                return
            }
            if let buffered = pending { out.append(.byteBuffer(buffered)) }
            pending = nil
            if case .byteBuffer(let bytes) = part { pending = bytes } else { out.append(part) }
        }
        for part in parts {
            switch part {
            case .head(var head):
                let asked = head.headers[canonicalForm: "connection"].contains { $0.lowercased() == "close" }
                if self.machine.responseHeadLeaving(handlerAskedToClose: asked) == .close {
                    head.headers.replaceOrAdd(name: "connection", value: "close")
                }
                if !head.headers.contains(name: "date") { head.headers.add(name: "date", value: HTTPDate.now) }
                if let buffered = pending { out.append(.byteBuffer(buffered)) }
                pending = self.framer.head(head, headRequest: isHeadRequest, allocator: allocator)
            case .body(let body):
                for bytes in self.framer.body(body, allocator: allocator) { append(bytes) }
            case .end:
                if let end = self.framer.end(allocator: allocator) { append(.byteBuffer(end)) }
            }
        }
        if let buffered = pending { out.append(.byteBuffer(buffered)) }
        let promise = context.eventLoop.makePromise(of: Void.self)
        // Nothing to send (the end of a body with a known length) still goes through as an empty
        // write: its promise then completes after the earlier writes, which a close waits for.
        if out.isEmpty { out.append(.byteBuffer(ByteBuffer())) }
        for (index, part) in out.enumerated() {
            context.write(self.wrapOutboundOut(part), promise: index == out.count - 1 ? promise : nil)
        }
        context.flush()
        // What the kernel would not take waits on the peer: a peer that never reads must not
        // hold it (and this connection) forever, even below the high water mark.
        if WriteStallWatch.hasPendingOutput(context.channel) { self.watchOutput(context) }
        return promise.futureResult
    }

    private func writeFinalError(_ status: HTTPResponseStatus, _ reason: String, context: ChannelHandlerContext) {
        let body = reason + "\n"
        let headers: HTTPHeaders = [
            "content-type": "text/plain; charset=utf-8",
            "content-length": String(body.utf8.count),
            "connection": "close",
            "date": HTTPDate.now,
        ]
        var framer = HTTPResponseFramer()
        var bytes = framer.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers), headRequest: false, allocator: context.channel.allocator)
        bytes.writeString(body)
        // Once written, the output closes and the input drains (or, on TLS, all closes); a peer
        // that never reads meets the write-stall deadline.
        let channel = context.channel
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.writeAndFlush(self.wrapOutboundOut(.byteBuffer(bytes))).whenComplete { result in
            guard case .success = result else { return channel.close(promise: nil) }
            bound.value.finalAnswerWritten()
        }
    }

    private func finalAnswerWritten() {
        guard let context else { return }
        // A TLS output closes with TLS' own alert, which the handler there does not do alone.
        self.perform(self.machine.finalAnswerWritten(canHalfClose: !self.secure && context.channel.isActive))
    }

    // MARK: Upgrades

    func upgrade(head: HTTPResponseHead, configure: @escaping @Sendable (any Channel) -> EventLoopFuture<Void>) -> EventLoopFuture<Void>? {
        guard let context, !self.machine.upgrading else { return nil }
        guard case .switchProtocols(let readWasHeld) = self.machine.upgradeStarted() else {
            return context.eventLoop.makeFailedFuture(UpgradeError.notAnUpgradeRequest)
        }
        self.cancelTimers()
        let channel = context.channel
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        // Two callbacks, not a chain of four futures: every connection that upgrades runs this.
        let upgraded = context.eventLoop.makePromise(of: Void.self)
        let written = context.eventLoop.makePromise(of: Void.self)
        let bytes = self.framer.head(head, headRequest: false, allocator: context.channel.allocator)
        context.writeAndFlush(self.wrapOutboundOut(.byteBuffer(bytes)), promise: written)
        written.futureResult.whenComplete { result in
            guard case .success = result else { return Self.abandonUpgrade(channel, upgraded, result) }
            configure(channel).whenComplete { result in
                guard case .success = result else { return Self.abandonUpgrade(channel, upgraded, result) }
                bound.value.handOver()
                // Reading was held while the handler decided; the new protocol reads from here on.
                if readWasHeld { channel.read() }
                upgraded.succeed(())
            }
        }
        return upgraded.futureResult
    }

    private static func abandonUpgrade(_ channel: any Channel, _ upgraded: EventLoopPromise<Void>, _ result: Result<Void, any Error>) {
        channel.close(promise: nil)
        upgraded.completeWith(result)
    }

    /// The new protocol's handlers are in place (after this one): they get the bytes that came
    /// after the request, and this handler (and a TLS connection's observer) leaves.
    private func handOver() {
        guard let context else { return }
        let leftover = self.inbound
        self.inbound = Self.noBytes
        let sync = context.pipeline.syncOperations
        if let observer = self.observer { sync.removeHandler(observer, promise: nil) }
        if leftover.readableBytes > 0 {
            context.fireChannelRead(self.wrapInboundOut(leftover))
            context.fireChannelReadComplete()
        }
        sync.removeHandler(context: context, promise: nil)
    }

    /// Why an upgrade could not happen.
    enum UpgradeError: Error {
        /// The request did not ask for an upgrade, so the parser did not stop after it.
        case notAnUpgradeRequest
    }

    // MARK: Flow control and timers

    func read(context: ChannelHandlerContext) {
        // While the new protocol's handlers are set up behind this one, their reads are theirs.
        if self.machine.upgrading {
            context.read()
            return
        }
        self.perform(self.machine.readAsked())
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        if writable {
            self.stallWatch?.cancel()
            self.stallWatch = nil
        } else {
            self.watchOutput(context)
        }
        self.perform(self.machine.writabilityChanged(writable))
        context.fireChannelWritabilityChanged()
    }

    /// The peer must take some of our output within writeStallTimeout, or be dropped.
    private func watchOutput(_ context: ChannelHandlerContext) {
        guard context.channel.isActive, self.stallWatch?.isWatching != true else { return }
        let channel = context.channel
        let logger = self.logger
        self.stallWatch = WriteStallWatch(channel: channel, timeout: self.configuration.writeStallTimeout) {
            logger.debug("write stalled", metadata: ["peer": "\(channel.remoteAddress.map { "\($0)" } ?? "?")"])
            channel.closeDroppingUnsentOutput()
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        #if TLS
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event {
            self.machine.tlsHandshakeCompleted()
        }
        #endif
        // Set up behind this one, the new protocol's handlers get every event from here on.
        if self.machine.upgrading {
            context.fireUserInboundEventTriggered(event)
            return
        }
        if event is ServerQuiesceEvent {
            self.perform(self.machine.quiesce())
            return
        }
        if let event = event as? ChannelEvent, event == .inputClosed {
            self.perform(self.machine.inputClosed())
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func armInputTimer(_ deadline: HTTPConnectionStateMachine.Deadline, context: ChannelHandlerContext) {
        let delay: TimeAmount
        switch deadline {
        case .idle: delay = self.configuration.idleTimeout
        case .head: delay = self.configuration.requestHeadTimeout
        case .body: delay = self.configuration.requestBodyTimeout
        case .linger: delay = self.configuration.lingeringCloseTimeout
        }
        // The loop's clock: an embedded loop's is virtual, and its timers follow it.
        let now = context.eventLoop.now
        let due = now + delay
        self.inputDeadline = (deadline, due)
        if self.inputTimer != nil, self.inputTimerFiresAt <= due { return }
        self.inputTimer?.cancel()
        // A new timer fires at the earliest any deadline armed from now could fall (each is now
        // plus one of the timeouts): the connection's next arms only move the deadline, never the
        // timer. A connection that arms idle, then head, then upgrades schedules one task, not two;
        // the price is one early wake-up of a connection idle past the shortest timeout.
        self.scheduleInputTimer(at: min(due, now + self.shortestInputTimeout), context: context)
    }

    private var shortestInputTimeout: TimeAmount {
        min(self.configuration.idleTimeout, self.configuration.requestHeadTimeout, self.configuration.requestBodyTimeout)
    }

    private func scheduleInputTimer(at due: NIODeadline, context: ChannelHandlerContext) {
        self.inputTimerFiresAt = due
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        self.inputTimer = context.eventLoop.scheduleTask(deadline: due) { bound.value.inputTimerFired() }
    }

    private func inputTimerFired() {
        self.inputTimer = nil
        guard let context, let armed = self.inputDeadline else { return }
        if armed.due > context.eventLoop.now {
            self.scheduleInputTimer(at: armed.due, context: context)
            return
        }
        self.inputDeadline = nil
        self.inputDeadlineExpired(armed.kind)
    }

    private func inputDeadlineExpired(_ deadline: HTTPConnectionStateMachine.Deadline) {
        guard let context else { return }
        let peer = context.channel.remoteAddress.map { "\($0)" } ?? "?"
        if self.machine.awaitingTLSHandshake {
            self.logger.debug("TLS handshake timeout", metadata: ["peer": "\(peer)"])
        } else if deadline == .head || deadline == .body {
            self.logger.debug("request timeout", metadata: ["peer": "\(peer)", "waiting": "\(deadline)"])
        }
        self.perform(self.machine.deadlineExpired(deadline))
    }

    private func cancelTimers() {
        self.inputDeadline = nil
        self.inputTimer?.cancel()
        self.inputTimer = nil
        self.stallWatch?.cancel()
        self.stallWatch = nil
    }
}
