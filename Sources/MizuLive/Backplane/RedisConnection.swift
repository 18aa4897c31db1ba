import Foundation
import NIOCore
import NIOPosix
#if TLS
import NIOSSL
#endif

/// Turns the byte stream from Redis into RESP values (bounded by the parser's limits).
struct RESPDecoder: ByteToMessageDecoder {
    typealias InboundOut = RESPValue
    let parser = RESPParser()
    /// How much of a reply arriving in pieces has been checked: each read walks only the new bytes.
    var progress = RESPParser.Progress()

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard try self.parser.hasCompleteValue(buffer, progress: &self.progress), let value = try self.parser.next(&buffer) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(value))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try self.decode(context: context, buffer: &buffer)
    }
}

/// A command for a ``RedisReplyHandler``: its bytes and what to do with its replies.
struct RedisRequest: Sendable {
    enum Replies: Sendable {
        /// One reply, handed to the promise.
        case one(EventLoopPromise<RESPValue>)
        /// `count` replies nobody waits for (pipelined PUBLISHes); error replies are reported.
        case discard(count: Int)
        /// No reply: a pub/sub connection's SUBSCRIBE/UNSUBSCRIBE, answered by pushes.
        case none
    }

    var bytes: ByteBuffer
    var replies: Replies
    /// The commands of a `.discard` batch whose effect in Redis is the same whether applied
    /// once or twice: when the link dies before answering them they are handed back to be
    /// written again (``RedisReplyHandler``'s `onUnanswered`).
    var replayable: [ReplayableCommand] = []
}

/// One command of a batch that may be written again: its place in the batch (its reply's
/// number and where its bytes start) and its bytes.
struct ReplayableCommand: Sendable {
    var index: Int
    var offset: Int
    var bytes: ByteBuffer
}

/// Matches replies to pipelined commands in order. A value no command waits for is a pub/sub
/// push and goes to `onPush`. With a health-check interval it PINGs an idle connection and
/// closes one that has said nothing for two intervals (a Redis that is stalled or cut off
/// without a FIN would otherwise look alive for hours). Confined to its channel's event loop.
final class RedisReplyHandler: ChannelDuplexHandler {
    typealias InboundIn = RESPValue
    typealias OutboundIn = RedisRequest
    typealias OutboundOut = ByteBuffer

    private enum Waiting {
        case one(EventLoopPromise<RESPValue>)
        /// `remaining` of a batch of `total` replies nobody waits for.
        case discard(remaining: Int, total: Int, replayable: [ReplayableCommand])
        /// The health check's PING on a plain connection.
        case ping
    }

    private var waiting = CircularBuffer<Waiting>()
    private let healthCheck: TimeAmount?
    /// On a pub/sub connection a PING is answered by a push, not a reply.
    private let pubSub: Bool
    private var lastHeard = NIODeadline.now()
    private var healthTask: RepeatedTask?
    private let onPush: @Sendable (RESPValue) -> Void
    /// An error reply to a command nobody waits for, with the command's bytes when it is a
    /// replayable one (a cluster's redirect sends it elsewhere).
    private let onDiscardedError: @Sendable (String, ByteBuffer?) -> Void
    private let onWritable: @Sendable () -> Void
    /// Commands nobody waited for that were written and never answered when the connection
    /// ended (they may or may not have reached Redis): how many, and the bytes of those among
    /// them that may be written again, in the order they were written.
    private let onUnanswered: @Sendable (Int, [ByteBuffer]) -> Void

    init(
        healthCheck: TimeAmount?,
        pubSub: Bool,
        onPush: @escaping @Sendable (RESPValue) -> Void,
        onDiscardedError: @escaping @Sendable (String, ByteBuffer?) -> Void,
        onWritable: @escaping @Sendable () -> Void,
        onUnanswered: @escaping @Sendable (Int, [ByteBuffer]) -> Void = { _, _ in }
    ) {
        self.healthCheck = healthCheck
        self.pubSub = pubSub
        self.onPush = onPush
        self.onDiscardedError = onDiscardedError
        self.onWritable = onWritable
        self.onUnanswered = onUnanswered
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = Self.unwrapOutboundIn(data)
        switch request.replies {
        case .one(let reply): self.waiting.append(.one(reply))
        case .discard(let count) where count > 0: self.waiting.append(.discard(remaining: count, total: count, replayable: request.replayable))
        case .discard, .none: break
        }
        context.write(Self.wrapOutboundOut(request.bytes), promise: promise)
    }

