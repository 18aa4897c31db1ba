import MizuHTTP
import NIOCore
import Synchronization

/// An open WebSocket connection. Every method may be called from any thread or task; work
/// hops to the connection's event loop, and sends never block.
public final class WebSocketConnection: Sendable {
    /// The event loop that owns the connection.
    public let eventLoop: any EventLoop
    /// The negotiated subprotocol, if any.
    public let subprotocol: String?
    /// The peer's address.
    public let remoteAddress: SocketAddress?
    /// Whether permessage-deflate was negotiated.
    public var isCompressed: Bool { self.deflate != nil }

    let deflate: NegotiatedDeflate?
    /// How broadcasts reach this connection (``BroadcastFrame``).
    package let broadcastEncoding: BroadcastEncoding
    /// The connection's handler while it is in the pipeline. Safe without a lock: read and
    /// written only on `eventLoop` (checked by ``handler``), NIOLoopBoundBox's rule, kept
    /// inline instead of in a box of its own (one allocation less per connection).
    nonisolated(unsafe) private var loopHandler: WebSocketChannelHandler?
    var handler: WebSocketChannelHandler? {
        get {
            self.eventLoop.preconditionInEventLoop()
            return self.loopHandler
        }
        set {
            self.eventLoop.preconditionInEventLoop()
            self.loopHandler = newValue
        }
    }
    /// The end, once known, and the promise of ``closeFuture``, made only when someone asks
    /// for it (most connections are never asked: a future per connection is ~100 bytes).
    private let ending = InlineLock<(reason: WebSocketCloseReason?, promise: EventLoopPromise<WebSocketCloseReason>?)>((nil, nil))
    /// Messages accepted for sending and not yet written to the socket.
    private let pending = Atomic<Int>(0)
    /// The bound on `pending`; nil is unbounded (and uncounted).
    let sendQueueLimit: Int?
    /// Where the endpoint keeps its deepest queue, if anyone asked.
    private let watermark: SendQueueWatermark?

    init(
        eventLoop: any EventLoop, subprotocol: String?, remoteAddress: SocketAddress?, deflate: NegotiatedDeflate?, sendQueueLimit: Int?,
        watermark: SendQueueWatermark? = nil
    ) {
        self.watermark = watermark
        self.eventLoop = eventLoop
        self.subprotocol = subprotocol
        self.remoteAddress = remoteAddress
        self.deflate = deflate
        self.broadcastEncoding = BroadcastEncoding(deflate)
        self.sendQueueLimit = sendQueueLimit
    }

    /// Completes with the reason once the connection has ended.
    public var closeFuture: EventLoopFuture<WebSocketCloseReason> {
        let eventLoop = self.eventLoop
        return self.ending.withLock { ending in
            if let reason = ending.reason { return eventLoop.makeSucceededFuture(reason) }
            let promise = ending.promise ?? eventLoop.makePromise()
            ending.promise = promise
            return promise.futureResult
        }
    }

    /// Waits until the connection has ended and returns why.
    public func closeReason() async -> WebSocketCloseReason {
        (try? await self.closeFuture.get()) ?? .connectionLost
    }

    /// Takes a place in the send queue, from any thread; false when the queue is full.
    func reserveSendSlot() -> Bool {
        guard let limit = self.sendQueueLimit else { return true }
        let count = self.pending.add(1, ordering: .relaxed).newValue
        if count > limit {
            self.pending.subtract(1, ordering: .relaxed)
            return false
        }
        self.watermark?.observe(count)
        return true
    }

    /// Gives back places once their messages were written (or dropped).
    func releaseSendSlots(_ count: Int) {
        guard self.sendQueueLimit != nil, count > 0 else { return }
        self.pending.subtract(count, ordering: .relaxed)
    }

    func didClose(_ reason: WebSocketCloseReason) {
        let promise = self.ending.withLock { ending -> EventLoopPromise<WebSocketCloseReason>? in
            guard ending.reason == nil else { return nil }  // the first end is the end
            ending.reason = reason
            defer { ending.promise = nil }
            return ending.promise
        }
        promise?.succeed(reason)
    }

