@testable import MizuWebSocket
import MizuTestSupport
import Testing

/// The WebSocket connection's close lifecycle and read gate, without sockets.
@Suite(.timeLimit(.minutes(10))) struct WebSocketConnectionStateMachineTests {
    @Test func thePeersCloseIsAnsweredThenTCPCloses() {
        var machine = WebSocketConnectionStateMachine()
        let outcome1 = machine.peerSentClose(code: 1000, reason: "bye")
        #expect(outcome1 == .sendClose(code: 1000, reason: "", thenCloseTCP: true))
        #expect(machine.state == .closing && machine.awaitsClose && !machine.sends && !machine.receives)
        let outcome2 = machine.peerSentClose(code: 1000, reason: "")
        #expect(outcome2 == .none)
        let outcome3 = machine.channelClosed()
        #expect(outcome3 == .peerClosed(code: 1000, reason: "bye"))
        let outcome4 = machine.channelClosed()
        #expect(outcome4 == nil, "reported exactly once")
    }

    @Test func aCloseWeStartWaitsForThePeerWithinTheDeadline() {
        var machine = WebSocketConnectionStateMachine()
        let outcome5 = machine.closeRequested(code: 1001, reason: "going", as: .serverShutdown)
        #expect(outcome5 == .sendClose(code: 1001, reason: "going", thenCloseTCP: false))
        #expect(machine.state == .closeSent && machine.awaitsClose && machine.receives && !machine.sends)
        let outcome6 = machine.closeRequested(code: 1000, reason: "", as: .serverClosed(code: 1000, reason: ""))
        #expect(outcome6 == .none)
        let outcome7 = machine.peerSentClose(code: 1001, reason: "")
        #expect(outcome7 == .closeTCP)
        let outcome8 = machine.channelClosed()
        #expect(outcome8 == .serverShutdown)
    }

    @Test func aViolationClosesWithItsCodeAndTheFirstReasonWins() {
        var machine = WebSocketConnectionStateMachine()
        let outcome9 = machine.protocolViolation(code: 1007, reason: "invalid UTF-8")
        #expect(outcome9 == .sendClose(code: 1007, reason: "invalid UTF-8", thenCloseTCP: true))
        let outcome10 = machine.abort(.writeTimeout)
        #expect(outcome10 == .closeTCP, "the close deadline ends it even if the close frame never leaves")
        let outcome11 = machine.channelClosed()
        #expect(outcome11 == .protocolViolation(code: 1007, reason: "invalid UTF-8"))

        var closing = WebSocketConnectionStateMachine()
        _ = closing.closeRequested(code: 1000, reason: "", as: .serverClosed(code: 1000, reason: ""))
        let outcome12 = closing.protocolViolation(code: 1002, reason: "x")
        #expect(outcome12 == .closeTCP, "no second close frame")
    }

    @Test func anAbortWithoutAReasonIsAConnectionLost() {
        var machine = WebSocketConnectionStateMachine()
        let outcome13 = machine.abort(nil)
        #expect(outcome13 == .closeTCP)
        let outcome14 = machine.channelClosed()
        #expect(outcome14 == .connectionLost)
    }

    @Test func readingStopsWhileUnwritableOrTheApplicationIsBehind() {
        var machine = WebSocketConnectionStateMachine()
        #expect(machine.mayRead)
        machine.writabilityChanged(false)
        #expect(!machine.mayRead)
        machine.applicationReading(false)
        machine.writabilityChanged(true)
        #expect(!machine.mayRead)
        machine.applicationReading(true)
        #expect(machine.mayRead)
        _ = machine.peerSentClose(code: nil, reason: "")
        #expect(!machine.mayRead, "nothing is read once closing")
    }
}

@Suite(.timeLimit(.minutes(10))) struct CloseReasonLoggingTests {
    @Test func aPeersReasonIsEscapedWhereverItIsPrinted() {
        let forged = "bye\nERROR root shell opened"
        #expect(!"\(WebSocketCloseReason.peerClosed(code: 4000, reason: forged))".contains("\n"))
    }
}
