import MizuHTTP
import NIOCore

/// The protocol engine of one connection after the upgrade: frames in, messages out, the
/// close handshake, heartbeats, compression and the bounded send queue. Runs on the
/// connection's event loop only.
final class WebSocketChannelHandler: ChannelDuplexHandler, RemovableChannelHandler, HeartbeatMember {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let connection: WebSocketConnection
    private let events: WebSocketEvents
    /// Shared by every connection of an endpoint (a reference, not ~130 bytes per connection).
    private let settings: WebSocketSettings
    private var configuration: WebSocketConfiguration { self.settings.configuration }
    private var parser: FrameParser
    // The one-byte fields sit right after the parser, in its tail padding: declared elsewhere,
    // each took a word of padding (the handler is kept per connection).
    /// Whether nothing between this handler and the socket transforms outbound bytes (no TLS):
    /// only then may writes skip the pipeline. The server's upgrader knows; false otherwise.
    private let writesStraightToChannel: Bool
    /// Whether `coalesced` is this connection's own batch (appended to in place), not a
    /// frame held as it came (possibly shared by every subscriber: never appended to).
    private var coalescedIsBatch = false
    private var needsFlush = false
    private var readHeld = false
    private var assembler: MessageAssembler
    private var context: ChannelHandlerContext?
    /// With `writesStraightToChannel`, while added: data frames and flushes go to the channel
    /// itself, past the pipeline (no context, pipeline or head handler touched per delivery).
    private var core: (any ChannelCore)?
    /// With `core`: the data frames written since the last flush, not yet handed to the
    /// channel. The first is the caller's buffer as is (a broadcast's shared frame: no copy);
    /// small ones after it are copied into a batch of this connection's own, so a busy tick
    /// costs the channel one write, not one per frame.
    private var coalesced: ByteBuffer?
    private var machine = WebSocketConnectionStateMachine()
    private var unflushed = 0
    private var heartbeatSeat: (wheel: HeartbeatWheel<WebSocketChannelHandler>, position: HeartbeatWheel<WebSocketChannelHandler>.Position)?
    /// With `idleTimeout`: when the last bytes arrived (``idleCheck`` compares it).
    private var lastInbound = NIODeadline.uptimeNanoseconds(0)
    /// The rarely set state below, out of line; nil while all of it is.
    private var extras: WebSocketHandlerExtras?

    /// A frame's first bytes, waiting for the rest.
    private var cumulation: ByteBuffer? {
        get { self.extras?.cumulation }
        set { self.updateExtras(newValue != nil) { $0.cumulation = newValue } }
    }
    /// The pong owed while the peer leaves our output unread: RFC 6455 section 5.5.3 lets us
    /// answer only the latest ping, so a ping flood from a peer that does not read costs one
    /// pong, not one per ping. A peer that reads gets every pong, in order.
    private var pendingPong: ByteBuffer? {
        get { self.extras?.pendingPong }
        set { self.updateExtras(newValue != nil) { $0.pendingPong = newValue } }
    }
    private var ownDeflater: Deflater? {
        get { self.extras?.ownDeflater }
        set { self.updateExtras(newValue != nil) { $0.ownDeflater = newValue } }
    }
    private var messageDeadline: Scheduled<Void>? {
        get { self.extras?.messageDeadline }
        set { self.updateExtras(newValue != nil) { $0.messageDeadline = newValue } }
    }
    private var closeTimer: Scheduled<Void>? {
        get { self.extras?.closeTimer }
        set { self.updateExtras(newValue != nil) { $0.closeTimer = newValue } }
    }
    private var stallWatch: WriteStallWatch? {
        get { self.extras?.stallWatch }
        set { self.updateExtras(newValue != nil) { $0.stallWatch = newValue } }
    }
    private var pongDeadline: Scheduled<Void>? {
        get { self.extras?.pongDeadline }
        set { self.updateExtras(newValue != nil) { $0.pongDeadline = newValue } }
    }
    private var idleCheck: Scheduled<Void>? {
        get { self.extras?.idleCheck }
        set { self.updateExtras(newValue != nil) { $0.idleCheck = newValue } }
    }

    /// Sets a field of the extras: makes the box when a value arrives, drops it when the last
    /// one leaves, and does nothing for a nil written where there is no box.
    private func updateExtras(_ storesValue: Bool, _ update: (WebSocketHandlerExtras) -> Void) {
        if let extras = self.extras {
            update(extras)
            if !storesValue, extras.isEmpty { self.extras = nil }
        } else if storesValue {
            let extras = WebSocketHandlerExtras()
            update(extras)
            self.extras = extras
        }
    }

