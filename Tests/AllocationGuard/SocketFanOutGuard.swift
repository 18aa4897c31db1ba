import Foundation
import Mizu
import MizuCompat
import MizuHTTP
import MizuLive
import MizuTestSupport
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// The publish path on real sockets: the server runs on one event loop of its own, whose
/// thread is counted; clients on another group read each publish before the next is sent, so
/// every write leaves at once (NIO's socket write path, not a test double). Sessions cost
/// nothing per delivery: 10 more subscribers add no allocation.
enum SocketFanOutGuard {
    static func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var options = Live.Options(onMessage: { _, _, topic, data in
            // The ChatApp's shape: a client's message is published to its room.
            guard topic == "say" else { return }
            _ = serverBox.withLockedValue { $0 }?.publish("room", data)
        })
        options.onOpen = { _, session in _ = serverBox.withLockedValue { $0 }?.subscribe(session, "room") }
        let server = Live.Server(options)
        serverBox.withLockedValue { $0 = server }
        let app = App(logsRequests: false)
        app.get("/ws", compat(server.handler()))
        let http = HTTPServer(handler: app, eventLoopGroup: group)
        let port = try await http.start(host: "127.0.0.1", port: 0).port!
        let window = LoopAllocationWindow(eventLoop: group.next())
        var clients: [TestWebSocket] = []
        do {
            clients = try await self.connect(10, port: port, server: server, first: 0)
            let few = try await self.loopAllocations(server: server, clients: clients, window: window)
            let fewBurst = try await self.burstAllocations(server: server, clients: clients, window: window)
            clients += try await self.connect(10, port: port, server: server, first: 10)
            let many = try await self.loopAllocations(server: server, clients: clients, window: window)
            let manyBurst = try await self.burstAllocations(server: server, clients: clients, window: window)
            // Ten frames to a connection in one tick go out as one batch made once with room
            // for them all: its storage object and its bytes (2), not more per frame.
            check("socket publish burst (10 in one tick), event loop, per connection", measured: (manyBurst - fewBurst) / 10, budget: 2.05, unit: "allocations")
            // The loop's counts carry +-0.02 of noise (a window's own tasks vary by two
            // allocations in 100 publishes); one more allocation per publish or per delivery
            // adds 1.0, so 0.05 over the count tells them apart.
            // Today: the loop's end-of-tick flush task; nothing per session.
            check("socket publish, event loop, per publish (20 sessions)", measured: many.perPublish, budget: 1.05, unit: "allocations")
            check("socket publish, event loop, per delivery", measured: (many.perPublish - few.perPublish) / 10, budget: 0.05, unit: "allocations")
            // Today: the envelope (a buffer: 2), the frame (2), the registry's snapshot, the hop to the loop.
            check("socket publish, publisher's thread, per publish", measured: many.publisher, budget: 6, unit: "allocations")
            let inbound = try await self.inboundAllocations(clients: clients, window: window)
            // Today: the frame's unmasked payload (2), the message's data (2), the session's
            // inbox (released when drained, so an idle session holds none), the hook's task and
            // its executor job (6), then the publish above (7), all on the loop's thread.
            check("inbound message published to 20 sessions, event loop, per message", measured: inbound, budget: 19.05, unit: "allocations")
            // A connection from accept to subscribed, on the server's loop: the channel and its
            // pipeline, the HTTP request and its handler's task, the handshake, the session and
            // its onOpen hook. Today 123.4 (137.5 before the connection parsed requests and
            // framed responses itself, 142.6 before the sixth connect pass); the budget leaves
            // room for a request head that arrives in two reads.
            try await window.start()
            clients += try await self.connect(10, port: port, server: server, first: 20)
            let perConnection = Double(try await window.stop() - window.overhead()) / 10
            check("connect and subscribe, event loop, per connection", measured: perConnection, budget: 127, unit: "allocations")
        } catch {
            for client in clients { await client.client.close() }
            await http.shutdown()
            try await group.shutdownGracefully()
            throw error
        }
        for client in clients { await client.client.close() }
        await http.shutdown()
        try await group.shutdownGracefully()
    }

    static func connect(_ count: Int, port: Int, server: Live.Server, first: Int) async throws -> [TestWebSocket] {
        var clients: [TestWebSocket] = []
        for index in first..<(first + count) {
            let client = try await TestWebSocket.connect(port: port, path: "/ws?n=\(index)")
            guard client.response.status == 101 else { throw GuardError("handshake answered \(client.response.status)") }
            clients.append(client)
        }
        for _ in 0..<1000 where server.subscriberCount("room") < first + count { try await Task.sleep(for: .milliseconds(10)) }
        guard server.subscriberCount("room") == first + count else { throw GuardError("\(first + count) subscribers expected") }
        return clients
    }

    /// Per publish: what the loop's thread allocates (the hop, each session's write, the flush)
    /// and what the publishing thread does (encode once, registry snapshot, the hand-over).
    static func loopAllocations(
        server: Live.Server, clients: [TestWebSocket], window: LoopAllocationWindow
    ) async throws -> (perPublish: Double, publisher: Double) {
        let frame = EmbeddedFanOutGuard.message
        // Warm-up: each connection's buffers reach their working size.
        for _ in 0..<10 {
            server.publish("room", frame)
            try await self.readOne(clients)
        }
        let publishes = 100
        var publisher = 0
        try await window.start()
        for _ in 0..<publishes {
            publisher += allocations { server.publish("room", frame) }
            try await self.readOne(clients)
        }
        let loop = try await window.stop() - window.overhead()
        return (Double(loop) / Double(publishes), Double(publisher) / Double(publishes))
    }

    /// Per burst of `burst` publishes made in one task on the server's loop (so their frames
    /// share a tick): what the loop's thread allocates, publishes and deliveries together.
    static func burstAllocations(
        server: Live.Server, clients: [TestWebSocket], window: LoopAllocationWindow, burst: Int = 10
    ) async throws -> Double {
        let frame = EmbeddedFanOutGuard.message
        let publishBurst = { try await window.eventLoop.submit { for _ in 0..<burst { server.publish("room", frame) } }.get() }
        for _ in 0..<5 {
            try await publishBurst()
            for _ in 0..<burst { try await self.readOne(clients) }
        }
        let bursts = 20
        try await window.start()
        for _ in 0..<bursts {
            try await publishBurst()
            for _ in 0..<burst { try await self.readOne(clients) }
        }
        return Double(try await window.stop() - window.overhead()) / Double(bursts)
    }

    /// Per message a client sends: read, parsed, given to onMessage, published to every session.
    static func inboundAllocations(clients: [TestWebSocket], window: LoopAllocationWindow) async throws -> Double {
        let message = #"{"topic":"say","data":{"text":"hello"}}"#
        for _ in 0..<10 {
            try await clients[0].send(text: message)
            try await self.readOne(clients)
        }
        let messages = 100
        try await window.start()
        for _ in 0..<messages {
            try await clients[0].send(text: message)
            try await self.readOne(clients)
        }
        return Double(try await window.stop() - window.overhead()) / Double(messages)
    }

    /// Reads one data frame on every client (pings from the heartbeat skipped).
    static func readOne(_ clients: [TestWebSocket]) async throws {
        for client in clients {
            let frame = try await client.readFrameSkippingPings(timeout: .seconds(10))
            guard frame.opcode == 0x1 else { throw GuardError("frame with opcode \(frame.opcode), text expected") }
        }
    }
}

/// The server, for its own onMessage hook (built after the options that hold the hook).
let serverBox = NIOLockedValueBox<Live.Server?>(nil)
