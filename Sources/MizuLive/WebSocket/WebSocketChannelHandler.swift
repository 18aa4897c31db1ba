import Mizu
import NIOCore

/// The protocol engine of one connection after the upgrade: frames in, messages out, the
/// close handshake, heartbeats, compression and the bounded send queue. Runs on the
/// connection's event loop only.
final class WebSocketChannelHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State {
        case open
        /// We sent a close frame and wait for the peer's.
        case closeSent
        /// The close handshake is over (or failed); only the TCP close remains.
        case closing
        case closed
    }

    let connection: WebSocketConnection
    private let events: WebSocketEvents
    /// Shared by every connection of an endpoint (a reference, not ~130 bytes per connection).
    private let settings: WebSocketSettings
    private var configuration: WebSocketConfiguration { self.settings.configuration }
    private var parser: FrameParser
    private var assembler: MessageAssembler
    private var context: ChannelHandlerContext?
    private var state = State.open
    private var reason: WebSocketCloseReason?
    private var cumulation: ByteBuffer?
    private var needsFlush = false
    private var unflushed = 0
    private var ownDeflater: Deflater?
    private var closeTimer: Scheduled<Void>?
    private var pingTask: RepeatedTask?
    private var pongDeadline: Scheduled<Void>?

    init(connection: WebSocketConnection, events: WebSocketEvents, settings: WebSocketSettings) {
        self.connection = connection
        self.events = events
        self.settings = settings
        self.parser = FrameParser(maxPayloadLength: settings.configuration.maxMessageSize)
        self.assembler = MessageAssembler(maxMessageSize: settings.configuration.maxMessageSize, deflate: connection.deflate)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.connection.handler.value = self
        if let interval = self.configuration.pingInterval {
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            self.pingTask = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
                bound.value.heartbeat()
            }
        }
        self.events.onOpen(self.connection)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.finish()
        self.context = nil
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard self.state == .open || self.state == .closeSent else { return }
        var buffer = self.unwrapInboundIn(data)
        if var pending = self.cumulation {
            self.cumulation = nil
            pending.writeBuffer(&buffer)
            buffer = pending
        }
        self.pongDeadline?.cancel()
        self.pongDeadline = nil
        do {
            while self.state == .open || self.state == .closeSent, let frame = try self.parser.next(&buffer) {
                let action = try self.assembler.receive(frame, allocator: context.channel.allocator)
                self.perform(action, context: context)
            }
        } catch {
            self.fail(error)
            return
        }
        if buffer.readableBytes > 0 {
            buffer.discardReadBytes()
            self.cumulation = buffer
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if self.needsFlush { self.flushNow() }
        context.fireChannelReadComplete()
    }

    private func perform(_ action: MessageAssembler.Action, context: ChannelHandlerContext) {
        switch action {
        case .none, .pong:
            break
        case .message(let message):
            if self.state == .open { self.events.onMessage(self.connection, message) }
        case .ping(let payload):
            if self.state == .open { self.sendControl(.pong, payload) }
        case .close(let code, let text):
            if self.state == .open {
                // RFC 6455 section 5.5.1: answer with a close frame (echoing the code), then close TCP.
                self.reason = .peerClosed(code: code, reason: text)
                self.writeCloseAndShutdown(code: code, reason: "")
            } else {
                self.closeChannel()
            }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            // The peer sent EOF: whatever state we were in, nothing more can arrive.
            self.closeChannel()
            return
        }
        if event is ServerQuiesceEvent {
            self.close(code: 1001, reason: "server shutdown", as: .serverShutdown)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.finish()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.closeChannel()
    }

    // MARK: Outbound

    /// Encodes and sends one data message; `reserved` as for ``enqueue(_:reserved:)``.
    func send(_ message: WebSocketMessage, reserved: Bool = false) {
        guard self.state == .open, let context else {
            if reserved { self.connection.releaseSendSlots(1) }
            return
        }
        var rsv1 = false
        var payload = message.data
        if let deflate = self.connection.deflate, deflate.serverCompresses,
            let settings = self.configuration.compression, payload.readableBytes >= settings.minimumCompressionSize
        {
            let compressed: ByteBuffer?
            if deflate.serverNoContextTakeover {
                compressed = DeflaterCache.current.compress(
                    payload, windowBits: deflate.serverMaxWindowBits, configuration: settings, allocator: context.channel.allocator)
            } else {
                let deflater = self.ownDeflater
                    ?? Deflater(windowBits: deflate.serverMaxWindowBits, level: settings.compressionLevel, memoryLevel: settings.memoryLevel)
                self.ownDeflater = deflater
                compressed = deflater.compress(payload, allocator: context.channel.allocator, keepContext: true)
            }
            if let compressed {
                payload = compressed
                rsv1 = true
            }
        }
        _ = self.enqueue(FrameWriter.frame(opcode: message.opcode, rsv1: rsv1, payload: payload, allocator: context.channel.allocator), reserved: reserved)
    }

    func sendControl(_ opcode: WebSocketOpcode, _ payload: ByteBuffer) {
        guard self.state == .open, let context else { return }
        context.write(self.wrapOutboundOut(FrameWriter.frame(opcode: opcode, payload: payload, allocator: context.channel.allocator)), promise: nil)
        self.scheduleFlush()
    }

    /// Queues an encoded data frame; false when the connection no longer sends. `reserved`
    /// says the caller already took its place in the send queue (and on false it is given back).
    func enqueue(_ frame: ByteBuffer, reserved: Bool) -> Bool {
        guard self.state == .open, let context else {
            if reserved { self.connection.releaseSendSlots(1) }
            return false
        }
        if self.connection.sendQueueLimit != nil {
            guard reserved || self.connection.reserveSendSlot() else {
                self.overflow()
                return false
            }
            self.unflushed += 1
        }
        context.write(self.wrapOutboundOut(frame), promise: nil)
        self.scheduleFlush()
        return true
    }

    /// Stops or restarts reading from the socket (the application is behind on messages).
    func setReading(_ enabled: Bool) {
        guard let context, self.state == .open || self.state == .closeSent else { return }
        context.channel.setOption(.autoRead, value: enabled).whenFailure { _ in }
        if enabled { context.read() }
    }

    /// A slow consumer: its queue is full. A close frame would wait behind that queue, so
    /// the TCP connection is closed at once.
    func overflow() {
        self.reason = self.reason ?? .sendQueueFull
        self.closeChannel()
    }

    private func scheduleFlush() {
        guard !self.needsFlush, let context else { return }
        self.needsFlush = true
        if let delay = self.configuration.writeDelay {
            LoopFlusher.current.schedule(self, after: delay, on: context.eventLoop)
        } else {
            LoopFlusher.current.schedule(self, on: context.eventLoop)
        }
    }

    func flushNow() {
        guard self.needsFlush, let context else { return }
        self.needsFlush = false
        context.flush()
        guard self.unflushed > 0 else { return }
        let batch = self.unflushed
        self.unflushed = 0
        // The common case: the socket took everything, so the batch has left the queue.
        if let buffered = try? context.channel.syncOptions?.getOption(.bufferedWritableBytes), buffered == 0 {
            self.connection.releaseSendSlots(batch)
            return
        }
        // A slow reader: writes complete in order, so when this empty write is done the batch
        // before it is too.
        let promise = context.eventLoop.makePromise(of: Void.self)
        let connection = self.connection
        promise.futureResult.whenComplete { _ in connection.releaseSendSlots(batch) }
        context.writeAndFlush(self.wrapOutboundOut(Self.emptyBuffer), promise: promise)
    }

    private static let emptyBuffer = ByteBuffer()

    // MARK: Closing

    /// Starts the close handshake with `code`; `reason` is what onClose will report.
    func close(code: UInt16, reason text: String, as reason: WebSocketCloseReason) {
        guard self.state == .open, let context else { return }
        self.reason = self.reason ?? reason
        self.state = .closeSent
        let payload = FrameWriter.closePayload(code: code, reason: text, allocator: context.channel.allocator)
        context.write(self.wrapOutboundOut(FrameWriter.frame(opcode: .close, payload: payload, allocator: context.channel.allocator)), promise: nil)
        self.needsFlush = true
        self.flushNow()
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        self.closeTimer = context.eventLoop.scheduleTask(in: self.configuration.closeTimeout) { bound.value.closeChannel() }
    }

    private func fail(_ error: any Error) {
        let protocolError = error as? WebSocketProtocolError ?? .protocolError("\(error)")
        self.reason = self.reason ?? .protocolViolation(code: protocolError.closeCode, reason: protocolError.reason)
        if self.state == .open {
            self.writeCloseAndShutdown(code: protocolError.closeCode, reason: protocolError.reason)
        } else {
            self.closeChannel()
        }
    }

    /// Sends a close frame and closes TCP once it is written (the server closes first,
    /// RFC 6455 section 7.1.1).
    private func writeCloseAndShutdown(code: UInt16?, reason text: String) {
        guard let context else { return }
        self.state = .closing
        self.cumulation = nil
        let payload = FrameWriter.closePayload(code: code, reason: text, allocator: context.channel.allocator)
        let channel = context.channel
        self.needsFlush = false
        context.writeAndFlush(self.wrapOutboundOut(FrameWriter.frame(opcode: .close, payload: payload, allocator: channel.allocator)))
            .whenComplete { _ in channel.close(promise: nil) }
    }

    private func closeChannel() {
        guard self.state != .closed, let context else { return }
        self.state = .closing
        context.close(promise: nil)
    }

    private func heartbeat() {
        guard self.state == .open, let context, self.pongDeadline == nil else { return }
        self.sendControl(.ping, context.channel.allocator.buffer(capacity: 0))
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        self.pongDeadline = context.eventLoop.scheduleTask(in: self.configuration.pongTimeout) {
            bound.value.reason = bound.value.reason ?? .heartbeatTimeout
            bound.value.closeChannel()
        }
    }

    /// Reports the end exactly once.
    private func finish() {
        guard self.state != .closed else { return }
        self.state = .closed
        self.cumulation = nil
        self.closeTimer?.cancel()
        self.pingTask?.cancel()
        self.pongDeadline?.cancel()
        self.ownDeflater = nil
        let reason = self.reason ?? .connectionLost
        self.connection.handler.value = nil
        self.events.onClose(self.connection, reason)
        self.connection.didClose(reason)
    }
}
