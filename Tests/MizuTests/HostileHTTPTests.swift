import Mizu
import MizuTestSupport
import NIOCore
import Testing

/// One unauthenticated client at a time, as an attacker would: each test is a row of the
/// README's limits table. Memory is bounded when the bytes a flood gets through stay small
/// (see ``HostilePeer``); a state is bounded when the connection closes within its deadline.
@Suite(.timeLimit(.minutes(10))) struct HostileHTTPTests {
    /// Past this, the server was still reading: with reads stopped a flood gets 2.7-6.3 MB
    /// through (the kernel buffers), without it 26-81 MB in the same time (debug build).
    static let floodBound = 12 * 1024 * 1024
    /// What a flood may try to push: far beyond any socket buffer.
    static let floodLimit = 512 * 1024 * 1024

    private func app(_ configure: (inout HTTPServerConfiguration) -> Void = { _ in }) -> App {
        var configuration = HTTPServerConfiguration()
        configure(&configuration)
        let app = App(configuration: configuration)
        app.get("/fast") { c in try await c.text(.ok, "fast") }
        app.get("/big") { c in try await c.text(.ok, String(repeating: "x", count: 256 * 1024)) }
        app.post("/echo") { c in try await c.text(.ok, c.request.bodyString) }
        return app
    }

    /// Runs `attack` on its own thread while `check` (a well-behaved client) runs here.
    private func during(_ attack: @escaping @Sendable () async -> HostilePeer.Flood, _ check: () async throws -> Void) async throws -> HostilePeer.Flood {
        let flood = Task { await attack() }
        try await Task.sleep(nanoseconds: 200_000_000)
        try await check()
        return await flood.value
    }

    private func expectFastAnswer(port: Int) async throws {
        let client = try await RawClient.connect(port: port)
        try await client.send("GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(try await client.readResponse(timeout: .seconds(2)).text == "fast")
        await client.close()
    }

    @Test func bytesAfterCONNECTAreNotRead() async throws {
        try await withServer(self.app()) { (port: Int) async throws in
            let peer = try HostilePeer(port: port)
            #expect(await peer.send("CONNECT example.com:22 HTTP/1.1\r\nHost: example.com:22\r\n\r\n"))
            let flood = try await self.during({ await peer.flood(Array(repeating: 0x41, count: 65536), for: .milliseconds(1500), limit: Self.floodLimit) }) {
                try await self.expectFastAnswer(port: port)
            }
            #expect(flood.written < Self.floodBound, "the server kept reading after CONNECT: \(flood)")
            #expect(await peer.waitForClose(timeout: .seconds(5)) != nil)
        }
    }

    @Test func bytesAfterAnUpgradeRequestAreNotReadWhileItsHandlerDecides() async throws {
        let app = self.app()
        // A slow decision (an onAuth that asks a database, say): the parser has stopped after
        // the upgrade request, so anything read meanwhile would pile up unparsed.
        app.get("/slow-upgrade") { c in
            try await Task.sleep(nanoseconds: 1_500_000_000)
            try await c.text(.badRequest, "no")
        }
        try await withServer(app) { (port: Int) async throws in
            let peer = try HostilePeer(port: port)
            #expect(await peer.send("GET /slow-upgrade HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"))
            let flood = await peer.flood(Array(repeating: 0x41, count: 65536), for: .milliseconds(1200), limit: Self.floodLimit)
            #expect(flood.written < Self.floodBound, "the server read on while the handler decided: \(flood)")
        }
    }

    @Test func bytesAfterAnUpgradeThatIsRefusedAreNotRead() async throws {
        try await withServer(self.app()) { (port: Int) async throws in
            let peer = try HostilePeer(port: port)
            #expect(await peer.send("GET /fast HTTP/1.1\r\nHost: x\r\nUpgrade: something\r\nConnection: upgrade\r\n\r\n"))
            let flood = await peer.flood(Array(repeating: 0x41, count: 65536), for: .milliseconds(1500), limit: Self.floodLimit)
            #expect(flood.written < Self.floodBound, "\(flood)")
            #expect(await peer.waitForClose(timeout: .seconds(5)) != nil)
        }
    }

    @Test func aBodyThatNeverComesMeetsItsDeadline() async throws {
        try await withServer(self.app { $0.requestBodyTimeout = .milliseconds(300) }) { (port: Int) async throws in
            let peer = try HostilePeer(port: port, receiveBuffer: 65536)
            // Timed from before the send: the server's deadline starts after the head arrives,
            // so it cannot close sooner than that, however late this task is scheduled.
            let clock = ContinuousClock()
            let start = clock.now
            #expect(await peer.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789"))
            let closed = await peer.waitForClose(timeout: .seconds(5)) != nil
            let elapsed = clock.now - start
            #expect(closed && elapsed >= .milliseconds(300), "closed: \(closed) after \(elapsed)")
            let answer = String(decoding: await peer.readAvailable(), as: UTF8.self)
            #expect(answer.hasPrefix("HTTP/1.1 408"), "\(answer)")
        }
    }

    @Test func aBodyTrickledForeverMeetsItsDeadline() async throws {
        try await withServer(self.app { $0.requestBodyTimeout = .milliseconds(500) }) { (port: Int) async throws in
            let peer = try HostilePeer(port: port, receiveBuffer: 65536)
            #expect(await peer.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"))
            // One byte every 50 ms: every read would restart an idle timer, never a deadline.
            // The trickle outlasts the deadline many times over (20x, more on a slow run), so
            // only the deadline can end it: the check is that it did, not how fast.
            let cutOff = await self.trickle(peer, for: Patience.scaled(.seconds(10))) { _ in "x" }
            #expect(cutOff, "a body trickled forever was never cut off")
            #expect(String(decoding: await peer.readAvailable(), as: UTF8.self).hasPrefix("HTTP/1.1 408"))
        }
    }

    @Test func aHeadTrickledForeverMeetsItsDeadline() async throws {
        try await withServer(self.app { $0.requestHeadTimeout = .milliseconds(500) }) { (port: Int) async throws in
            let peer = try HostilePeer(port: port, receiveBuffer: 65536)
            #expect(await peer.send("GET /fast HTTP/1.1\r\n"))
            let cutOff = await self.trickle(peer, for: Patience.scaled(.seconds(10))) { "X-\($0): y\r\n" }
            #expect(cutOff, "a slowloris head was never cut off")
            #expect(String(decoding: await peer.readAvailable(), as: UTF8.self).hasPrefix("HTTP/1.1 408"))
        }
    }

    /// Sends `piece(n)` about every 50 ms until the server closes (true) or `limit` passes (false).
    private func trickle(_ peer: HostilePeer, for limit: Duration, _ piece: (Int) -> String) async -> Bool {
        let clock = ContinuousClock()
        let start = clock.now
        var index = 0
        while clock.now - start < limit {
            guard await peer.send(piece(index), timeout: .milliseconds(100)) else { return true }
            index += 1
            if await peer.isClosed(within: .milliseconds(50)) { return true }
        }
        return false
    }

    @Test func aPipelinerThatNeverReadsIsStoppedAndClosed() async throws {
        try await withServer(self.app { $0.writeStallTimeout = .milliseconds(500) }) { (port: Int) async throws in
            let peer = try HostilePeer(port: port)
            let request = Array("GET /big HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
            let flood = try await self.during({ await peer.flood(request, for: .seconds(2), limit: Self.floodLimit) }) {
                try await self.expectFastAnswer(port: port)
            }
            #expect(flood.written < Self.floodBound, "\(flood)")
            let closed = flood.closed ? true : await peer.waitForClose(timeout: .seconds(3)) != nil
            #expect(closed, "a stalled reader stayed connected: \(flood)")
        }
    }

    @Test func aPipelinerOfSmallAnswersThatNeverReadsIsClosed() async throws {
        // Small answers never fill NIO's buffer past its high water mark, so the channel stays
        // writable while the kernel's send queue is full and the peer reads nothing.
        try await withServer(self.app { $0.writeStallTimeout = .milliseconds(500) }) { (port: Int) async throws in
            let peer = try HostilePeer(port: port, receiveBuffer: 4096)
            let request = Array("GET /fast HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
            // Long enough to fill the kernel's buffers on a slow run too (the flood ends when the
            // server stops taking bytes or closes).
            let flood = await peer.flood(request, for: Patience.scaled(.seconds(2)), limit: Self.floodLimit)
            let closed = flood.closed ? true : await peer.waitForClose(timeout: .seconds(5)) != nil
            #expect(closed, "a pipeliner that never reads stayed connected: \(flood)")
            try await self.expectFastAnswer(port: port)
        }
    }

    @Test func oneClientsConnectionsAreCapped() async throws {
        #expect(HTTPServerConfiguration().maxConnectionsPerClient == 10_000)
        try await withServer(self.app { $0.maxConnectionsPerClient = 3 }) { (port: Int) async throws in
            var held: [RawClient] = []
            for _ in 0..<3 {
                // Each answered before the next connects: the server has counted it (a connect
                // returns once the kernel accepted, before the server's own accounting).
                let client = try await RawClient.connect(port: port)
                try await client.send("GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
                #expect(try await client.readResponse().text == "fast")
                held.append(client)
            }
            // Held open, idle: the fourth is refused at once, with the reason.
            let refused = try await RawClient.connect(port: port)
            let answer = try await refused.readResponse()
            #expect(answer.status == 503 && answer.text == "too many connections\n" && answer.header("retry-after") == "10")
            _ = try await refused.waitForClose()
            // A held one still works, and a place given back is free again.
            try await held[0].send("GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(try await held[0].readResponse().text == "fast")
            await held[2].close()
            _ = try await eventuallyAsync("the place given back") { () -> Bool? in
                let again = try await RawClient.connect(port: port)
                try await again.send("GET /fast HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return try await again.readResponse().status == 200 ? true : nil
            }
            for client in held { await client.close() }
        }
    }

    @Test func aSlowButSteadyReaderIsNotCutOff() async throws {
        // The deadline a reader that resumes must beat: scaled, or a slow run's late resume fails it.
        try await withServer(self.app { $0.writeStallTimeout = Patience.scaled(.seconds(1)) }) { (port: Int) async throws in
            let client = try await RawClient.connect(port: port, receiveBufferSize: 4096)
            try await client.stopReading()
            try await client.send("GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
            // Stalled for longer than the deadline, but the socket had taken bytes before.
            try await Task.sleep(nanoseconds: 200_000_000)
            try await client.startReading()
            let response = try await client.readResponse(timeout: .seconds(5))
            #expect(response.body.count == 256 * 1024)
        }
    }

    @Test func requestsBreakingHTTP11FramingRulesAreRefused() async throws {
        try await withServer(self.app()) { (port: Int) async throws in
            for (request, status) in [
                ("GET /fast HTTP/1.1\r\n\r\n", 400),  // no Host
                ("GET /fast HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),  // two
                ("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
                ("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400),  // chunked not last
                ("GET /fast HTTP/1.1\r\nHost: a b\r\n\r\n", 400),  // not uri-host [":" port]
                ("GET /fast HTTP/1.1\r\nHost: x/y\r\n\r\n", 400),
            ] {
                let client = try await RawClient.connect(port: port)
                try await client.send(request)
                let response = try await client.readResponse()
                #expect(response.status == status, "\(request.debugDescription)")
                _ = try await client.waitForClose()
            }
            // HTTP/1.0 has no Host requirement.
            let old = try await RawClient.connect(port: port)
            try await old.send("GET /fast HTTP/1.0\r\n\r\n")
            #expect(try await old.readResponse().status == 200)
            // An empty Host is valid (a target without an authority), and so is an IP literal.
            let empty = try await RawClient.connect(port: port)
            try await empty.send("GET /fast HTTP/1.1\r\nHost:\r\n\r\nGET /fast HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n")
            #expect(try await empty.readResponse().status == 200)
            #expect(try await empty.readResponse().status == 200)
        }
    }

    @Test func http10WithTransferEncodingIsClosedAfterTheResponse() async throws {
        try await withServer(self.app()) { (port: Int) async throws in
            let client = try await RawClient.connect(port: port)
            try await client.send("POST /echo HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n")
            let response = try await client.readResponse()
            #expect(response.text == "hi")
            #expect(response.header("connection") == "close")
            _ = try await client.waitForClose()
        }
    }

    @Test func theDefaultsAreTheDocumentedOnes() {
        let configuration = HTTPServerConfiguration()
        #expect(configuration.maxBodySize == 8 * 1024 * 1024)
        #expect(configuration.maxHeadSize == 16 * 1024)
        #expect(configuration.requestHeadTimeout == .seconds(10))
        #expect(configuration.requestBodyTimeout == .seconds(30))
        #expect(configuration.writeStallTimeout == .seconds(30))
        #expect(configuration.idleTimeout == .seconds(60))
    }
}
