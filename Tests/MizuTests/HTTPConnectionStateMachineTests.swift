@testable import Mizu
@testable import MizuHTTP
import NIOCore
import NIOHTTP1
import Testing

/// The HTTP connection's states, deadlines and read gate, without sockets: every event is
/// answered by what the handler must do, written here as a short summary.
@Suite(.timeLimit(.minutes(10))) struct HTTPConnectionStateMachineTests {
    private func head(_ method: HTTPMethod = .GET, version: HTTPVersion = .http1_1, _ headers: [(String, String)] = [("host", "x")], uri: String = "/") -> HTTPRequestHead {
        HTTPRequestHead(version: version, method: method, uri: uri, headers: HTTPHeaders(headers))
    }

    /// `Actions` as words, in the order the handler carries them out: "100", "request",
    /// "request(last)", "error 408", "read", "arm idle", "cancel", "close".
    private func said(_ actions: HTTPConnectionStateMachine.Actions) -> String {
        var words: [String] = []
        if actions.sendContinue != nil { words.append("100") }
        if actions.close { words.append("close") }
        if actions.closeOutput { words.append("close-output") }
        switch actions.start {
        case .request(_, let last)?: words.append(last ? "request(last)" : "request")
        case .finalError(let status, _)?: words.append("error \(status.code)")
        case nil: break
        }
        if actions.read { words.append("read") }
        switch actions.deadline {
        case .keep: break
        case .cancel: words.append("cancel")
        case .arm(let deadline): words.append("arm \(deadline)")
        }
        return words.joined(separator: " ")
    }

    /// A whole request without a body; what its end asked for.
    private func request(_ machine: inout HTTPConnectionStateMachine, _ head: HTTPRequestHead) -> String {
        _ = machine.bytesArrived()
        _ = machine.receivedHead(head)
        return self.said(machine.receivedEnd(remoteAddress: nil))
    }

    @Test func eachInputStateArmsItsDeadlineOnceAndTheHandlersTimeIsItsOwn() {
        var machine = HTTPConnectionStateMachine(maxBodySize: 100)
        #expect(self.said(machine.started()) == "arm idle")
        #expect(self.said(machine.started()) == "", "armed already: nothing to do")
        #expect(self.said(machine.bytesArrived()) == "arm head", "the head's deadline starts at its first byte")
        #expect(self.said(machine.bytesArrived()) == "", "more bytes of the same head restart nothing")
        #expect(self.said(machine.receivedHead(self.head(.POST, [("host", "x"), ("content-length", "5")]))) == "arm body")
        var chunk = ByteBuffer(string: "hello")
        #expect(self.said(machine.receivedBodyPart(&chunk)) == "")
        let end = machine.receivedEnd(remoteAddress: nil)
        #expect(self.said(end) == "request cancel", "the handler runs on its own time")
        guard case .request(let request, _)? = end.start else { return }
        #expect(request.bodyString == "hello")
        #expect(self.said(machine.responseFinished(failed: false)) == "arm idle")
        #expect(self.said(machine.responseFinished(failed: true)) == "close", "a response cut short ends the connection")
    }

    @Test func anExpiredDeadlineAnswers408OrClosesAndAStaleOneReArms() {
        var machine = HTTPConnectionStateMachine(maxBodySize: 100)
        _ = machine.started()
        #expect(self.said(machine.deadlineExpired(.idle)) == "close")
        machine = HTTPConnectionStateMachine(maxBodySize: 100)
        _ = machine.bytesArrived()
        _ = machine.receivedHead(self.head(.POST, [("host", "x"), ("content-length", "5")]))
        #expect(self.said(machine.deadlineExpired(.head)) == "arm body", "a deadline no longer in force: the one in force is armed")
        #expect(machine.input == .body)
        #expect(self.said(machine.deadlineExpired(.body)) == "error 408")
        #expect(machine.input == .stopped && !machine.mayRead)
        var tls = HTTPConnectionStateMachine(maxBodySize: 100, secure: true)
        _ = tls.bytesArrived()
        #expect(self.said(tls.deadlineExpired(.head)) == "close", "no answer can be written before the TLS handshake")
        var handshaken = HTTPConnectionStateMachine(maxBodySize: 100, secure: true)
        handshaken.tlsHandshakeCompleted()
        _ = handshaken.bytesArrived()
        #expect(self.said(handshaken.deadlineExpired(.head)) == "error 408")
    }

    @Test func aHeldReadIsGrantedWhenReadingIsAllowedAgain() {
        var machine = HTTPConnectionStateMachine(maxBodySize: 100)
        #expect(self.said(machine.readAsked()) == "read")
        _ = machine.started()
        #expect(self.said(machine.writabilityChanged(false)) == "")
        #expect(self.said(machine.readAsked()) == "", "a peer that does not read our answers gets no more read")
        #expect(self.said(machine.writabilityChanged(true)) == "read", "the held read, once")
        #expect(self.said(machine.writabilityChanged(true)) == "")
    }

    @Test func readingStopsAfterUpgradeAndCONNECT() {
        for head in [self.head(.GET, [("host", "x"), ("upgrade", "websocket"), ("connection", "upgrade")]), self.head(.CONNECT, uri: "h:22")] {
            var machine = HTTPConnectionStateMachine(maxBodySize: 100)
            _ = machine.started()
            #expect(self.request(&machine, head) == "request(last) cancel", "the parser stopped: nothing can follow")
            #expect(machine.input == .stopped && !machine.mayRead)
            #expect(self.said(machine.readAsked()) == "")
            let upgrade = machine.upgradeStarted()
            #expect(upgrade == (head.method == .GET ? .switchProtocols(resumeReading: true) : .refuse), "CONNECT is not answered by switching protocols")
        }
    }

    @Test func atMostOneRequestIsReadAheadAndTheNextStartsWhenTheFirstEnds() {
        var machine = HTTPConnectionStateMachine(maxBodySize: 100)
        _ = machine.started()
        #expect(self.request(&machine, self.head()) == "request cancel")
        #expect(machine.mayRead, "one request may be read while the first is answered")
        #expect(self.request(&machine, self.head()) == "cancel", "read ahead: it waits, on no deadline but the running one's")
        #expect(!machine.mayRead)
        #expect(self.said(machine.readAsked()) == "")
        #expect(self.said(machine.responseFinished(failed: false)) == "request read", "the second runs, and the held read is granted")
        #expect(self.said(machine.responseFinished(failed: false)) == "arm idle")
    }

    @Test func expectContinueIsAnsweredOnlyWhenTheBodyWillBeReadNow() {
        var machine = HTTPConnectionStateMachine(maxBodySize: 100)
        _ = machine.bytesArrived()
        #expect(self.said(machine.receivedHead(self.head(.POST, [("host", "x"), ("content-length", "2"), ("expect", "100-continue")]))) == "100 arm body")
        var refused = HTTPConnectionStateMachine(maxBodySize: 100)
        _ = refused.bytesArrived()
        #expect(self.said(refused.receivedHead(self.head(.POST, [("host", "x"), ("expect", "teapot")]))) == "error 417 cancel")
        var busy = HTTPConnectionStateMachine(maxBodySize: 100)
        _ = self.request(&busy, self.head())
        _ = busy.bytesArrived()
        #expect(self.said(busy.receivedHead(self.head(.POST, [("host", "x"), ("content-length", "2"), ("expect", "100-continue")]))) == "arm body",
                "a pipelined body waits for the response before it: no 100 yet")
        // RFC 9110 sections 10.1.1 and 15.2: HTTP/1.0's expectations are ignored, and it gets no 1xx.
        var old = HTTPConnectionStateMachine(maxBodySize: 100)
        _ = old.bytesArrived()
        #expect(self.said(old.receivedHead(self.head(.POST, version: .http1_0, [("content-length", "2"), ("expect", "100-continue")]))) == "arm body")
        var oldTeapot = HTTPConnectionStateMachine(maxBodySize: 100)
        _ = oldTeapot.bytesArrived()
        #expect(self.said(oldTeapot.receivedHead(self.head(.POST, version: .http1_0, [("content-length", "2"), ("expect", "teapot")]))) == "arm body")
    }

    @Test func anErrorAnswerIsFollowedByDrainingTheInputWithinItsBounds() {
        func refused() -> HTTPConnectionStateMachine {
            var machine = HTTPConnectionStateMachine(maxBodySize: 100)
            _ = machine.bytesArrived()
            _ = machine.receivedHead(self.head(.POST, [("host", "x"), ("content-length", "101")]))
            return machine
        }
        // RFC 9112 section 9.6: the output closes, the input is read and dropped, the linger runs.
        var machine = refused()
        #expect(self.said(machine.finalAnswerWritten(canHalfClose: true)) == "close-output read arm linger")
        #expect(self.said(machine.readAsked()) == "read", "reads go on while draining, whatever the output")
        #expect(self.said(machine.dropped(60)) == "")
        #expect(self.said(machine.dropped(41)) == "close", "past maxBodySize bytes dropped")
        var lingering = refused()
        _ = lingering.finalAnswerWritten(canHalfClose: true)
        #expect(self.said(lingering.deadlineExpired(.linger)) == "close")
        var peerDone = refused()
        _ = peerDone.finalAnswerWritten(canHalfClose: true)
        #expect(self.said(peerDone.inputClosed()) == "close")
        var shuttingDown = refused()
        _ = shuttingDown.finalAnswerWritten(canHalfClose: true)
        #expect(self.said(shuttingDown.quiesce()) == "close")
        // TLS (no half-close of its own here): closed at once, as before.
        var secure = refused()
        #expect(self.said(secure.finalAnswerWritten(canHalfClose: false)) == "close")
    }

    @Test func aHostThatIsNotUriHostAndPortIsRefused() {
        for valid in ["x", "", "example.com:8080", "127.0.0.1:", "[::1]", "[::1]:443", "a%20b", "xn--bcher-kva.example", "a!$&'()*+,;=b"] {
            #expect(HostField.isValid(valid), "\(valid.debugDescription)")
            #expect(HTTPConnectionStateMachine.refusal(of: self.head(.GET, [("host", valid)]), maxBodySize: 100) == nil, "\(valid.debugDescription)")
        }
        for invalid in ["a b", "x/y", "x@y", "x:abc", "[::1", "[]", "\u{FF}", "x?y#z", "a%2", "a%zz", "[::1]x", "x:80:80"] {
            #expect(!HostField.isValid(invalid), "\(invalid.debugDescription)")
            #expect(HTTPConnectionStateMachine.refusal(of: self.head(.GET, [("host", invalid)]), maxBodySize: 100)?.1 == "invalid Host header")
        }
    }

    @Test func framingRulesOfRFC9112() {
        func refusal(_ version: HTTPVersion, _ headers: [(String, String)]) -> HTTPResponseStatus? {
            HTTPConnectionStateMachine.refusal(of: self.head(.POST, version: version, headers), maxBodySize: 100)?.0
        }
        #expect(refusal(.http1_1, []) == .badRequest)
        #expect(refusal(.http1_0, []) == nil)
        #expect(refusal(.http1_1, [("host", "a"), ("host", "b")]) == .badRequest)
        #expect(refusal(.http1_1, [("host", "a"), ("transfer-encoding", "gzip, chunked")]) == .notImplemented)
        #expect(refusal(.http1_1, [("host", "a"), ("transfer-encoding", "gzip")]) == .badRequest)
        #expect(refusal(.http1_1, [("host", "a"), ("transfer-encoding", "chunked")]) == nil)
        #expect(refusal(.http1_1, [("host", "a"), ("content-length", "101")]) == .payloadTooLarge)
        #expect(refusal(.http1_1, [("host", "a"), ("content-length", "100")]) == nil)
        // Past Int.max (the parser takes up to 2^64 - 1): too large at once, not a body
        // awaited until the input deadline (a 408 after 30 s).
        for huge in ["9223372036854775808", "18446744073709551615", "99999999999999999999999"] {
            #expect(refusal(.http1_1, [("host", "a"), ("content-length", huge)]) == .payloadTooLarge, "\(huge)")
        }

        var machine = HTTPConnectionStateMachine(maxBodySize: 100)
        #expect(self.request(&machine, self.head(.POST, version: .http1_0, [("connection", "keep-alive"), ("transfer-encoding", "chunked")])) == "request(last) cancel",
                "HTTP/1.0 with Transfer-Encoding: close after the response")
    }

    @Test func aBodyPastTheLimitIsRefusedAndNothingMoreIsRead() {
        var machine = HTTPConnectionStateMachine(maxBodySize: 4)
        _ = machine.bytesArrived()
        _ = machine.receivedHead(self.head(.POST, [("host", "x"), ("transfer-encoding", "chunked")]))
        var chunk = ByteBuffer(string: "12345")
        #expect(self.said(machine.receivedBodyPart(&chunk)) == "error 413 cancel")
        #expect(!machine.mayRead)
        var more = ByteBuffer(string: "6")
        #expect(self.said(machine.receivedBodyPart(&more)) == "", "answered once")
        #expect(self.said(machine.reject(.badRequest, "again")) == "", "answered once")
    }

    @Test func quiesceAndHalfCloseFinishWhatWasAskedThenClose() {
        var idle = HTTPConnectionStateMachine(maxBodySize: 100)
        #expect(self.said(idle.quiesce()) == "close", "nothing in progress: close now")
        var busy = HTTPConnectionStateMachine(maxBodySize: 100)
        _ = self.request(&busy, self.head())
        #expect(self.said(busy.quiesce()) == "")
        #expect(busy.responseHeadLeaving(handlerAskedToClose: false) == .close, "the answer says Connection: close")
        #expect(self.said(busy.responseFinished(failed: false)) == "close")

        var asked = HTTPConnectionStateMachine(maxBodySize: 100)
        _ = self.request(&asked, self.head())
        #expect(asked.responseHeadLeaving(handlerAskedToClose: false) == .keepAlive)
        #expect(asked.responseHeadLeaving(handlerAskedToClose: true) == .close, "the handler's Connection: close makes it the last")
        #expect(self.said(asked.responseFinished(failed: false)) == "close")

        var halfClosed = HTTPConnectionStateMachine(maxBodySize: 100)
        _ = self.request(&halfClosed, self.head())
        _ = self.request(&halfClosed, self.head())
        #expect(self.said(halfClosed.inputClosed()) == "")
        #expect(self.said(halfClosed.responseFinished(failed: false)) == "request(last)", "the request read ahead is answered, then the connection closes")
        #expect(self.said(halfClosed.responseFinished(failed: false)) == "close")
    }
}

@Suite(.timeLimit(.minutes(10))) struct LogSafeTests {
    @Test func clientStringsCannotForgeLogLines() {
        #expect("\(LogSafe("bye\n2026-11-30 error admin logged in"))" == #"bye\n2026-11-30 error admin logged in"#)
        #expect("\(LogSafe("a\r\t\"\\\u{7}\u{2028}b"))" == #"a\r\t\"\\\u{7}\u{2028}b"#)
        #expect("\(LogSafe("ünïcödé ok"))" == "ünïcödé ok")
        #expect("\(LogSafe(String(repeating: "x", count: 300), limit: 10))" == "xxxxxxxxxx...")
    }
}
