import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A TCP client for tests that see the exact bytes on the wire. Every wait has a timeout.
public final class RawClient: Sendable {
    /// Thrown when an expected answer does not arrive in time.
    public struct Timeout: Error, CustomStringConvertible {
        public let waitingFor: String
        public let received: String
        public init(waitingFor: String, received: String) {
            self.waitingFor = waitingFor
            self.received = received
        }
        public var description: String {
            "timed out waiting for \(self.waitingFor)\(Patience.note); received so far: \(self.received.debugDescription)"
        }
    }

    private struct State {
        var buffer = ByteBuffer()
        var closed = false
    }

    private final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let state: NIOLockedValueBox<State>
        init(state: NIOLockedValueBox<State>) { self.state = state }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var bytes = self.unwrapInboundIn(data)
            self.state.withLockedValue { _ = $0.buffer.writeBuffer(&bytes) }
        }

        func channelInactive(context: ChannelHandlerContext) {
            self.state.withLockedValue { $0.closed = true }
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            // The peer closed its side: for a reader that is the end of the connection.
            if let event = event as? ChannelEvent, event == .inputClosed {
                self.state.withLockedValue { $0.closed = true }
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }

    private let channel: any Channel
    private let state: NIOLockedValueBox<State>

    private init(channel: any Channel, state: NIOLockedValueBox<State>) {
        self.channel = channel
        self.state = state
    }

    /// What a TLS client trusts: the server's self-signed certificate in this PEM file.
    public struct TLSTrust: Sendable {
        public let certificateFile: String
        public init(certificateFile: String) { self.certificateFile = certificateFile }
    }

    /// Connects to 127.0.0.1:`port`; a small `receiveBufferSize` makes a slow reader easy to
    /// stage; `tls` speaks TLS first (only in builds with the `TLS` trait).
    public static func connect(
        port: Int, timeout: TimeAmount = .seconds(5), receiveBufferSize: Int? = nil, tls: TLSTrust? = nil, from source: String? = nil
    ) async throws -> RawClient {
        let state = NIOLockedValueBox(State())
        var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        if let receiveBufferSize {
            bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(receiveBufferSize))
        }
        // Another loopback address (127.0.0.2 ...) is another client to per-client limits.
        if let source { bootstrap = bootstrap.bind(to: try SocketAddress(ipAddress: source, port: 0)) }
        let channel = try await bootstrap
            .connectTimeout(Patience.scaled(timeout))
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try Self.addTLS(tls, to: channel) }
                    try channel.pipeline.syncOperations.addHandler(Collector(state: state))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return RawClient(channel: channel, state: state)
    }

    /// Connects to a Unix domain socket at `path`.
    public static func connect(unixSocketPath path: String, timeout: TimeAmount = .seconds(5)) async throws -> RawClient {
        let state = NIOLockedValueBox(State())
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(Patience.scaled(timeout))
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Collector(state: state)) }
            }
            .connect(unixDomainSocketPath: path).get()
        return RawClient(channel: channel, state: state)
    }

    /// Sends bytes as one write; a server that takes none of them within `timeout` (times the
    /// patience) fails it with ``Timeout`` and the connection is closed.
    public func send(_ bytes: [UInt8], timeout: TimeAmount = .seconds(10)) async throws {
        let channel = self.channel
        let sent = channel.eventLoop.makePromise(of: Void.self)
        let timer = channel.eventLoop.scheduleTask(in: Patience.scaled(timeout)) {
            sent.fail(Timeout(waitingFor: "the server to take \(bytes.count) bytes", received: ""))
            channel.close(promise: nil)  // fails the write too; the promise keeps its first result
        }
        channel.writeAndFlush(channel.allocator.buffer(bytes: bytes)).whenComplete { result in
            timer.cancel()
            sent.completeWith(result)
        }
        try await sent.futureResult.get()
    }

    /// Sends text as one write.
    public func send(_ text: String, timeout: TimeAmount = .seconds(10)) async throws {
        try await self.send(Array(text.utf8), timeout: timeout)
    }

    /// Stops reading from the socket (a stalled consumer); the kernel buffers fill up.
    public func stopReading() async throws {
        try await self.channel.setOption(.autoRead, value: false).get()
    }

    /// Reads from the socket again after ``stopReading()``.
    public func startReading() async throws {
        try await self.channel.setOption(.autoRead, value: true).get()
        self.channel.read()
    }

    /// Closes the connection.
    public func close() async {
        try? await self.channel.close()
    }

    /// Whether the server closed the connection.
    public var isClosed: Bool { self.state.withLockedValue { $0.closed } }

    /// Waits until `parse` finds a complete item at the front of the received bytes and
    /// consumes it. `parse` returns nil while more bytes are needed.
    public func read<T>(
        _ what: String,
        timeout: TimeAmount = .seconds(5),
        _ parse: (inout ByteBuffer, _ closed: Bool) throws -> T?
    ) async throws -> T {
        let deadline = NIODeadline.now() + Patience.scaled(timeout)
        while true {
            let (result, closed): (T?, Bool) = try self.state.withLockedValue { state in
                var copy = state.buffer
                guard let value = try parse(&copy, state.closed) else { return (nil, state.closed) }
                state.buffer = copy
                return (value, state.closed)
            }
            if let result { return result }
            if closed || NIODeadline.now() > deadline {
                throw Timeout(waitingFor: what, received: self.state.withLockedValue { String(buffer: $0.buffer) })
            }
            try await Task.sleep(nanoseconds: 2_000_000)
        }
    }

    /// Reads exactly `count` bytes.
    public func read(count: Int, timeout: TimeAmount = .seconds(5)) async throws -> [UInt8] {
        try await self.read("\(count) bytes", timeout: timeout) { buffer, _ in buffer.readBytes(length: count) }
    }

    /// Reads one HTTP/1.1 response.
    public func readResponse(timeout: TimeAmount = .seconds(5), headRequest: Bool = false) async throws -> HTTPTestResponse {
        try await self.read("an HTTP response", timeout: timeout) { buffer, closed in
            try HTTPTestResponse.parse(&buffer, headRequest: headRequest, eof: closed)
        }
    }

    /// Waits until the server closes the connection; returns whatever arrived before.
    public func waitForClose(timeout: TimeAmount = .seconds(5)) async throws -> ByteBuffer {
        let deadline = NIODeadline.now() + Patience.scaled(timeout)
        while !self.isClosed {
            if NIODeadline.now() > deadline {
                throw Timeout(waitingFor: "the connection to close", received: self.state.withLockedValue { String(buffer: $0.buffer) })
            }
            try await Task.sleep(nanoseconds: 2_000_000)
        }
        return self.state.withLockedValue { $0.buffer }
    }
}

#if TLS
import NIOSSL

extension RawClient {
    fileprivate static func addTLS(_ trust: TLSTrust, to channel: any Channel) throws {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(trust.certificateFile))
        let context = try NIOSSLContext(configuration: configuration)
        try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: "localhost"))
    }
}
#else
extension RawClient {
    fileprivate static func addTLS(_ trust: TLSTrust, to channel: any Channel) throws {
        throw ChannelError.operationUnsupported  // a build without the TLS trait
    }
}
#endif
