import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// Answers one request: status, headers, body (buffered or streamed), or a protocol upgrade.
///
/// A body written without ``flush()`` is buffered and sent with a `Content-Length`; once
/// ``flush()`` runs, or the buffer passes ``streamingThreshold``, the response streams with
/// chunked encoding. Responses to `HEAD` keep their headers and drop the body bytes.
public final class ResponseWriter: Sendable {
    /// Buffered body size past which the response starts streaming.
    public static let streamingThreshold = 64 * 1024

    private struct State {
        var status: HTTPResponseStatus = .ok
        var headers = HTTPHeaders()
        var body = ByteBuffer()
        var headSent = false
        var finished = false
        var upgraded = false
        /// Gzip, when a middleware asked for it (decided as the head leaves).
        var compression: ResponseCompression?
    }

    /// Errors a writer reports to its handler.
    public enum Error: Swift.Error, Equatable {
        /// The response was already completed (or the connection upgraded).
        case responseFinished
        /// Headers can no longer change: the head has been sent.
        case headAlreadySent
        /// The connection closed before the response could be sent.
        case connectionClosed
    }

    private let state = NIOLockedValueBox(State())
    private let connection: any ResponseConnection
    private let isHead: Bool
    /// The allocator of the connection, for building bodies without copies.
    public let allocator: ByteBufferAllocator

    package init(connection: any ResponseConnection, requestMethod: HTTPMethod, allocator: ByteBufferAllocator) {
        self.connection = connection
        self.isHead = requestMethod == .HEAD
        self.allocator = allocator
    }

    /// The response headers; changes after the head was sent are ignored.
    public var headers: HTTPHeaders {
        get { self.state.withLockedValue { $0.headers } }
        set { self.state.withLockedValue { if !$0.headSent { $0.headers = newValue } } }
    }

    /// The response status (200 unless set).
    public var status: HTTPResponseStatus {
        get { self.state.withLockedValue { $0.status } }
        set { self.state.withLockedValue { if !$0.headSent { $0.status = newValue } } }
    }

    /// Whether the head has been sent (status and headers are final).
    public var headSent: Bool { self.state.withLockedValue { $0.headSent } }

    /// Whether the response has ended.
    public var isFinished: Bool { self.state.withLockedValue { $0.finished || $0.upgraded } }

    /// Adds a header value, keeping earlier ones (`Set-Cookie` is sent once per cookie).
    public func addHeader(_ name: String, _ value: String) {
        self.state.withLockedValue { if !$0.headSent { $0.headers.add(name: name, value: value) } }
    }

    /// Sets one header, replacing earlier values.
    public func setHeader(_ name: String, _ value: String) {
        self.state.withLockedValue { if !$0.headSent { $0.headers.replaceOrAdd(name: name, value: value) } }
    }

    /// Sets the status to send (Go's `WriteHeader`, but the head leaves with the first flush).
    public func writeHead(_ status: HTTPResponseStatus) {
        self.status = status
    }

    /// Appends bytes to the body.
    public func write(_ bytes: ByteBuffer) async throws {
        let parts: [HTTPServerResponsePart]? = try self.state.withLockedValue { state in
            guard !state.finished, !state.upgraded else { throw Error.responseFinished }
            if state.headSent {
                guard !self.isHead, bytes.readableBytes > 0 else { return [] }
                if let compression = state.compression, compression.isActive {
                    guard let compressed = compression.compress(bytes, last: false, allocator: self.allocator) else {
                        throw Error.connectionClosed
                    }
                    return [.body(.byteBuffer(compressed))]
                }
                return [.body(.byteBuffer(bytes))]
            }
            var bytes = bytes
            state.body.writeBuffer(&bytes)
            return state.body.readableBytes > Self.streamingThreshold ? self.takeStreamingParts(&state) : nil
        }
        if let parts, !parts.isEmpty { try await self.send(parts) }
    }

    /// Appends UTF-8 text to the body.
    public func write(_ string: String) async throws {
        try await self.write(self.allocator.buffer(string: string))
    }

    /// Appends bytes to the body.
    public func write(_ bytes: some Sequence<UInt8>) async throws {
        try await self.write(self.allocator.buffer(bytes: bytes))
    }

    /// Sends the head and whatever body is buffered now; the rest of the body streams.
    public func flush() async throws {
        let parts: [HTTPServerResponsePart] = try self.state.withLockedValue { state in
            guard !state.finished, !state.upgraded else { throw Error.responseFinished }
            return state.headSent ? [] : self.takeStreamingParts(&state)
        }
        if !parts.isEmpty { try await self.send(parts) }
    }

    /// Ends the response; the server calls this when the handler returns.
    func finish() async throws {
        let parts: [HTTPServerResponsePart] = self.state.withLockedValue { state in
            guard !state.finished, !state.upgraded else { return [] }
            state.finished = true
            if state.headSent {
                // The compressed stream's last block and trailer go before the end.
                if let compression = state.compression, compression.isActive, !self.isHead,
                    let tail = compression.compress(ByteBuffer(), last: true, allocator: self.allocator)
                {
                    return [.body(.byteBuffer(tail)), .end(nil)]
                }
                return [.end(nil)]
            }
            state.headSent = true
            let bodyAllowed = Self.statusAllowsBody(state.status)
            if let compression = state.compression, compression.begin(status: state.status, headers: &state.headers, bodySize: state.body.readableBytes) {
                // A HEAD answer gets the length a GET would.
                if let compressed = compression.compress(state.body, last: true, allocator: self.allocator) {
                    state.body = compressed
                } else {
                    state.headers.remove(name: "content-encoding")
                }
            }
            if bodyAllowed {
                state.headers.replaceOrAdd(name: "content-length", value: String(state.body.readableBytes))
            } else {
                state.headers.remove(name: "content-length")
            }
            state.headers.remove(name: "transfer-encoding")
            var parts: [HTTPServerResponsePart] = [.head(Self.head(state))]
            if bodyAllowed, !self.isHead, state.body.readableBytes > 0 { parts.append(.body(.byteBuffer(state.body))) }
            parts.append(.end(nil))
            state.body = ByteBuffer()
            return parts
        }
        if !parts.isEmpty { try await self.send(parts) }
    }

