import Mizu
@testable import MizuWebSocket
import NIOCore
import NIOEmbedded
import Testing

@Suite struct ClientOutputLedgerTests {
    let first = ClientAddressKey(try! SocketAddress(ipAddress: "192.0.2.1", port: 1))
    let second = ClientAddressKey(try! SocketAddress(ipAddress: "192.0.2.2", port: 1))
    let loop = EmbeddedEventLoop()

    private func connection() -> WebSocketConnection {
        WebSocketConnection(eventLoop: self.loop, subprotocol: nil, remoteAddress: nil, deflate: nil, sendQueueLimit: nil)
    }

    @Test func withinTheBoundNobodyIsClosed() {
        let ledger = ClientOutputLedger(limit: 100)
        let (a, b) = (self.connection(), self.connection())
        #expect(ledger.report(a, of: self.first, holds: 60).isEmpty)
        #expect(ledger.report(b, of: self.first, holds: 40).isEmpty, "at the bound is within it")
        #expect(ledger.held(by: self.first) == 100)
        #expect(ledger.report(a, of: self.first, holds: 10).isEmpty, "a report replaces the last one")
        #expect(ledger.held(by: self.first) == 50)
    }

    @Test func pastTheBoundTheLargestHoldersCloseNotTheOneThatWroteLast() {
        let ledger = ClientOutputLedger(limit: 100)
        let (large, medium, small) = (self.connection(), self.connection(), self.connection())
        #expect(ledger.report(large, of: self.first, holds: 50).isEmpty)
        #expect(ledger.report(medium, of: self.first, holds: 40).isEmpty)
        let victims = ledger.report(small, of: self.first, holds: 20)
        #expect(victims.map(ObjectIdentifier.init) == [ObjectIdentifier(large)], "110 held: the largest goes, 60 are left")
        #expect(ledger.held(by: self.first) == 60)
        #expect(ledger.report(large, of: self.first, holds: 500).isEmpty, "a holder chosen to close is not counted again")
        #expect(ledger.held(by: self.first) == 60)
    }

    @Test func onePassFreesAQuarterOfTheBoundHoweverSmallEachHolderIs() {
        let ledger = ClientOutputLedger(limit: 100)
        let holders = (0..<11).map { _ in self.connection() }
        for holder in holders.prefix(10) { #expect(ledger.report(holder, of: self.first, holds: 10).isEmpty) }
        let victims = ledger.report(holders[10], of: self.first, holds: 10)
        #expect(victims.count == 4, "110 held: down to 75 or less, not to 100")
        #expect(ledger.held(by: self.first) == 70)
    }

    @Test func clientsAreCountedApartAndForgottenWhenTheirLastHolderEnds() {
        let ledger = ClientOutputLedger(limit: 100)
        let (a, b, c) = (self.connection(), self.connection(), self.connection())
        #expect(ledger.report(a, of: self.first, holds: 90).isEmpty)
        #expect(ledger.report(b, of: self.second, holds: 90).isEmpty, "one client's bytes do not count against another")
        #expect(ledger.clientCount == 2)
        #expect(ledger.report(a, of: self.first, holds: 0).isEmpty)
        #expect(ledger.clientCount == 1)
        #expect(ledger.held(by: self.first) == 0)
        // A closed holder's last report forgets it, chosen to close or not.
        #expect(!ledger.report(c, of: self.second, holds: 50).isEmpty)
        #expect(ledger.report(b, of: self.second, holds: 0).isEmpty)
        #expect(ledger.report(c, of: self.second, holds: 0).isEmpty)
        #expect(ledger.clientCount == 0)
    }

    @Test func onlyAServersEndpointKeepsALedger() {
        var configuration = WebSocketConfiguration()
        #expect(WebSocketSettings(configuration).outputLedger == nil, "unbounded by default")
        configuration.maxQueuedBytesPerClient = 4096
        #expect(WebSocketSettings(configuration).outputLedger?.limit == 4096)
        #expect(WebSocketSettings(configuration, role: .client).outputLedger == nil, "a client's connections share one peer")
    }
}
