import Mizu
import MizuTestSupport
import NIOCore
import NIOHTTP1
import Testing

/// HTTP behaviours a mutation run showed unguarded: each test fails if its behaviour breaks.
@Suite(.timeLimit(.minutes(10))) struct HTTPContractTests {
    @Test func anExpectationOtherThan100ContinueIs417() async throws {
        let app = App()
        app.post("/echo") { c in try await c.text(.ok, c.request.bodyString) }
        try await withServer(app) { (port: Int) async throws in
            let client = try await RawClient.connect(port: port)
            try await client.send("POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Length: 2\r\n\r\nhi")
            #expect(try await client.readResponse().status == 417)
            _ = try await client.waitForClose()
        }
    }

    @Test func theRouterBacktracksFromAStaticBranchToAParameter() async throws {
        let app = App()
        app.get("/a/b/c") { c in try await c.text(.ok, "static") }
        app.get("/a/{x}/d") { c in try await c.text(.ok, "param \(c.param("x"))") }
        try await withServer(app) { (port: Int) async throws in
            #expect(try await request(port: port, "GET", "/a/b/c").text == "static")
            #expect(try await request(port: port, "GET", "/a/b/d").text == "param b", "b matched the static branch first, then {x}")
        }
    }

    @Test func aHEADAnswerCarriesNoBodyOnTheWire() async throws {
        let app = App()
        app.get("/page") { c in try await c.text(.ok, "0123456789") }
        try await withServer(app) { (port: Int) async throws in
            let client = try await RawClient.connect(port: port)
            // Both requests at once: a body after the HEAD answer would be read as the next response.
            try await client.send("HEAD /page HTTP/1.1\r\nHost: x\r\n\r\nGET /page HTTP/1.1\r\nHost: x\r\n\r\n")
            let head = try await client.readResponse(headRequest: true)
            #expect(head.header("content-length") == "10")
            let get = try await client.readResponse()
            #expect(get.status == 200 && get.text == "0123456789")
        }
    }

    @Test func aStreamedHEADAnswerCarriesNoChunkTerminator() async throws {
        let app = App()
        // Flushed: the head leaves before the body is known, so it says chunked.
        app.get("/stream") { c in
            try await c.writer.write("first ")
            try await c.writer.flush()
            try await c.writer.write("second")
        }
        try await withServer(app) { (port: Int) async throws in
            let client = try await RawClient.connect(port: port)
            // Both at once: a "0\r\n\r\n" after the HEAD answer would be read as the next response.
            try await client.send("HEAD /stream HTTP/1.1\r\nHost: x\r\n\r\nGET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
            let head = try await client.readResponse(headRequest: true)
            #expect(head.status == 200 && head.header("transfer-encoding") == "chunked")
            let get = try await client.readResponse()
            #expect(get.status == 200 && get.text == "first second")
        }
    }

    @Test func responsesSwitchToChunkedWhenStreamed() async throws {
        let app = App()
        app.get("/big") { c in
            c.writer.setHeader("content-type", "text/plain")
            try await c.writer.write(String(repeating: "a", count: ResponseWriter.streamingThreshold + 1))
            try await c.writer.write("tail")
        }
        app.get("/flushed") { c in
            try await c.writer.write("first ")
            try await c.writer.flush()
            try await c.writer.write("second")
        }
        app.get("/small") { c in try await c.writer.write("small") }
        try await withServer(app) { (port: Int) async throws in
            let big = try await request(port: port, "GET", "/big")
            #expect(big.header("transfer-encoding") == "chunked")
            #expect(big.body.count == ResponseWriter.streamingThreshold + 5)
            let flushed = try await request(port: port, "GET", "/flushed")
            #expect(flushed.header("transfer-encoding") == "chunked")
            #expect(flushed.text == "first second")
            let small = try await request(port: port, "GET", "/small")
            #expect(small.header("content-length") == "5" && small.header("transfer-encoding") == nil)
        }
    }

    @Test func shutdownClosesWhatOutlivesTheGracePeriod() async throws {
        // The handler ignores cancellation and returns only when the test opens the gate,
        // after shutdown returned: so shutdown did not wait for it (an order, not a speed).
        let handlerMayReturn = Gate()
        defer { handlerMayReturn.open() }
        let server = HTTPServer(handler: HTTPHandlerFunc { writer, _ in
            await handlerMayReturn.wait()
            try await writer.write("too late")
        })
        let port = try await server.start(host: "127.0.0.1", port: 0).port!
        let client = try await RawClient.connect(port: port)
        try await client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        _ = try await eventually("the request to arrive") { server.connectionCount == 1 ? true : nil }
        // Were shutdown to wait for the handler, this opens the gate (and the check fails)
        // instead of hanging the suite.
        let watchdog = Task {
            guard (try? await Task.sleep(for: Patience.scaled(.seconds(20)))) != nil else { return }
            handlerMayReturn.open()
        }
        await server.shutdown(gracePeriod: .milliseconds(300))
        #expect(!handlerMayReturn.isOpen, "shutdown waited for the handler")
        watchdog.cancel()
        _ = try await client.waitForClose(timeout: .seconds(2))
        #expect(server.connectionCount == 0)
    }
}
