@testable import Mizu
@testable import MizuHTTP
import NIOCore
import NIOHTTP1
import Testing

/// The HTTP connection's states, deadlines and read gate, without sockets.
@Suite(.timeLimit(.minutes(10))) struct HTTPConnectionStateMachineTests {
    private func head(_ method: HTTPMethod = .GET, version: HTTPVersion = .http1_1, _ headers: [(String, String)] = [("host", "x")], uri: String = "/") -> HTTPRequestHead {
        HTTPRequestHead(version: version, method: method, uri: uri, headers: HTTPHeaders(headers))
    }

    private func request(_ machine: inout HTTPConnectionStateMachine, _ head: HTTPRequestHead) {
        machine.bytesArrived()
        let outcome1 = machine.receivedHead(head)
        #expect(outcome1 == .none)
        machine.receivedEnd(remoteAddress: nil)
    }

    @Test func eachInputStateNamesItsDeadline() {
        var machine = HTTPConnectionStateMachine(maxBodySize: 100)
        #expect(machine.deadline == .idle)
        machine.bytesArrived()
        #expect(machine.deadline == .head)
        machine.bytesArrived()
        #expect(machine.deadline == .head, "more bytes of the same head do not restart anything")
        _ = machine.receivedHead(self.head(.POST, [("host", "x"), ("content-length", "5")]))
        #expect(machine.deadline == .body)
        var chunk = ByteBuffer(string: "hello")
        machine.receivedBodyPart(&chunk)
        machine.receivedEnd(remoteAddress: nil)
        #expect(machine.deadline == nil, "the request waits to run")
        guard case .request(let request, let last) = machine.nextWork() else {
            Issue.record("no request")
            return
        }
        #expect(request.bodyString == "hello" && !last)
        #expect(machine.deadline == nil, "the handler's time is its own")
        let outcome2 = machine.responseFinished(failed: false)
        #expect(outcome2 == false)
        #expect(machine.deadline == .idle)
    }

    @Test func anExpiredDeadlineAnswers408OrCloses() {
        var machine = HTTPConnectionStateMachine(maxBodySize: 100)
        let outcome3 = machine.deadlineExpired(.idle)
        #expect(outcome3 == .close)
        machine = HTTPConnectionStateMachine(maxBodySize: 100)
        machine.bytesArrived()
        _ = machine.receivedHead(self.head(.POST, [("host", "x"), ("content-length", "5")]))
        let outcome4 = machine.deadlineExpired(.head)
        #expect(outcome4 == .none, "a deadline no longer in force does nothing")
        #expect(machine.input == .body)
        let outcome5 = machine.deadlineExpired(.body)
        #expect(outcome5 == .none)
        guard case .finalError(let status, _) = machine.nextWork() else {
            Issue.record("no 408")
            return
        }
        #expect(status == .requestTimeout)
        #expect(machine.input == .stopped && !machine.mayRead)
    }

    @Test func readingStopsAfterUpgradeAndCONNECTAndWhileUnwritable() {
        for head in [self.head(.GET, [("host", "x"), ("upgrade", "websocket"), ("connection", "upgrade")]), self.head(.CONNECT, uri: "h:22")] {
            var machine = HTTPConnectionStateMachine(maxBodySize: 100)
            self.request(&machine, head)
            #expect(machine.input == .stopped)
            #expect(!machine.mayRead)
            guard case .request(_, let last) = machine.nextWork() else { return }
            #expect(last, "the parser stopped: nothing can follow on this connection")
            let upgrades = machine.upgradeStarted()
            #expect(upgrades == (head.method == .GET), "CONNECT is not answered by switching protocols")
        }
        var machine = HTTPConnectionStateMachine(maxBodySize: 100)
        #expect(machine.mayRead)
        machine.writabilityChanged(false)
        #expect(!machine.mayRead, "a peer that does not read our answers gets no more read")
        machine.writabilityChanged(true)
        #expect(machine.mayRead)
    }

    @Test func atMostOneRequestIsReadAhead() {
        var machine = HTTPConnectionStateMachine(maxBodySize: 100)
        self.request(&machine, self.head())
        _ = machine.nextWork()
        #expect(machine.mayRead, "one request may be read while the first is answered")
        self.request(&machine, self.head())
        #expect(!machine.mayRead)
        _ = machine.responseFinished(failed: false)
        _ = machine.nextWork()
        #expect(machine.mayRead)
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

        var machine = HTTPConnectionStateMachine(maxBodySize: 100)
        self.request(&machine, self.head(.POST, version: .http1_0, [("connection", "keep-alive"), ("transfer-encoding", "chunked")]))
        guard case .request(_, let last) = machine.nextWork() else { return }
        #expect(last, "HTTP/1.0 with Transfer-Encoding: close after the response")
    }

    @Test func aBodyPastTheLimitIsRefusedAndNothingMoreIsRead() {
        var machine = HTTPConnectionStateMachine(maxBodySize: 4)
        machine.bytesArrived()
        _ = machine.receivedHead(self.head(.POST, [("host", "x"), ("transfer-encoding", "chunked")]))
        var chunk = ByteBuffer(string: "12345")
        machine.receivedBodyPart(&chunk)
        guard case .finalError(let status, _) = machine.nextWork() else { return }
        #expect(status == .payloadTooLarge)
        #expect(!machine.mayRead)
    }

    @Test func quiesceAndHalfCloseFinishWhatWasAskedThenClose() {
        var idle = HTTPConnectionStateMachine(maxBodySize: 100)
        let outcome6 = idle.quiesce()
        #expect(outcome6, "nothing in progress: close now")
        var busy = HTTPConnectionStateMachine(maxBodySize: 100)
        self.request(&busy, self.head())
        _ = busy.nextWork()
        let outcome7 = busy.quiesce()
        #expect(!outcome7)
        let outcome8 = busy.responseHeadLeaving(handlerAskedToClose: false)
        #expect(outcome8, "the answer says Connection: close")
        let outcome9 = busy.responseFinished(failed: false)
        #expect(outcome9)

        var halfClosed = HTTPConnectionStateMachine(maxBodySize: 100)
        self.request(&halfClosed, self.head())
        _ = halfClosed.nextWork()
        self.request(&halfClosed, self.head())
        let outcome10 = halfClosed.inputClosed()
        #expect(!outcome10)
        let outcome11 = halfClosed.responseFinished(failed: false)
        #expect(!outcome11)
        guard case .request(_, let last) = halfClosed.nextWork() else { return }
        #expect(last, "the request read ahead is answered, then the connection closes")
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
