import Mizu
import MizuCompat
import MizuTestSupport
import NIOCore
import Testing

/// Echoes every byte back: the simplest protocol to hand a connection to.
private final class RawEcho: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.writeAndFlush(data, promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Servers allow half-closure, so each protocol decides what the peer's EOF means.
        if let event = event as? ChannelEvent, event == .inputClosed { context.close(promise: nil) }
    }
}

private struct EchoUpgrader: HTTPHandler {
    func serveHTTP(_ writer: ResponseWriter, _ request: Request) async throws {
        guard request.header("upgrade")?.lowercased() == "echo" else {
            writer.status = .upgradeRequired
            try await writer.write("upgrade to echo\n")
            return
        }
        writer.setHeader("upgrade", "echo")
        writer.setHeader("connection", "Upgrade")
        writer.setHeader("x-room", request.pathParameters["room"] ?? "")
        try await writer.upgrade { channel in
            channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(RawEcho()) }
        }
    }
}

@Suite(.timeLimit(.minutes(10))) struct CompatTests {
    @Test func plainHandlerMountedThroughCompatKeepsRouteParams() async throws {
        let app = App()
        app.get("/plain/{id}", compat(HTTPHandlerFunc { writer, request in
            try await writer.write("id=\(request.pathParameters["id"] ?? "?") path=\(request.path)")
        }))
        try await withServer(app) { (port: Int) async throws in
            #expect(try await request(port: port, "GET", "/plain/9").text == "id=9 path=/plain/9")
        }
    }

    @Test func appIsAPlainHandlerAndRouteHandlersConvertBack() async throws {
        let inner = App()
        inner.get("/hello/{name}") { c in try await c.text(.ok, "hello \(c.param("name"))") }
        let server = HTTPServer(handler: inner)
        let port = try await server.start(host: "127.0.0.1", port: 0).port!
        #expect(try await request(port: port, "GET", "/hello/bob").text == "hello bob")
        await server.shutdown()

        let outer = App()
        outer.mount("/inner", plain { c in try await c.text(.ok, "mounted \(c.request.path)") })
        try await withServer(outer) { (port: Int) async throws in
            #expect(try await request(port: port, "GET", "/inner/a/b").text == "mounted /inner/a/b")
            #expect(try await request(port: port, "POST", "/inner").text == "mounted /inner")
        }
    }

    @Test func plainMiddlewareAdaptsToMizuMiddleware() async throws {
        let addHeader: HTTPMiddleware = { next in
            HTTPHandlerFunc { writer, request in
                writer.setHeader("x-plain", "yes")
                try await next.serveHTTP(writer, request)
            }
        }
        let app = App()
        app.use(compat(addHeader))
        app.get("/x/{id}") { c in try await c.text(.ok, "x \(c.param("id"))") }
        try await withServer(app) { (port: Int) async throws in
            let response = try await request(port: port, "GET", "/x/3")
            #expect(response.text == "x 3")
            #expect(response.header("x-plain") == "yes")
        }
    }

    @Test func handlerUpgradesThroughCompatAndKeepsEarlyBytes() async throws {
        let app = App()
        app.get("/echo/{room}", compat(EchoUpgrader()))
        try await withServer(app) { (port: Int) async throws in
            let client = try await RawClient.connect(port: port)
            // The first protocol bytes travel in the same packet as the request.
            try await client.send("GET /echo/lobby HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nearly-bytes|")
            let response = try await client.readResponse()
            #expect(response.status == 101)
            #expect(response.header("x-room") == "lobby")
            #expect(response.header("upgrade") == "echo")
            #expect(String(decoding: try await client.read(count: 12), as: UTF8.self) == "early-bytes|")
            try await client.send("later")
            #expect(String(decoding: try await client.read(count: 5), as: UTF8.self) == "later")
            await client.close()

            let refused = try await RawClient.connect(port: port)
            try await refused.send("GET /echo/lobby HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: other\r\n\r\n")
            let answer = try await refused.readResponse()
            #expect(answer.status == 426)
            #expect(answer.header("connection") == "close", "after a refused upgrade the connection cannot carry HTTP on")
            _ = try await refused.waitForClose()
        }
    }
}
