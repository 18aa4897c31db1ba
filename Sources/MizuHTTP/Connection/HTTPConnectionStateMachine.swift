import NIOCore
import NIOHTTP1

/// The life of one HTTP/1.1 connection as a value: parser and socket events in, actions out,
/// no I/O. ``HTTPConnectionHandler`` feeds it and carries out what it returns.
///
/// Every state names its deadline and what bounds its memory:
///
/// | input state | deadline | memory bound |
/// |---|---|---|
/// | `idle` (between requests) | `idleTimeout` | nothing buffered |
/// | `head` (first byte of a head seen) | `requestHeadTimeout`, from that byte | `maxHeadSize` |
/// | `body` (head parsed) | `requestBodyTimeout`, from the head | `maxBodySize` |
/// | `stopped` (nothing more is read) | none of its own: the response's | one read |
///
/// Output: a peer that leaves our responses unread makes the socket unwritable; reading then
/// stops, and `writeStallTimeout` without progress closes the connection.
package struct HTTPConnectionStateMachine {
    enum Input: Equatable {
        case idle
        case head
        case body
        /// After an upgrade or CONNECT request (the parser has stopped), an error, or the last
        /// request of the connection.
        case stopped
    }

    /// The input deadline in force.
    enum Deadline: Equatable {
        case idle, head, body
    }

    /// A request read ahead, or an error answer that waits for earlier responses.
    package enum Work {
        /// `last`: the connection closes after its response.
        case request(Request, last: Bool)
        case finalError(HTTPResponseStatus, String)
    }

    /// What the handler does after a head arrived.
    package enum HeadAction: Equatable {
        case none
        /// RFC 9110 section 10.1.1: ask for the body now, since it will be read now.
        case sendContinue(HTTPVersion)
    }

    /// What the handler does when an input deadline expires.
    enum TimeoutAction: Equatable {
        case close
        case none
    }

    let maxBodySize: Int

    private(set) var input = Input.idle
    private var bodyHead: HTTPRequestHead?
    private var body = ByteBuffer()
    private var pending = CircularBuffer<Work>(initialCapacity: 2)
    /// A response is being produced (a handler runs, or a final error is written).
    private(set) var responding = false
    /// The response in progress is the connection's last.
    private(set) var closeAfterResponse = false
    /// The request in progress asked to switch protocols.
    private(set) var currentIsUpgrade = false
    private(set) var upgrading = false
    private var quiescing = false
    private(set) var writable = true

    package init(maxBodySize: Int) {
        self.maxBodySize = maxBodySize
    }

    /// Shared by every request without a body: most requests then allocate no body storage.
    private static let emptyBody = ByteBuffer()

    // MARK: Reading

    /// Raw bytes arrived: a head has begun, and its deadline starts now (not at every read).
    package mutating func bytesArrived() {
        if self.input == .idle { self.input = .head }
    }

    package mutating func receivedHead(_ head: HTTPRequestHead) -> HeadAction {
        guard self.input == .idle || self.input == .head else {
            self.reject(.badRequest, "malformed request")
            return .none
        }
        if let (status, reason) = Self.refusal(of: head, maxBodySize: self.maxBodySize) {
            self.reject(status, reason)
            return .none
        }
        self.input = .body
        self.bodyHead = head
        self.body = Self.emptyBody
        if let expect = head.headers.first(name: "expect") {
            guard expect.lowercased() == "100-continue" else {
                self.reject(.expectationFailed, "unsupported expectation")
                return .none
            }
            if !self.responding && self.pending.isEmpty { return .sendContinue(head.version) }
        }
        return .none
    }

    package mutating func receivedBodyPart(_ chunk: inout ByteBuffer) {
        guard self.input == .body else {
            if self.input != .stopped { self.reject(.badRequest, "malformed request") }
            return
        }
        guard self.body.readableBytes + chunk.readableBytes <= self.maxBodySize else {
            self.reject(.payloadTooLarge, "request body exceeds \(self.maxBodySize) bytes")
            return
        }
        self.body.writeBuffer(&chunk)
    }

    package mutating func receivedEnd(remoteAddress: SocketAddress?, secure: Bool = false) {
        guard self.input == .body, let head = self.bodyHead else {
            if self.input != .stopped { self.reject(.badRequest, "malformed request") }
            return
        }
        var request = Request(
            method: head.method, uri: head.uri, headers: head.headers, version: head.version,
            body: self.body, remoteAddress: remoteAddress, isSecure: secure)
        request.pathParameters = [:]
        self.bodyHead = nil
        self.body = Self.emptyBody
        // After an upgrade request or CONNECT the parser stops: what follows is another
        // protocol's, read only by that protocol's handlers (or never).
        let switchesProtocol = head.method == .CONNECT || head.headers.contains(name: "upgrade")
        // RFC 9112 section 6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing.
        let faultyFraming = head.version.major == 1 && head.version.minor == 0 && head.headers.contains(name: "transfer-encoding")
        let last = !head.isKeepAlive || switchesProtocol || faultyFraming || self.quiescing
        self.input = last ? .stopped : .idle
        self.pending.append(.request(request, last: last))
    }

    /// The parser refused the input (or the request broke a rule): answer once, read no more.
    mutating func reject(_ status: HTTPResponseStatus, _ reason: String) {
        guard self.input != .stopped else { return }
        self.input = .stopped
        self.bodyHead = nil
        self.body = Self.emptyBody
        self.pending.append(.finalError(status, reason))
    }

    /// RFC 9112 and our limits: what no handler should see.
    static func refusal(of head: HTTPRequestHead, maxBodySize: Int) -> (HTTPResponseStatus, String)? {
        let hosts = head.headers[canonicalForm: "host"].count
        // RFC 9112 section 3.2: HTTP/1.1 requires exactly one Host; none of any version has two.
        if hosts > 1 || (hosts == 0 && (head.version.major, head.version.minor) >= (1, 1)) {
            return (.badRequest, hosts > 1 ? "more than one Host header" : "missing Host header")
        }
        // RFC 3986 has no raw backslash in a URI, and browsers read one as a slash: a target
        // with it could turn into "//host" on its way back out (a redirect's Location).
        if head.uri.utf8.contains(UInt8(ascii: "\\")) { return (.badRequest, "backslash in request target") }
        let codings = head.headers[canonicalForm: "transfer-encoding"].map { $0.lowercased() }
        if let final = codings.last {
            // RFC 9112 section 6.3: a request whose final coding is not chunked has no knowable length.
            guard final == "chunked" else { return (.badRequest, "chunked must be the final transfer coding") }
            // RFC 9112 section 6.1: chunked is the only transfer coding this server understands.
            if codings.count > 1 { return (.notImplemented, "unsupported transfer coding") }
        }
        if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > maxBodySize {
            return (.payloadTooLarge, "request body exceeds \(maxBodySize) bytes")
        }
        return nil
    }

    // MARK: Responding

    /// The next request or error answer to produce, if none is in progress.
    package mutating func nextWork() -> Work? {
        guard !self.responding, !self.upgrading, let next = self.pending.popFirst() else { return nil }
        self.responding = true
        switch next {
        case .request(let request, let last):
            self.closeAfterResponse = last || self.quiescing
            self.currentIsUpgrade = request.method != .CONNECT && request.headers.contains(name: "upgrade")
        case .finalError:
            self.closeAfterResponse = true
            self.currentIsUpgrade = false
        }
        return next
    }

    /// The response head is leaving: whether it must say `Connection: close`. A handler that
    /// set `Connection: close` itself makes this response the last.
    mutating func responseHeadLeaving(handlerAskedToClose: Bool) -> Bool {
        if handlerAskedToClose && !self.closeAfterResponse {
            self.closeAfterResponse = true
            self.input = .stopped
        }
        return self.closeAfterResponse
    }

    /// The response ended; true when the connection must close now.
    mutating func responseFinished(failed: Bool) -> Bool {
        guard !self.upgrading else { return false }
        self.responding = false
        return failed || self.closeAfterResponse
    }

    /// The handler answers 101; false when this request cannot switch protocols.
    mutating func upgradeStarted() -> Bool {
        guard self.currentIsUpgrade, !self.upgrading else { return false }
        self.upgrading = true
        return true
    }

    // MARK: Flow control and deadlines

    /// Whether the socket may be read now: never while the peer leaves our output unread,
    /// after the input stopped, or beyond one request read ahead of the one being answered.
    var mayRead: Bool {
        guard self.writable, !self.upgrading, self.input != .stopped else { return false }
        return !(self.responding && !self.pending.isEmpty)
    }

    /// The input deadline the current state names (nil: none of its own).
    var deadline: Deadline? {
        guard !self.upgrading else { return nil }
        switch self.input {
        case .idle: return self.responding || !self.pending.isEmpty ? nil : .idle
        case .head: return self.responding ? nil : .head
        case .body: return .body
        case .stopped: return nil
        }
    }

    mutating func writabilityChanged(_ writable: Bool) {
        self.writable = writable
    }

    mutating func deadlineExpired(_ deadline: Deadline) -> TimeoutAction {
        guard self.deadline == deadline else { return .none }
        switch deadline {
        case .idle:
            self.input = .stopped
            return .close
        case .head:
            self.reject(.requestTimeout, "request head not received in time")
        case .body:
            self.reject(.requestTimeout, "request body not received in time")
        }
        return .none
    }

    /// Graceful shutdown: finish what is in progress, then close. True: close now.
    mutating func quiesce() -> Bool {
        self.quiescing = true
        if self.responding { self.closeAfterResponse = true }
        if self.input == .idle { self.input = .stopped }
        return !self.responding && self.pending.isEmpty && self.input == .stopped
    }

    /// The peer closed its sending side: answer what was asked, then close. True: close now.
    mutating func inputClosed() -> Bool {
        if self.input == .head || self.input == .body {
            // A request cut off in the middle can never complete.
            self.bodyHead = nil
            self.body = Self.emptyBody
        }
        self.input = .stopped
        if let last = self.pending.indices.last, case .request(let request, _) = self.pending[last] {
            self.pending[last] = .request(request, last: true)
        } else if self.responding {
            self.closeAfterResponse = true
        }
        return !self.responding && self.pending.isEmpty
    }
}
