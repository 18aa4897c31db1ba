@testable import MizuLive
import MizuWebSocket
import Testing

/// The session's close lifecycle alone: who decides, what onClose reports, what the
/// connection is told (once).
@Suite struct SessionCloseStateTests {
    @Test func theServersReasonWinsOverWhatTheConnectionSaysLater() {
        var state = SessionCloseState()
        #expect(state.fail(.queueFull) == .closeAsSlowConsumer)
        #expect(state.isClosed && state.phase == .closing)
        let ended = state.connectionEnded(.connectionLost)
        #expect(ended)
        #expect(state.error == .queueFull && state.phase == .finished)
    }

    @Test func eachServerReasonTellsTheConnectionItsOwnWay() {
        var shutdown = SessionCloseState()
        #expect(shutdown.fail(.serverShutdown) == .closeForShutdown)
        var other = SessionCloseState()
        #expect(other.fail(.writeTimeout) == .close(code: 1011, reason: "write timeout"))
        var clean = SessionCloseState()
        #expect(clean.close() == .close(code: 1000, reason: ""))
    }

    @Test func onlyTheFirstDecisionCounts() {
        var state = SessionCloseState()
        #expect(state.close() != nil)
        #expect(state.fail(.serverShutdown) == nil, "the app closed first: no second command")
        #expect(state.close() == nil)
        let ended = state.connectionEnded(.serverClosed(code: 1000, reason: ""))
        #expect(ended)
        #expect(state.error == nil, "a clean close, whatever came after")
    }

    @Test func whenTheConnectionEndsFirstItsReasonIsTheSessions() {
        var peer = SessionCloseState()
        let first = peer.connectionEnded(.peerClosed(code: 4000, reason: "bye"))
        #expect(first)
        #expect(peer.error == .closedByPeer(code: 4000, reason: "bye"))
        #expect(peer.fail(.queueFull) == nil && peer.error == .closedByPeer(code: 4000, reason: "bye"))
        let second = peer.connectionEnded(.connectionLost)
        #expect(!second, "reported once")

        var goingAway = SessionCloseState()
        _ = goingAway.connectionEnded(.peerClosed(code: 1001, reason: ""))
        #expect(goingAway.error == nil)
        var tooLarge = SessionCloseState()
        _ = tooLarge.connectionEnded(.protocolViolation(code: 1009, reason: "too big"))
        #expect(tooLarge.error == .messageTooLarge)
    }
}