    init(connection: WebSocketConnection, events: WebSocketEvents, settings: WebSocketSettings, writesStraightToChannel: Bool = false) {
        self.connection = connection
        self.writesStraightToChannel = writesStraightToChannel
        self.events = events
        self.settings = settings
        self.parser = FrameParser(maxPayloadLength: settings.configuration.messageSizeLimit, role: settings.role)
        self.assembler = MessageAssembler(maxMessageSize: settings.configuration.messageSizeLimit, deflate: connection.deflate, role: settings.role)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if self.writesStraightToChannel { self.core = context.channel._channelCore }
        self.connection.handler = self
        if let interval = self.configuration.pingInterval {
            self.heartbeatSeat = HeartbeatWheels.join(self, interval: interval, on: context.eventLoop)
        }
        if let idle = self.configuration.idleTimeout {
            self.lastInbound = .now()
            self.scheduleIdleCheck(at: self.lastInbound + idle, context: context)
        }
        if !context.channel.isWritable { self.channelWritabilityChanged(context: context) }
        self.events.onOpen(self.connection)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.finish()
        self.context = nil
        self.core = nil
        self.coalesced = nil
        self.coalescedIsBatch = false
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard self.machine.receives else { return }
        var buffer = self.unwrapInboundIn(data)
        if var pending = self.cumulation {
            self.cumulation = nil
            pending.writeBuffer(&buffer)
            buffer = pending
        }
        // Any frame is a sign of life.
        self.pongDeadline?.cancel()
        self.pongDeadline = nil
        if self.idleCheck != nil { self.lastInbound = .now() }
        do {
            while self.machine.receives, let frame = try self.parser.next(&buffer) {
                let action = try self.assembler.receive(frame, allocator: context.channel.allocator)
                // A message begun gets its deadline; one ended drops it (frame by frame: the
                // next message's deadline starts with its own first fragment).
                if self.configuration.messageTimeout != nil, self.assembler.isAssembling != (self.messageDeadline != nil) {
                    self.watchMessage(context: context)
                }
                self.perform(action)
            }
        } catch let violation {
            self.carryOut(self.machine.protocolViolation(code: violation.closeCode, reason: violation.reason))
            return
        }
        if buffer.readableBytes > 0, self.machine.receives {
            buffer.discardReadBytes()
            self.cumulation = buffer
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if self.needsFlush { self.flushNow() }
        context.fireChannelReadComplete()
    }

    private func perform(_ action: MessageAssembler.Action) {
        switch action {
        case .none, .pong:
            break
        case .message(let message):
            if self.machine.sends { self.events.onMessage(self.connection, message) }
        case .ping(let payload):
            guard self.machine.sends else { return }
            self.pendingPong = payload
            if self.machine.writable { self.sendPendingPong() }
        case .close(let code, let text):
            self.pendingPong = nil
            self.carryOut(self.machine.peerSentClose(code: code, reason: text))
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            // The peer sent EOF: whatever state we were in, nothing more can arrive.
            self.carryOut(self.machine.abort(nil))
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
        self.carryOut(self.machine.abort(nil))
    }

    // MARK: Flow control

    func read(context: ChannelHandlerContext) {
        guard self.machine.mayRead || self.machine.drainsInput else {
            self.readHeld = true
            return
        }
        context.read()
    }

    private func resumeReadingIfAllowed() {
        guard self.readHeld, self.machine.mayRead, let context else { return }
        self.readHeld = false
        context.read()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        self.machine.writabilityChanged(writable)
        if writable {
            self.stallWatch?.cancel()
            self.stallWatch = nil
            self.sendPendingPong()
            self.settleHeldOutput()
            self.resumeReadingIfAllowed()
        } else {
            self.watchOutput(context)
        }
        context.fireChannelWritabilityChanged()
    }

    /// The peer must take some of our output within writeStallTimeout, or be dropped: watched
    /// while the channel is unwritable and whenever a flush left bytes the kernel would not
    /// take (below the high water mark a channel stays writable while its peer reads nothing).
    private func watchOutput(_ context: ChannelHandlerContext) {
        // A flush can come after the connection closed (and its watch was cancelled): nothing
        // to watch then. Weak: a watch must never outlive the handler it reports to.
        guard context.channel.isActive, self.stallWatch?.isWatching != true else { return }
        self.stallWatch = WriteStallWatch(channel: context.channel, timeout: self.configuration.writeStallTimeout) { [weak self] in
            guard let self else { return }
            self.carryOut(self.machine.abort(.writeTimeout))
        }
    }

    private func sendPendingPong() {
        guard let pong = self.pendingPong else { return }
        self.pendingPong = nil
        self.sendControl(.pong, pong)
    }

    /// Stops or restarts reading from the socket (the application is behind on messages).
    func setReading(_ enabled: Bool) {
        self.machine.applicationReading(enabled)
        if enabled { self.resumeReadingIfAllowed() }
    }

    // MARK: Outbound

    /// Encodes and sends one data message; `reserved` as for ``enqueue(_:reserved:)``.
    func send(_ message: WebSocketMessage, reserved: Bool = false) {
        guard self.machine.sends, let context else {
            if reserved { self.connection.releaseSendSlots(1) }
            return
        }
        var rsv1 = false
        var payload = message.data
        if let deflate = self.connection.deflate?.sending(self.settings.role), deflate.compresses,
            let settings = self.configuration.compression, payload.readableBytes >= settings.minimumCompressionSize
        {
            let compressed: ByteBuffer?
            if deflate.noContextTakeover {
                compressed = DeflaterCache.current.compress(
                    payload, windowBits: deflate.windowBits, configuration: settings, allocator: context.channel.allocator)
            } else {
                let deflater = self.ownDeflater
                    ?? Deflater(windowBits: deflate.windowBits, level: settings.compressionLevel, memoryLevel: settings.memoryLevel)
                self.ownDeflater = deflater
                compressed = deflater.compress(payload, allocator: context.channel.allocator, keepContext: true)
            }
            if let compressed {
                payload = compressed
                rsv1 = true
            }
        }
        _ = self.enqueue(self.frame(message.opcode, rsv1: rsv1, payload, allocator: context.channel.allocator), reserved: reserved)
    }

    /// One frame as this end writes it: a client's masked with a fresh random key, a server's never.
    private func frame(_ opcode: WebSocketOpcode, rsv1: Bool = false, _ payload: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        switch self.settings.role {
        case .server:
            return FrameWriter.frame(opcode: opcode, rsv1: rsv1, payload: payload, allocator: allocator)
        case .client:
            var random = SystemRandomNumberGenerator()
            return FrameWriter.maskedFrame(opcode: opcode, rsv1: rsv1, payload: payload, key: random.next(), allocator: allocator)
        }
    }

    func sendControl(_ opcode: WebSocketOpcode, _ payload: ByteBuffer) {
        guard self.machine.sends, let context else { return }
        self.writeCoalesced()
        context.write(self.wrapOutboundOut(self.frame(opcode, payload, allocator: context.channel.allocator)), promise: nil)
        self.scheduleFlush()
    }

    /// Queues an encoded data frame; false when the connection no longer sends. `reserved`
    /// says the caller already took its place in the send queue (and on false it is given back).
    func enqueue(_ frame: borrowing ByteBuffer, reserved: Bool) -> Bool {
        // The fan-out's inner loop: no reference is taken that the path does not use (each
        // costs a retain and a release per delivery on objects that are cold at low rates).
        guard self.machine.sends, self.context != nil else {
            if reserved { self.connection.releaseSendSlots(1) }
            return false
        }
        var burst = false
        if let limit = self.connection.sendQueueLimit {
            guard reserved || self.connection.reserveSendSlot() else {
                self.overflow()
                return false
            }
            self.unflushed += 1
            burst = self.unflushed > limit >> 1
        }
        self.writeFrame(frame)
        self.scheduleFlush()
        // The queue counts what the socket has not taken, not what one tick produced: a burst
        // (a client's pipelined commands answered at once) is flushed as it grows, so it
        // frees its places whenever the peer keeps up (while it does not, the socket is not
        // writable and the burst stays counted).
        if burst, self.context?.channel.isWritable == true { self.flushNow() }
        return true
    }

    /// Borrowed: the shared frame is retained only where it is kept.
    private func writeFrame(_ frame: borrowing ByteBuffer) {
        guard self.core != nil else {
            self.context?.write(self.wrapOutboundOut(copy frame), promise: nil)
            return
        }
        // The held buffer is read through the property only: a local copy of it would be a
        // second reference, and appending would then copy the whole batch (copy on write).
        guard let heldBytes = self.coalesced?.readableBytes else {
            self.coalesced = copy frame
            return
        }
        // Copying a small frame costs less than a write of its own through NIO (a pending
        // write, its lifecycle checks and retains); a large one is handed over as it is.
        let small = frame.readableBytes <= Self.coalescedFrameLimit
        if self.coalescedIsBatch {
            if small, heldBytes + frame.readableBytes <= Self.coalescedBatchLimit {
                self.coalesced!.writeImmutableBuffer(frame)
                return
            }
        } else if small, heldBytes <= Self.coalescedFrameLimit {
            // The second frame of a tick: more tend to follow, so the batch is made with room
            // for several at once (not grown by doubling), and the held frame, which may be a
            // broadcast's shared buffer, is copied into it, never appended to.
            var batch = Self.batchAllocator.buffer(capacity: Self.coalescedFirstCapacity)
            batch.writeImmutableBuffer(self.coalesced!)
            batch.writeImmutableBuffer(frame)
            self.coalesced = batch
            self.coalescedIsBatch = true
            return
        }
        self.writeCoalesced()
        self.coalesced = copy frame
    }

    /// A tick's batch starts with room for this much.
    static let coalescedFirstCapacity = 2048
    private static let batchAllocator = ByteBufferAllocator()
    /// Frames up to this size are copied into the tick's batch.
    static let coalescedFrameLimit = 1024
    /// A batch is handed to the channel once it would grow past this.
    static let coalescedBatchLimit = 16 * 1024

    /// Hands the frames held since the last flush to the channel, the same call the head
    /// handler would make: whatever goes through the pipeline (control frames, the close)
    /// comes after this, so frames reach the channel in the order they were written.
    private func writeCoalesced() {
        guard let batch = self.coalesced else { return }
        self.coalesced = nil
        self.coalescedIsBatch = false
        self.core?.write0(NIOAny(batch), promise: nil)
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
        if let core = self.core {
            self.writeCoalesced()
            core.flush0()
        } else {
            context.flush()
        }
        let byteLimit = self.configuration.maxQueuedBytes
        guard self.unflushed > 0 || byteLimit != nil || self.settings.outputLedger != nil else { return }
        let batch = self.unflushed
        self.unflushed = 0
        let buffered = try? context.channel.syncOptions?.getOption(.bufferedWritableBytes)
        // The common case: the socket took everything, so the batch has left the queue.
        if buffered == 0 {
            self.connection.releaseSendSlots(batch)
            _ = self.reportHeldOutput(0)
            return
        }
        // What the peer leaves unread is held here: past either bound it is a slow consumer.
        if let buffered, (byteLimit.map { buffered > $0 } ?? false) || !self.reportHeldOutput(buffered) {
            self.connection.releaseSendSlots(batch)
            return self.overflow()
        }
        guard batch > 0 else { return }
        self.watchOutput(context)
        // A slow reader: writes complete in order, so when this empty write is done the batch
        // before it is too.
        let promise = context.eventLoop.makePromise(of: Void.self)
        let connection = self.connection
        let watch = NIOLoopBound(self.stallWatch, eventLoop: context.eventLoop)
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        promise.futureResult.whenComplete { _ in
            connection.releaseSendSlots(batch)
            watch.value?.noteProgress()  // on the loop: the batch reached the kernel
            handler.value.settleHeldOutput()
        }
        context.writeAndFlush(self.wrapOutboundOut(Self.emptyBuffer), promise: promise)
    }

    private static let emptyBuffer = ByteBuffer()

    /// Tells the endpoint's per-client ledger what this connection now holds unread; false
    /// when this connection is to close for it (its client is past
    /// ``WebSocketConfiguration/maxQueuedBytesPerClient`` and it holds the most). Nothing to
    /// tell (the usual case) costs a load and a comparison.
    private func reportHeldOutput(_ bytes: Int) -> Bool {
        // Once closed, the connection holds nothing: only the final zero is told.
        guard let ledger = self.settings.outputLedger, bytes == 0 || self.machine.state != .closed else { return true }
        guard bytes != (self.extras?.heldOutput ?? 0) else { return true }
        self.updateExtras(bytes != 0) { $0.heldOutput = bytes }
        var keepsOpen = true
        for victim in ledger.report(self.connection, of: ClientAddressKey(self.connection.remoteAddress), holds: bytes) {
            if victim === self.connection {
                keepsOpen = false
            } else {
                // On its own loop's next turn: never inside this connection's flush.
                victim.eventLoop.execute { victim.closeAsSlowConsumer() }
            }
        }
        return keepsOpen
    }

    /// After a batch reached the kernel: what the peer took meanwhile leaves the ledger.
    private func settleHeldOutput() {
        guard (self.extras?.heldOutput ?? 0) != 0, let context,
            let buffered = try? context.channel.syncOptions?.getOption(.bufferedWritableBytes)
        else { return }
        if !self.reportHeldOutput(buffered) { self.overflow() }
    }

    // MARK: Closing

    /// Starts the close handshake with `code`; `reason` is what onClose will report.
    func close(code: UInt16, reason text: String, as reason: WebSocketCloseReason) {
        self.carryOut(self.machine.closeRequested(code: code, reason: text, as: reason))
    }

    /// A slow consumer: its queue is full. A close frame would wait behind that queue, so
    /// the TCP connection is closed at once.
    func overflow() {
        self.carryOut(self.machine.abort(.sendQueueFull))
    }

    private func carryOut(_ action: WebSocketConnectionStateMachine.CloseAction) {
        guard let context else { return }
        switch action {
        case .none:
            return
        case .closeTCP:
            self.cumulation = nil
            // Handed over, not dropped here: output still queued is what makes the close a
            // reset (`closeDroppingUnsentOutput`), which drops it.
            self.writeCoalesced()
            context.channel.closeDroppingUnsentOutput()
        case .sendClose(let code, let text, let thenCloseTCP):
            let allocator = context.channel.allocator
            let frame = self.frame(.close, FrameWriter.closePayload(code: code, reason: text, allocator: allocator), allocator: allocator)
            self.writeCoalesced()
            self.needsFlush = false
            if thenCloseTCP {
                self.cumulation = nil
                let channel = context.channel
                context.writeAndFlush(self.wrapOutboundOut(frame)).whenComplete { _ in channel.close(promise: nil) }
            } else {
                context.write(self.wrapOutboundOut(frame), promise: nil)
                self.needsFlush = true
                self.flushNow()
            }
            // Every close we start ends within closeTimeout, even if the peer never reads
            // (the close frame is never written) or never answers.
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            self.closeTimer = context.eventLoop.scheduleTask(in: self.configuration.closeTimeout) {
                bound.value.carryOut(bound.value.machine.abort(nil))
            }
        }
    }

    func heartbeatMoved(to position: HeartbeatWheel<WebSocketChannelHandler>.Position) {
        self.heartbeatSeat?.position = position
    }

    /// Called by the loop's ``HeartbeatWheel`` once per ping interval.
    func heartbeat() {
        guard self.machine.sends, let context, self.pongDeadline == nil else { return }
        self.sendControl(.ping, context.channel.allocator.buffer(capacity: 0))
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        self.pongDeadline = context.eventLoop.scheduleTask(in: self.configuration.pongTimeout) {
            bound.value.carryOut(bound.value.machine.abort(.heartbeatTimeout))
        }
    }

    /// Arms the deadline of a message begun, or drops it once the message has ended.
    private func watchMessage(context: ChannelHandlerContext) {
        self.messageDeadline?.cancel()
        self.messageDeadline = nil
        guard self.assembler.isAssembling, self.machine.receives, let timeout = self.configuration.messageTimeout else { return }
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        self.messageDeadline = context.eventLoop.scheduleTask(in: timeout) {
            let handler = bound.value
            handler.messageDeadline = nil
            handler.carryOut(handler.machine.protocolViolation(code: 1008, reason: "message not completed in time"))
        }
    }

    /// One timer per connection, moved on only when it fires (not per read): a peer silent for
    /// `idleTimeout` is found within that time, at the cost of one clock read per read.
    private func scheduleIdleCheck(at deadline: NIODeadline, context: ChannelHandlerContext) {
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        self.idleCheck = context.eventLoop.scheduleTask(deadline: deadline) {
            let handler = bound.value
            guard let idle = handler.configuration.idleTimeout, let context = handler.context, handler.idleCheck != nil else { return }
            let due = handler.lastInbound + idle
            if due <= .now() {
                handler.idleCheck = nil
                handler.carryOut(handler.machine.abort(.heartbeatTimeout))
            } else {
                handler.scheduleIdleCheck(at: due, context: context)
            }
        }
    }

    /// Reports the end exactly once.
    private func finish() {
        // Whatever the state machine says: a wheel entry left behind would keep this handler alive.
        if let seat = self.heartbeatSeat {
            self.heartbeatSeat = nil
            seat.wheel.leave(at: seat.position)
        }
        guard let reason = self.machine.channelClosed() else { return }
        self.cumulation = nil
        self.pendingPong = nil
        self.closeTimer?.cancel()
        self.stallWatch?.cancel()
        self.stallWatch = nil
        self.pongDeadline?.cancel()
        self.idleCheck?.cancel()
        self.idleCheck = nil
        self.messageDeadline?.cancel()
        self.messageDeadline = nil
        self.ownDeflater = nil
        _ = self.reportHeldOutput(0)  // what the client held here is no longer held
        self.connection.handler = nil
        self.events.onClose(self.connection, reason)
        self.connection.didClose(reason)
    }
}