    func channelActive(context: ChannelHandlerContext) {
        self.lastHeard = .now()
        if let interval = self.healthCheck {
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            self.healthTask = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
                let (handler, context) = bound.value
                handler.checkHealth(context, interval: interval)
            }
        }
        context.fireChannelActive()
    }

    private func checkHealth(_ context: ChannelHandlerContext, interval: TimeAmount) {
        guard NIODeadline.now() - self.lastHeard < interval * 2 else {
            self.errorCaught(context: context, error: Live.RedisError.connectionClosed)
            return
        }
        var ping = context.channel.allocator.buffer(capacity: 14)
        RESPValue.writeCommand(["PING"], into: &ping)
        if !self.pubSub { self.waiting.append(.ping) }
        context.writeAndFlush(Self.wrapOutboundOut(ping), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.lastHeard = .now()
        let value = Self.unwrapInboundIn(data)
        guard let first = self.waiting.first else {
            self.onPush(value)
            return
        }
        switch first {
        case .one(let promise):
            self.waiting.removeFirst()
            promise.succeed(value)
        case .discard(let remaining, let total, let replayable):
            if remaining == 1 {
                self.waiting.removeFirst()
            } else {
                self.waiting[self.waiting.startIndex] = .discard(remaining: remaining - 1, total: total, replayable: replayable)
            }
            if case .error(let message) = value {
                let index = total - remaining
                self.onDiscardedError(message, replayable.first { $0.index == index }?.bytes)
            }
        case .ping:
            self.waiting.removeFirst()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { self.onWritable() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.healthTask?.cancel()
        self.failWaiting(Live.RedisError.connectionClosed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A decoding error means the stream can no longer be trusted.
        let failure = (error as? RESPParser.Error).map { Live.RedisError.protocolViolation("\($0)") } ?? error
        self.failWaiting(failure)
        context.close(promise: nil)
    }

    private func failWaiting(_ error: any Error) {
        var unanswered = 0
        var replay: [ByteBuffer] = []
        while let next = self.waiting.popFirst() {
            switch next {
            case .one(let promise): promise.fail(error)
            case .discard(let remaining, let total, let replayable):
                unanswered += remaining
                // Redis answers in order: the batch's first `total - remaining` were answered.
                for command in replayable where command.index >= total - remaining { replay.append(command.bytes) }
            case .ping: break
            }
        }
        if unanswered > 0 { self.onUnanswered(unanswered, replay) }
    }
}

/// Opens connections to Redis and runs the start-up handshake.
enum RedisConnector {
    struct Callbacks: Sendable {
        /// PING this often and drop a connection silent for two intervals; nil: never.
        var healthCheck: TimeAmount?
        var pubSub = false
        var onPush: @Sendable (RESPValue) -> Void = { _ in }
        var onDiscardedError: @Sendable (String, ByteBuffer?) -> Void = { _, _ in }
        var onWritable: @Sendable () -> Void = {}
        var onUnanswered: @Sendable (Int, [ByteBuffer]) -> Void = { _, _ in }
    }

    /// A connected, authenticated channel with `configuration.database` selected; a Redis
    /// error reply fails it with ``Live/RedisError/refused(command:message:)``.
    static func connect(
        _ configuration: Live.RedisBroker.Configuration,
        on eventLoop: any EventLoop,
        callbacks: Callbacks
    ) -> EventLoopFuture<any Channel> {
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(configuration.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    #if TLS
                    if let tls = configuration.tls {
                        // SNI and name checks need a name: an IP address is checked as such.
                        let name = (try? SocketAddress(ipAddress: configuration.host, port: 0)) == nil ? configuration.host : nil
                        let context = try NIOSSLContext(configuration: tls)
                        try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: name))
                    }
                    #endif
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(RESPDecoder()))
                    try channel.pipeline.syncOperations.addHandler(
                        RedisReplyHandler(
                            healthCheck: callbacks.healthCheck, pubSub: callbacks.pubSub, onPush: callbacks.onPush, onDiscardedError: callbacks.onDiscardedError,
                            onWritable: callbacks.onWritable, onUnanswered: callbacks.onUnanswered))
                }
            }
        let connected = bootstrap.connect(host: configuration.host, port: configuration.port).flatMapErrorThrowing { error in
            throw Live.RedisError.connectionFailed(host: configuration.host, port: configuration.port, reason: self.reason(error))
        }
        return connected.flatMap { channel in
            let handshake = self.handshake(configuration, on: channel).map { channel }
            // A Redis that accepts the connection but never answers must not hang start-up.
            let timeout = eventLoop.scheduleTask(in: configuration.connectTimeout) { channel.close(promise: nil) }
            handshake.whenComplete { _ in timeout.cancel() }
            handshake.whenFailure { _ in channel.close(promise: nil) }
            return handshake
        }
    }

    /// The useful part of a connect error: "Connection refused (errno: 111)", not the wrapping.
    private static func reason(_ error: any Error) -> String {
        guard let failure = error as? NIOConnectionError else {
            return (error as? ChannelError) == .connectTimeout(.zero) ? "timed out" : "\(error)"
        }
        if let dns = failure.dnsAError ?? failure.dnsAAAAError { return "cannot resolve the host: \(dns)" }
        guard let first = failure.connectionErrors.first else { return "\(error)" }
        if let io = first.error as? IOError { return String(cString: strerror(io.errnoCode)) }
        return "\(first.error)"
    }

    /// AUTH (when a password is set), SELECT (when not 0) and PING, pipelined; PING makes a
    /// Redis that requires a password say so now rather than on the first publish.
    private static func handshake(_ configuration: Live.RedisBroker.Configuration, on channel: any Channel) -> EventLoopFuture<Void> {
        var commands: [(name: String, arguments: [String])] = []
        if let password = configuration.password {
            commands.append(("AUTH", ["AUTH"] + (configuration.username.map { [$0] } ?? []) + [password]))
        }
        if configuration.database != 0 { commands.append(("SELECT", ["SELECT", String(configuration.database)])) }
        commands.append(("PING", ["PING"]))
        let replies = commands.map { command in
            let reply = channel.eventLoop.makePromise(of: RESPValue.self)
            var bytes = channel.allocator.buffer(capacity: 64)
            RESPValue.writeCommand(command.arguments, into: &bytes)
            channel.write(RedisRequest(bytes: bytes, replies: .one(reply)), promise: nil)
            return reply.futureResult.flatMapThrowing { value in
                switch value {
                case .error(let message): throw Live.RedisError.refused(command: command.name, message: message)
                case .simpleString: return
                default: throw Live.RedisError.protocolViolation("unexpected answer to \(command.name): \(value)")
                }
            }
        }
        channel.flush()
        return EventLoopFuture.andAllSucceed(replies, on: channel.eventLoop)
    }

    /// Sends one command and waits at most `timeout` for its reply (the broker pipelines; this
    /// is for one-off reads such as the cluster's map). A node that took the connection and then
    /// answers nothing (stalled, paused by a failover, cut off without a FIN) fails it with
    /// ``Live/RedisError/timeout`` and the connection is closed: a wait without a deadline here
    /// once left a cluster broker on its old map for good.
    static func command(_ arguments: [String], on channel: any Channel, timeout: TimeAmount) -> EventLoopFuture<RESPValue> {
        let reply = channel.eventLoop.makePromise(of: RESPValue.self)
        let answer = channel.eventLoop.makePromise(of: RESPValue.self)
        let timer = channel.eventLoop.scheduleTask(in: timeout) {
            answer.fail(Live.RedisError.timeout)
            channel.close(promise: nil)  // fails `reply` too; a completed promise keeps its first result
        }
        reply.futureResult.whenComplete { result in
            timer.cancel()
            answer.completeWith(result)
        }
        var bytes = channel.allocator.buffer(capacity: 64)
        RESPValue.writeCommand(arguments, into: &bytes)
        channel.writeAndFlush(RedisRequest(bytes: bytes, replies: .one(reply)), promise: nil)
        return answer.futureResult
    }
}