    /// Compresses the body with gzip when the client takes it and the response qualifies
    /// (``Middlewares/gzip(level:minSize:contentTypes:)``); decided when the head leaves.
    package func compressBody(_ settings: ResponseCompression.Settings, acceptEncoding: String?) {
        self.state.withLockedValue { state in
            guard !state.headSent else { return }
            state.compression = ResponseCompression(settings: settings, acceptEncoding: acceptEncoding)
        }
    }

    /// Sends `status` with `text` as a plain-text body and ends the response, unless its head
    /// has left already (false then). The headers become `headers` plus the content type. Every
    /// later write fails with ``Error/responseFinished`` (a timed-out handler's, for one).
    package func finishEarly(_ status: HTTPResponseStatus, text: String, headers: HTTPHeaders) async throws -> Bool {
        let parts: [HTTPServerResponsePart]? = self.state.withLockedValue { state in
            guard !state.finished, !state.upgraded, !state.headSent else { return nil }
            state.finished = true
            state.headSent = true
            state.status = status
            state.headers = headers
            state.headers.replaceOrAdd(name: "content-type", value: "text/plain; charset=utf-8")
            let body = self.allocator.buffer(string: text)
            state.headers.replaceOrAdd(name: "content-length", value: String(body.readableBytes))
            state.headers.remove(name: "transfer-encoding")
            state.body = ByteBuffer()
            var parts: [HTTPServerResponsePart] = [.head(Self.head(state))]
            if !self.isHead { parts.append(.body(.byteBuffer(body))) }
            parts.append(.end(nil))
            return parts
        }
        guard let parts else { return false }
        try await self.send(parts)
        return true
    }

    /// Ends the response without its last part: a streamed body that stops short must look
    /// cut to the client (the connection then closes), never complete.
    package func abandon() {
        self.state.withLockedValue { $0.finished = true }
    }

    /// Abandons the response and closes the connection now, while its handler may still run
    /// (a deadline passed mid-stream): the client sees the body cut at once, not when the
    /// handler next writes or returns.
    package func cut() {
        self.abandon()
        self.connection.cut()
    }

    /// Answers `101 Switching Protocols` with the set headers and hands the connection to
    /// `configure`, which adds the new protocol's handlers. Bytes that arrived after the
    /// request head reach those handlers; nothing is lost.
    public func upgrade(to configure: @escaping @Sendable (any Channel) -> EventLoopFuture<Void>) async throws {
        let head: HTTPResponseHead = try self.state.withLockedValue { state in
            guard !state.finished, !state.upgraded else { throw Error.responseFinished }
            guard !state.headSent else { throw Error.headAlreadySent }
            state.upgraded = true
            state.headSent = true
            state.status = .switchingProtocols
            return Self.head(state)
        }
        try await self.connection.upgrade(head: head, configure: configure).valueWithoutWaitingIfDone()
    }

    private func takeStreamingParts(_ state: inout State) -> [HTTPServerResponsePart] {
        state.headSent = true
        if let compression = state.compression, compression.begin(status: state.status, headers: &state.headers, bodySize: nil),
            state.body.readableBytes > 0
        {
            // (An empty head flush sends no chunk: the gzip header goes with the first data.)
            state.body = compression.compress(state.body, last: false, allocator: self.allocator) ?? ByteBuffer()
        }
        if !state.headers.contains(name: "content-length") && Self.statusAllowsBody(state.status) {
            state.headers.replaceOrAdd(name: "transfer-encoding", value: "chunked")
        }
        var parts: [HTTPServerResponsePart] = [.head(Self.head(state))]
        if !self.isHead, state.body.readableBytes > 0 { parts.append(.body(.byteBuffer(state.body))) }
        state.body = ByteBuffer()
        return parts
    }

    private func send(_ parts: [HTTPServerResponsePart]) async throws {
        do {
            try await self.connection.write(parts, isHeadRequest: self.isHead).valueWithoutWaitingIfDone()
        } catch {
            throw Error.connectionClosed
        }
    }

    private static func head(_ state: State) -> HTTPResponseHead {
        HTTPResponseHead(version: .http1_1, status: state.status, headers: state.headers)
    }

    /// RFC 9110 section 6.4.1: 1xx, 204 and 304 responses carry no content.
    static func statusAllowsBody(_ status: HTTPResponseStatus) -> Bool {
        let code = status.code
        return !(code < 200 || code == 204 || code == 304)
    }
}

/// What a writer needs from its connection; the connection handler implements it.
package protocol ResponseConnection: Sendable {
    func write(_ parts: [HTTPServerResponsePart], isHeadRequest: Bool) -> EventLoopFuture<Void>
    func upgrade(head: HTTPResponseHead, configure: @escaping @Sendable (any Channel) -> EventLoopFuture<Void>) -> EventLoopFuture<Void>
    /// Closes the connection at once: the response under way will not be completed.
    func cut()
}
