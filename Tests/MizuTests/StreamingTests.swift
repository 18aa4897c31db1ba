import Foundation
@testable import Mizu
@testable import MizuHTTP
import MizuTestSupport
import NIOConcurrencyHelpers
import NIOCore
import Synchronization
import Testing

extension RawClient {
    /// Reads until `marker` has arrived; returns everything up to and including it.
    func read(until marker: String, timeout: TimeAmount = .seconds(5)) async throws -> String {
        try await self.read("\"\(marker)\"", timeout: timeout) { buffer, _ in
            let text = String(buffer: buffer)
            guard let range = text.range(of: marker) else { return nil }
            let prefix = String(text[..<range.upperBound])
            buffer.moveReaderIndex(forwardBy: prefix.utf8.count)
            return prefix
        }
    }

    static func get(port: Int, _ target: String) async throws -> RawClient {
        let client = try await RawClient.connect(port: port)
        try await client.send("GET \(target) HTTP/1.1\r\nHost: test\r\n\r\n")
        return client
    }
}

@Suite(.timeLimit(.minutes(10))) struct StreamingTests {
    @Test func streamSendsAsItGoesAndEndsWithTheLastChunk() async throws {
        let gate = Gate()
        let app = App(logsRequests: false)
        app.get("/stream") { c in
            try await c.stream { writer in
                try await writer.write("first part")
                await gate.wait()
                try await writer.write("second part")
            }
        }
        try await withServer(app) { (port: Int) async throws in
            let client = try await RawClient.get(port: port, "/stream")
            // The head and the first part arrive while the handler still waits.
            let head = try await client.read(until: "first part")
            #expect(head.hasPrefix("HTTP/1.1 200 OK\r\n") && head.lowercased().contains("transfer-encoding: chunked"))
            #expect(head.lowercased().contains("content-type: application/octet-stream"))
            gate.open()
            let rest = try await client.read(until: "0\r\n\r\n")
            #expect(rest.contains("second part"))
            await client.close()
        }
    }

    @Test func aSlowReaderHoldsTheStreamingHandlerNotTheServersMemory() async throws {
        let written = Atomic<Int>(0)
        let app = App(logsRequests: false)
        app.get("/big") { c in
            try await c.stream { writer in
                let chunk = ByteBuffer(repeating: 0x61, count: 64 * 1024)
                for _ in 0..<1024 {  // 64 MiB if nothing held it back
                    try await writer.write(chunk)
                    written.add(chunk.readableBytes, ordering: .relaxed)
                }
            }
        }
        try await withServer(app) { (port: Int) async throws in
            let client = try await RawClient.connect(port: port)
            try await client.stopReading()
            try await client.send("GET /big HTTP/1.1\r\nHost: test\r\n\r\n")
            try await Task.sleep(nanoseconds: 1_000_000_000)
            // What the kernel's socket buffers take, and no more: the handler waits.
            let held = written.load(ordering: .relaxed)
            #expect(held < 16 * 1024 * 1024, "the handler wrote \(held) bytes to a client that reads nothing")
            await client.close()
        }
    }

    @Test func aHandlerFailingMidStreamLeavesTheBodyVisiblyCut() async throws {
        struct Broken: Error {}
        let app = App(logsRequests: false)
        app.get("/fails") { c in
            try await c.stream { writer in
                try await writer.write("some of it")
                throw Broken()
            }
        }
        try await withServer(app) { (port: Int) async throws in
            let client = try await RawClient.get(port: port, "/fails")
            let received = String(buffer: try await client.waitForClose())
            #expect(received.contains("some of it"))
            #expect(!received.hasSuffix("0\r\n\r\n"), "a terminating chunk would tell the client the body was complete")
        }
    }

    @Test func serverSentEventsKeepAliveEndAndNoticeAClientThatLeft() async throws {
        let (events, continuation) = AsyncStream.makeStream(of: ServerSentEvent.self)
        let (values, valueSink) = AsyncStream.makeStream(of: [String: Int].self)
        let handlerEnded = Atomic<Bool>(false)
        let app = App(logsRequests: false)
        app.get("/events") { c in
            defer { handlerEnded.store(true, ordering: .relaxed) }
            try await c.sse(events, keepAlive: .milliseconds(50))
        }
        app.get("/json") { c in try await c.sse(json: values) }
        try await withServer(app) { (port: Int) async throws in
            let client = try await RawClient.get(port: port, "/events")
            let head = try await client.read(until: "\r\n\r\n").lowercased()
            #expect(head.contains("content-type: text/event-stream; charset=utf-8") && head.contains("cache-control: no-cache"))
            continuation.yield(ServerSentEvent(data: "line one\nline two\r\nline three", event: "chat\ninjected: x", id: "7"))
            let event = try await client.read(until: "line three\n\n")
            #expect(event.contains("event: chat\nid: 7\ndata: line one\ndata: line two\ndata: line three\n\n"))
            #expect(!event.contains("injected"))
            _ = try await client.read(until: ": keep-alive\n\n")
            // The client leaves with no event coming: the next keep-alive finds it gone.
            await client.close()
            _ = try await eventually("the handler to end") { handlerEnded.load(ordering: .relaxed) ? true : nil }

            // Go's SSE(ch): JSON data, then an end event when the channel closes.
            let json = try await RawClient.get(port: port, "/json")
            valueSink.yield(["n": 1])
            valueSink.finish()
            let body = try await json.read(until: "event: end\ndata: {}\n\n")
            #expect(body.contains("data: {\"n\":1}\n\n"))
            await json.close()
        }
        continuation.finish()
    }

    @Test func timeoutAnswers503InTimeAndRefusesTheLateHandler() async throws {
        let lateWrite = NIOLockedValueBox<String?>(nil)
        // The slow handler ignores cancellation and returns only when the test opens this
        // gate, after it has the 503: so the 503 came at the deadline, not when the handler
        // returned (an order of events, whatever the machine's speed).
        let handlerMayReturn = Gate()
        let app = App(logsRequests: false)
        app.use { next in { c in c.writer.setHeader("x-outer", "kept"); try await next(c) } }
        // The slow handler waits for the test, so its short deadline holds on any machine.
        app.with(Middlewares.timeout(.milliseconds(200))).get("/slow") { c in
            c.writer.setHeader("x-inner", "dropped")
            await handlerMayReturn.wait()
            do {
                try await c.text(.ok, "too late")
                lateWrite.withLockedValue { $0 = "written" }
            } catch {
                lateWrite.withLockedValue { $0 = "\(error)" }
            }
        }
        // These must start answering before their deadline: a loaded run once took more than
        // 200 ms to reach the streaming handler's first write.
        let streamMayGoOn = Gate()
        let generous = app.with(Middlewares.timeout(Patience.scaled(.milliseconds(500))))
        generous.get("/fast") { c in try await c.text(.ok, "in time") }
        generous.get("/streaming") { c in
            try await c.stream { writer in
                try await writer.write("started")
                await streamMayGoOn.wait()  // opened once the test has ended
                try await writer.write("never")
            }
        }
        defer { handlerMayReturn.open(); streamMayGoOn.open() }
        try await withServer(app) { (port: Int) async throws in
            let slow = try await request(port: port, "GET", "/slow")
            #expect(!handlerMayReturn.isOpen && lateWrite.withLockedValue { $0 } == nil, "answered before the handler returned")
            #expect(slow.status == 503 && slow.text == "Service Unavailable")
            #expect(slow.header("x-outer") == "kept" && slow.header("x-inner") == nil)
            handlerMayReturn.open()
            _ = try await eventually("the late handler's write") { lateWrite.withLockedValue { $0 } }
            #expect(lateWrite.withLockedValue { $0 } == "\(ResponseWriter.Error.responseFinished)")
            #expect(try await request(port: port, "GET", "/fast").text == "in time")
            // A response already streaming at the deadline is cut, not completed.
            let client = try await RawClient.get(port: port, "/streaming")
            let received = String(buffer: try await client.waitForClose())
            #expect(received.contains("started") && !received.contains("never") && !received.hasSuffix("0\r\n\r\n"))
        }
    }
}
