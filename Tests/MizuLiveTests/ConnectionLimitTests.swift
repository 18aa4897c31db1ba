import Foundation
import Mizu
@testable import MizuLive
import MizuTestSupport
import NIOCore
import Testing

/// Admission limits: sessions in total and per client, and the handshake rate per client.
@Suite(.timeLimit(.minutes(10))) struct ConnectionLimitTests {
    private func limiter(total: Int = 100, perClient: Int = 100, rate: Double = 1_000, burst: Int = 1_000) -> ConnectionLimiter {
        ConnectionLimiter(.init(maxSessions: total, maxSessionsPerClient: perClient, connectsPerSecond: rate, connectBurst: burst))
    }

    private func v4(_ text: String) -> SocketAddress { try! SocketAddress(ipAddress: text, port: 1234) }

    private func ticket(_ decision: ConnectionLimiter.Decision) -> ConnectionLimiter.Ticket? {
        if case .admitted(let ticket) = decision { return ticket }
        return nil
    }

    @Test func theTotalCapRefusesUntilAPlaceIsGivenBack() throws {
        let limiter = self.limiter(total: 2)
        let first = try #require(self.ticket(limiter.admit(self.v4("10.0.0.1"))))
        #expect(self.ticket(limiter.admit(self.v4("10.0.0.2"))) != nil)
        guard case .tooManySessions(let retryAfter) = limiter.admit(self.v4("10.0.0.3")) else {
            Issue.record("the third session was admitted")
            return
        }
        #expect((5...15).contains(retryAfter))
        first.release()
        first.release()  // twice: given back once
        #expect(limiter.sessionCount == 1)
        #expect(self.ticket(limiter.admit(self.v4("10.0.0.3"))) != nil)
        #expect(self.ticket(limiter.admit(self.v4("10.0.0.4"))) == nil)
    }

    @Test func eachClientHasItsOwnCapAndAnIPv6ClientIsItsSlash64() throws {
        let limiter = self.limiter(perClient: 1)
        #expect(self.ticket(limiter.admit(self.v4("10.0.0.1"))) != nil)
        #expect(self.ticket(limiter.admit(self.v4("10.0.0.1"))) == nil)
        #expect(self.ticket(limiter.admit(self.v4("10.0.0.2"))) != nil)
        #expect(self.ticket(limiter.admit(try SocketAddress(ipAddress: "2001:db8:1:2::1", port: 1))) != nil)
        #expect(self.ticket(limiter.admit(try SocketAddress(ipAddress: "2001:db8:1:2:ffff::9", port: 1))) == nil, "same /64")
        #expect(self.ticket(limiter.admit(try SocketAddress(ipAddress: "2001:db8:1:3::1", port: 1))) != nil, "another /64")
    }

    @Test func ipv4MappedAddressesAreTheirIPv4Client() throws {
        // A dual-stack listener (`::`) sees IPv4 clients as ::ffff:a.b.c.d: each its own client,
        // and the same client as when it came over IPv4.
        let limiter = self.limiter(perClient: 1)
        #expect(self.ticket(limiter.admit(try SocketAddress(ipAddress: "::ffff:127.0.0.2", port: 1))) != nil)
        #expect(self.ticket(limiter.admit(try SocketAddress(ipAddress: "::ffff:127.0.0.3", port: 1))) != nil, "another IPv4 client")
        #expect(self.ticket(limiter.admit(try SocketAddress(ipAddress: "::ffff:127.0.0.2", port: 2))) == nil, "the same client")
        #expect(self.ticket(limiter.admit(self.v4("127.0.0.2"))) == nil, "the same client over IPv4")
        #expect(self.ticket(limiter.admit(try SocketAddress(ipAddress: "::1", port: 1))) != nil)
        #expect(ConnectionLimiter.ClientKey(try SocketAddress(ipAddress: "::ffff:10.1.2.3", port: 1))
            == ConnectionLimiter.ClientKey(self.v4("10.1.2.3")))
    }

    @Test func handshakesPastTheRateWaitForATokenAndAreToldHowLong() throws {
        let limiter = self.limiter(rate: 2, burst: 3)
        let start = NIODeadline.now()
        for _ in 0..<3 { #expect(self.ticket(limiter.admit(self.v4("10.0.0.1"), now: start)) != nil) }
        #expect(limiter.admit(self.v4("10.0.0.1"), now: start) == .tooManyConnects(retryAfter: 1))
        #expect(self.ticket(limiter.admit(self.v4("10.0.0.2"), now: start)) != nil, "other clients are not slowed")
        #expect(self.ticket(limiter.admit(self.v4("10.0.0.1"), now: start + .milliseconds(499))) == nil)
        #expect(self.ticket(limiter.admit(self.v4("10.0.0.1"), now: start + .milliseconds(1_000))) != nil, "half a second made a token")
        let slow = self.limiter(rate: 0.1, burst: 1)
        #expect(self.ticket(slow.admit(self.v4("10.0.0.1"), now: start)) != nil)
        #expect(slow.admit(self.v4("10.0.0.1"), now: start) == .tooManyConnects(retryAfter: 10))
    }

    @Test func oneClientsMessagesArePacedTogetherAndOwedTurnsQueue() throws {
        let limiter = ConnectionLimiter(.init(
            maxSessions: 100, maxSessionsPerClient: 100, connectsPerSecond: 1_000, connectBurst: 1_000,
            messagesPerSecond: 2, messageBurst: 3))
        let start = NIODeadline.now()
        let (a, b) = (ConnectionLimiter.ClientKey(self.v4("10.0.0.1")), ConnectionLimiter.ClientKey(self.v4("10.0.0.2")))
        #expect(limiter.takeMessageTurn(a, now: start) == nil, "a client without a session is not tracked, not paced")
        let sessions = [self.v4("10.0.0.1"), self.v4("10.0.0.1"), self.v4("10.0.0.2")].compactMap { self.ticket(limiter.admit($0, now: start)) }
        #expect(sessions.count == 3)
        for _ in 0..<3 { #expect(limiter.takeMessageTurn(a, now: start) == nil, "a burst") }
        #expect(limiter.takeMessageTurn(a, now: start) == .milliseconds(500))
        #expect(limiter.takeMessageTurn(a, now: start) == .seconds(1), "the next turn comes a token later")
        #expect(limiter.takeMessageTurn(b, now: start) == nil, "another client is not paced")
        // A second later two tokens came, both owed: the next turn is half a second away.
        #expect(limiter.takeMessageTurn(a, now: start + .seconds(1)) == .milliseconds(500))
        // After a long quiet the bucket is full again, and no fuller.
        let later = start + .seconds(100)
        for _ in 0..<3 { #expect(limiter.takeMessageTurn(a, now: later) == nil) }
        #expect(limiter.takeMessageTurn(a, now: later) == .milliseconds(500))
        // A turn given back (its session closed while it waited) shortens the next wait.
        limiter.returnMessageTurn(a)
        #expect(limiter.takeMessageTurn(a, now: later) == .milliseconds(500))
        // A clock read before another thread's (the lock taken later) never moves the refill back.
        #expect(limiter.takeMessageTurn(a, now: later - .seconds(50)) == .seconds(1))
        let unpaced = ConnectionLimiter(.init(maxSessions: 10, maxSessionsPerClient: 10, connectsPerSecond: 1, connectBurst: 1))
        _ = unpaced.admit(self.v4("10.0.0.1"), now: start)
        for _ in 0..<100 { #expect(unpaced.takeMessageTurn(a, now: start) == nil) }
    }

    @Test func aClientThatOwesMessageTurnsIsNotForgotten() throws {
        let limiter = ConnectionLimiter(.init(
            maxSessions: 1_000_000, maxSessionsPerClient: 10, connectsPerSecond: 1_000, connectBurst: 1,
            messagesPerSecond: 1, messageBurst: 1))
        let start = NIODeadline.now()
        let owing = ConnectionLimiter.ClientKey(self.v4("10.9.9.9"))
        let session = try #require(self.ticket(limiter.admit(self.v4("10.9.9.9"), now: start)))
        for _ in 0..<100 { _ = limiter.takeMessageTurn(owing, now: start) }
        session.release()
        // Others come and go (each sweep keeps those still refilling), then more 10 s later,
        // when the first ones' buckets are full: the table is swept of them.
        for index in 0..<1_100 {
            self.ticket(limiter.admit(self.v4("10.1.\(index / 256).\(index % 256)"), now: start + .seconds(1)))?.release()
        }
        for index in 0..<1_000 {
            self.ticket(limiter.admit(self.v4("10.2.\(index / 256).\(index % 256)"), now: start + .seconds(10)))?.release()
        }
        #expect(limiter.trackedClients < 1_100, "swept")
        _ = try #require(self.ticket(limiter.admit(self.v4("10.9.9.9"), now: start + .seconds(10))))
        #expect(limiter.takeMessageTurn(owing, now: start + .seconds(10)) != nil, "its debt survived the sweep: still paced")
    }

    @Test func forgottenClientsDoNotAccumulate() {
        let limiter = self.limiter(total: 1_000_000, rate: 10, burst: 10)
        let start = NIODeadline.now()
        for index in 0..<5_000 {
            let address = self.v4("10.\(index / 65_536).\(index / 256 % 256).\(index % 256)")
            self.ticket(limiter.admit(address, now: start))?.release()
        }
        #expect(limiter.trackedClients == 5_000, "all still refilling: remembered")
        // Two seconds later those buckets are full again: once the table has doubled (8,192),
        // the sweep forgets them and keeps only the clients still refilling.
        for index in 0..<3_200 {
            self.ticket(limiter.admit(self.v4("11.0.\(index / 256).\(index % 256)"), now: start + .seconds(2)))?.release()
        }
        #expect(limiter.trackedClients <= 3_200, "\(limiter.trackedClients) clients remembered")
        #expect(limiter.sessionCount == 0)
    }

    @Test func overTheCapTheHandshakeIs503WithRetryAfterAndTheSessionCountsAgainOnceClosed() async throws {
        try await withLiveServer({ $0.maxSessions = 1 }) { _, log, port in
            let first = try await TestWebSocket.live(port: port)
            #expect(first.response.status == 101)
            let refused = try await TestWebSocket.live(port: port)
            #expect(refused.response.status == 503 && refused.response.text == "too many sessions\n")
            #expect(refused.response.header("retry-after").flatMap(Int.init) != nil)
            try await first.close()
            _ = try await log.waitFor(closes: 1)
            let again = try await TestWebSocket.live(port: port)
            #expect(again.response.status == 101, "the closed session gave its place back")
            try await again.close()
        }
    }

    @Test func aRefusedHandshakeGivesItsPlaceBack() async throws {
        try await withLiveServer({ $0.maxSessions = 1 }) { _, _, port in
            for _ in 0..<3 {
                let unauthorized = try await TestWebSocket.live(port: port, user: nil)
                #expect(unauthorized.response.status == 401)
            }
            let admitted = try await TestWebSocket.live(port: port)
            #expect(admitted.response.status == 101, "401s did not keep the only place")
            try await admitted.close()
        }
    }

    @Test func handshakesTooFastAre429() async throws {
        try await withLiveServer({ $0.connectsPerSecond = 0.001; $0.connectBurst = 1 }) { _, _, port in
            let first = try await TestWebSocket.live(port: port)
            #expect(first.response.status == 101)
            let refused = try await TestWebSocket.live(port: port)
            #expect(refused.response.status == 429 && refused.response.text == "too many connections, slow down\n")
            // 1,000 s for a token at the slowest rate there is (0.001/s), less whatever passed
            // between the two handshakes (minutes on the slowest run; the exact schedule, on an
            // injected clock, is the unit test above).
            let retryAfter = refused.response.header("retry-after").flatMap(Int.init)
            #expect(retryAfter.map { (700...1000).contains($0) } == true, "\(refused.response.header("retry-after") ?? "none")")
            try await first.close()
        }
    }
}
