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
/// | `draining` (an error answer sent, output closed, input read and dropped) | `lingeringCloseTimeout` | nothing kept; `maxBodySize` bytes at most |
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
        /// An error answer is out and the output closed: what the client still sends is read and
        /// dropped until it closes too, so that closing never resets the connection under it.
        case draining
    }

    /// The input deadline in force.
    package enum Deadline: Equatable {
        case idle, head, body, linger
    }

    /// A request read ahead, or an error answer that waits for earlier responses.
    package enum Work {
        /// `last`: the connection closes after its response.
        case request(Request, last: Bool)
        case finalError(HTTPResponseStatus, String)
    }

    /// What the handler does after an event, in this order. Every event returns one (or, for
    /// the two events inside a response, a decision of its own kind).
    package struct Actions {
        /// RFC 9110 section 10.1.1: write `100 Continue` first, since the body will be read now.
        package var sendContinue: HTTPVersion?
        /// Start producing this: run the request's handler, or write the error answer.
        package var start: Work?
        /// Ask the socket for more input (a read was held back until now).
        package var read = false
        /// Change the armed input deadline.
        package var deadline = DeadlineChange.keep
        /// Close the connection (nothing else is then asked).
        package var close = false
        /// Close the output only (send FIN), before any read asked here.
        package var closeOutput = false

        static let closeNow = Actions(close: true)
    }

    /// The input timer the handler must have after an event.
    package enum DeadlineChange: Equatable {
        case keep
        case cancel
        case arm(Deadline)
    }

    /// Whether a response head leaving now says `Connection: close`.
    enum ConnectionHeader: Equatable {
        case keepAlive
        case close
    }

    /// What the handler does when asked to answer `101 Switching Protocols`.
    enum UpgradeAction: Equatable {
        /// This request cannot switch protocols.
        case refuse
        /// Hand the connection over; `resumeReading`: a read was held back, so the new
        /// protocol's handlers must ask for one.
        case switchProtocols(resumeReading: Bool)
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
    /// A read was asked for and held back (``mayRead`` was false).
    private var readHeld = false
    /// The input deadline the handler has armed.
    private(set) var armed: Deadline?
    /// A TLS connection whose handshake has not completed: any deadline then closes it at
    /// once (an answer could not be written before the handshake anyway).
    private(set) var awaitingTLSHandshake: Bool
    /// Bytes dropped while draining.
    private var drained = 0

    package init(maxBodySize: Int, secure: Bool = false) {
        self.maxBodySize = maxBodySize
        self.awaitingTLSHandshake = secure
    }

    /// The connection is active: arm the idle deadline.
    mutating func started() -> Actions { self.settle() }

    /// The TLS handshake completed: deadlines answer as usual from now on.
    mutating func tlsHandshakeCompleted() {
        self.awaitingTLSHandshake = false
    }

    /// Shared by every request without a body: most requests then allocate no body storage.
    private static let emptyBody = ByteBuffer()

    // MARK: Reading

    /// Raw bytes arrived: a head has begun, and its deadline starts now (not at every read).
    package mutating func bytesArrived() -> Actions {
        if self.input == .idle { self.input = .head }
        return self.settle()
    }

    package mutating func receivedHead(_ head: HTTPRequestHead) -> Actions {
        guard self.input == .idle || self.input == .head else { return self.reject(.badRequest, "malformed request") }
        if let (status, reason) = Self.refusal(of: head, maxBodySize: self.maxBodySize) { return self.reject(status, reason) }
        // RFC 9110 section 10.1.1: an HTTP/1.0 request's expectation is ignored (and section 15.2:
        // no 1xx answer goes to an HTTP/1.0 client, which could take it for the final one).
        let expect = (head.version.major, head.version.minor) >= (1, 1) ? head.headers.first(name: "expect") : nil
        if let expect, expect.lowercased() != "100-continue" { return self.reject(.expectationFailed, "unsupported expectation") }
        self.input = .body
        self.bodyHead = head
        self.body = Self.emptyBody
        var actions = self.settle()
        if expect != nil && !self.responding && self.pending.isEmpty { actions.sendContinue = head.version }
        return actions
    }

    package mutating func receivedBodyPart(_ chunk: inout ByteBuffer) -> Actions {
        guard self.input == .body else {
            return self.input == .stopped ? self.settle() : self.reject(.badRequest, "malformed request")
        }
        guard self.body.readableBytes + chunk.readableBytes <= self.maxBodySize else {
            return self.reject(.payloadTooLarge, "request body exceeds \(self.maxBodySize) bytes")
        }
        self.body.writeBuffer(&chunk)
        return self.settle()
    }

    package mutating func receivedEnd(remoteAddress: SocketAddress?, secure: Bool = false) -> Actions {
        guard self.input == .body, let head = self.bodyHead else {
            return self.input == .stopped ? self.settle() : self.reject(.badRequest, "malformed request")
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
        return self.settle()
    }

    /// The parser refused the input (or the request broke a rule): answer once, read no more.
    mutating func reject(_ status: HTTPResponseStatus, _ reason: String) -> Actions {
        if self.input != .stopped {
            self.input = .stopped
            self.bodyHead = nil
            self.body = Self.emptyBody
            self.pending.append(.finalError(status, reason))
        }
        return self.settle()
    }

    /// An error answer has been written. Where the output can be closed alone (not TLS), it
    /// is, and the input is drained until the peer closes, the linger deadline, or `maxBodySize`
    /// bytes (RFC 9112 section 9.6); otherwise the connection closes now.
    mutating func finalAnswerWritten(canHalfClose: Bool) -> Actions {
        guard canHalfClose, self.input != .draining else { return .closeNow }
        self.input = .draining
        self.drained = 0
        var actions = self.settle()
        actions.closeOutput = true
        actions.read = true
        self.readHeld = false
        return actions
    }

    /// `count` bytes arrived while draining: dropped, and past the budget the connection closes.
    mutating func dropped(_ count: Int) -> Actions {
        let (total, overflow) = self.drained.addingReportingOverflow(count)
        self.drained = overflow ? .max : total
        guard self.drained <= self.maxBodySize else {
            self.input = .stopped
            return .closeNow
        }
        return Actions()
    }

    /// Whether bytes read now are requests to parse (not another protocol's, and not dropped).
    var parsesInput: Bool { self.input != .stopped && self.input != .draining }

    /// RFC 9112 and our limits: what no handler should see.
    static func refusal(of head: HTTPRequestHead, maxBodySize: Int) -> (HTTPResponseStatus, String)? {
        var hosts = 0
        for (name, _) in head.headers where ASCIICase.equal(name, "host") { hosts += 1 }
        // RFC 9112 section 3.2: HTTP/1.1 requires exactly one Host; none of any version has two.
        if hosts > 1 || (hosts == 0 && (head.version.major, head.version.minor) >= (1, 1)) {
            return (.badRequest, hosts > 1 ? "more than one Host header" : "missing Host header")
        }
        // RFC 9112 section 3.2: a Host that is not `uri-host [":" port]` is refused (empty is valid).
        if let host = head.headers.first(name: "host"), !HostField.isValid(host) { return (.badRequest, "invalid Host header") }
        // RFC 3986 has no raw backslash in a URI, and browsers read one as a slash: a target
        // with it could turn into "//host" on its way back out (a redirect's Location).
        if head.uri.utf8.contains(UInt8(ascii: "\\")) { return (.badRequest, "backslash in request target") }
        // (Looked up only when present: the common request has none, and the split allocates.)
        let codings = head.headers.contains(name: "transfer-encoding") ? head.headers[canonicalForm: "transfer-encoding"].map { $0.lowercased() } : []
        if let final = codings.last {
            // RFC 9112 section 6.3: a request whose final coding is not chunked has no knowable length.
            guard final == "chunked" else { return (.badRequest, "chunked must be the final transfer coding") }
            // RFC 9112 section 6.1: chunked is the only transfer coding this server understands.
            if codings.count > 1 { return (.notImplemented, "unsupported transfer coding") }
        }
        // The parser has checked the digits; one past Int.max (2^63 and up) is too large, not absent.
        if let length = head.headers.first(name: "content-length").flatMap(ClientNumber.saturating), length > maxBodySize {
            return (.payloadTooLarge, "request body exceeds \(maxBodySize) bytes")
        }
        return nil
    }

    // MARK: Responding

    /// The next request or error answer to produce, if none is in progress.
    private mutating func nextWork() -> Work? {
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
    mutating func responseHeadLeaving(handlerAskedToClose: Bool) -> ConnectionHeader {
        if handlerAskedToClose && !self.closeAfterResponse {
            self.closeAfterResponse = true
            self.input = .stopped
        }
        return self.closeAfterResponse ? .close : .keepAlive
    }

    /// The response ended (`failed`: it could not be completed).
    mutating func responseFinished(failed: Bool) -> Actions {
        guard !self.upgrading else { return Actions() }
        self.responding = false
        return failed || self.closeAfterResponse ? .closeNow : self.settle()
    }

    /// The handler answers 101.
    mutating func upgradeStarted() -> UpgradeAction {
        guard self.currentIsUpgrade, !self.upgrading else { return .refuse }
        self.upgrading = true
        // The input deadlines end here (the handler cancels its timer); reading is the new protocol's.
        self.armed = nil
        defer { self.readHeld = false }
        return .switchProtocols(resumeReading: self.readHeld)
    }

    // MARK: Flow control and deadlines

    /// Whether the socket may be read now: never while the peer leaves our output unread,
    /// after the input stopped, or beyond one request read ahead of the one being answered.
    var mayRead: Bool {
        // Draining drops what it reads: it needs no room for output.
        if self.input == .draining { return true }
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
        case .draining: return .linger
        }
    }

    /// The channel asks to read: granted now, or held back until ``mayRead``.
    mutating func readAsked() -> Actions {
        guard self.mayRead else {
            self.readHeld = true
            return Actions()
        }
        return Actions(read: true)
    }

    mutating func writabilityChanged(_ writable: Bool) -> Actions {
        self.writable = writable
        return self.settle()
    }

    /// The armed deadline's timer fired.
    mutating func deadlineExpired(_ deadline: Deadline) -> Actions {
        self.armed = nil
        if self.awaitingTLSHandshake { return .closeNow }
        guard self.deadline == deadline else { return self.settle() }
        switch deadline {
        case .idle:
            self.input = .stopped
            return .closeNow
        case .head:
            return self.reject(.requestTimeout, "request head not received in time")
        case .body:
            return self.reject(.requestTimeout, "request body not received in time")
        case .linger:
            self.input = .stopped
            return .closeNow
        }
    }

    /// Graceful shutdown: finish what is in progress, then close.
    mutating func quiesce() -> Actions {
        self.quiescing = true
        // A connection that only drains after an error answer has nothing left to finish.
        if self.input == .draining {
            self.input = .stopped
            return .closeNow
        }
        if self.responding { self.closeAfterResponse = true }
        if self.input == .idle { self.input = .stopped }
        return !self.responding && self.pending.isEmpty && self.input == .stopped ? .closeNow : self.settle()
    }

    /// The peer closed its sending side: answer what was asked, then close.
    mutating func inputClosed() -> Actions {
        if self.input == .draining {
            self.input = .stopped
            return .closeNow
        }
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
        return !self.responding && self.pending.isEmpty ? .closeNow : self.settle()
    }

    /// What any state asks for: the next work when none is in progress, a held read once
    /// reading is allowed again, and the deadline the state names.
    private mutating func settle() -> Actions {
        var actions = Actions()
        actions.start = self.nextWork()
        if self.readHeld && self.mayRead {
            self.readHeld = false
            actions.read = true
        }
        let wanted = self.deadline
        if wanted != self.armed {
            self.armed = wanted
            actions.deadline = wanted.map { .arm($0) } ?? .cancel
        }
        return actions
    }
}