    /// Sends a message (compressed when negotiated and worth it).
    public func send(_ message: WebSocketMessage) {
        self.onLoop { $0.send(message) }
    }

    /// Sends a text message.
    public func send(text: String) {
        self.send(.text(text))
    }

    /// Sends a binary message.
    public func send(binary: [UInt8]) {
        self.send(.binary(binary))
    }

    /// Sends a ping (payload at most 125 bytes).
    public func ping(_ payload: [UInt8] = []) {
        self.onLoop { $0.sendControl(.ping, ByteBuffer(bytes: payload.prefix(125))) }
    }

    /// Starts the close handshake; the TCP connection closes when the peer answers, or
    /// after the configured close timeout. A code an endpoint may not send (RFC 6455 section
    /// 7.4: only 1000-1003, 1007-1011 and 3000-4999) is sent as 1000; the reason is cut to
    /// the 123 bytes a close frame holds.
    public func close(code: UInt16 = 1000, reason: String = "") {
        let code = Self.isSendable(code) ? code : 1000
        self.onLoop { $0.close(code: code, reason: reason, as: .serverClosed(code: code, reason: reason)) }
    }

    static func isSendable(_ code: UInt16) -> Bool {
        switch code {
        case 1000...1003, 1007...1011, 3000...4999: return true
        default: return false
        }
    }

    /// What ``trySend(_:)`` did.
    package enum SendOutcome: Equatable {
        case queued
        /// The send queue was full: nothing was queued, and the connection is closing as a
        /// slow consumer.
        case queueFull
    }

    /// Queues `message` if the send queue has room, from any thread. A full queue closes the
    /// connection as a slow consumer, as it does for a broadcast: one rule for every send.
    package func trySend(_ message: WebSocketMessage) -> SendOutcome {
        guard self.reserveSendSlot() else {
            self.closeAsSlowConsumer()
            return .queueFull
        }
        self.onLoop { $0.send(message, reserved: true) }
        return .queued
    }

    /// Closes as a slow consumer (the queue is full).
    package func closeAsSlowConsumer() {
        self.onLoop { $0.overflow() }
    }

    /// Closes with 1001 because the server is going away.
    package func closeForShutdown() {
        self.onLoop { $0.close(code: 1001, reason: "server shutdown", as: .serverShutdown) }
    }

    /// Stops or resumes reading from the socket: backpressure for a slow application.
    package func setReading(_ enabled: Bool) {
        self.onLoop { $0.setReading(enabled) }
    }

    /// Writes a broadcast in the variant this connection negotiated (the shared compressed
    /// frame, its own compression, or the plain frame). Call on the event loop; no
    /// allocation per connection unless it compresses itself. False when it no longer sends.
    @discardableResult
    package func write(_ broadcast: BroadcastFrame) -> Bool {
        self.write(broadcast, plain: broadcast.plain)
    }

    /// ``write(_:)`` with the broadcast's plain frame already at hand (the fan-out's loop).
    func write(_ broadcast: BroadcastFrame, plain: borrowing ByteBuffer) -> Bool {
        // Checked in debug builds only: the fan-out calls this on each connection's loop by
        // construction (Live groups subscribers per loop), once per delivery.
        self.eventLoop.assertInEventLoop()
        // Not retained (see BroadcastFrame.write): its pipeline holds it through this call
        // even if the call closes the channel (NIO removes handlers on a later tick).
        guard let handler = self.loopHandler.map({ Unmanaged.passUnretained($0) }) else { return false }
        if case .plain = self.broadcastEncoding {
            return handler._withUnsafeGuaranteedRef { $0.enqueue(plain, reserved: false) }
        }
        return handler._withUnsafeGuaranteedRef { handler in
            if let frame = broadcast.frame(for: self.broadcastEncoding) {
                return handler.enqueue(frame, reserved: false)
            }
            handler.send(WebSocketMessage(dataOpcode: .text, data: broadcast.payload))
            return true
        }
    }

    private func onLoop(_ body: @escaping @Sendable (WebSocketChannelHandler) -> Void) {
        if self.eventLoop.inEventLoop {
            if let handler = self.loopHandler { body(handler) }
        } else {
            self.eventLoop.execute { if let handler = self.handler { body(handler) } }
        }
    }
}
