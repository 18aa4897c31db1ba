@testable import MizuHTTP
import MizuTestSupport
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// Where the server listens: on Linux one socket per event loop on the same port, each
/// serving what it accepts on its own thread; a port in use still refuses a second server.
@Suite(.timeLimit(.minutes(2))) struct ListenerTests {
    /// Answers with nothing; remembers which loop ran each request.
    private struct RecordingLoop: HTTPHandler {
        let loops: NIOLockedValueBox<Set<ObjectIdentifier>>

        func serveHTTP(_ writer: ResponseWriter, _ request: Request) async throws {
            if let loop = MultiThreadedEventLoopGroup.currentEventLoop { self.loops.withLockedValue { _ = $0.insert(ObjectIdentifier(loop)) } }
            try await writer.write("ok")
        }
    }

    private func withGroup<T>(_ body: (MultiThreadedEventLoopGroup) async throws -> T) async throws -> T {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        do {
            let result = try await body(group)
            try await group.shutdownGracefully()
            return result
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    #if os(Linux)
    @Test func everyEventLoopListensOnThePortAndServesWhatItAccepts() async throws {
        try await self.withGroup { group in
            let loops = NIOLockedValueBox<Set<ObjectIdentifier>>([])
            let server = HTTPServer(handler: RecordingLoop(loops: loops), eventLoopGroup: group)
            let address = try await server.start(host: "127.0.0.1", port: 0)
            let listening = server.listening
            #expect(listening.count == 2)
            #expect(Set(listening.map { ObjectIdentifier($0.eventLoop) }).count == 2, "one listener on each loop")
            #expect(listening.allSatisfy { $0.address?.port == address.port }, "all on one port")
            // The kernel spreads connections over the sockets by their addresses: 40 new
            // connections all landing on one loop would be a 1 in 2^39 chance.
            for _ in 0..<40 {
                let response = try await request(port: address.port!, "GET", "/")
                #expect(response.status == 200)
            }
            #expect(loops.withLockedValue { $0.count } == 2, "both loops served connections")
            await server.shutdown(gracePeriod: .seconds(1))
            // Every listener closed: the port can be bound again.
            let again = HTTPServer(handler: RecordingLoop(loops: loops), eventLoopGroup: group)
            try await again.start(host: "127.0.0.1", port: address.port!)
            #expect(try await request(port: address.port!, "GET", "/").status == 200)
            await again.shutdown(gracePeriod: .seconds(1))
        }
    }
    #endif

    /// Sharing a port is between a server's own sockets: another server (this one again, or
    /// any other listener) on that port is refused, as with one socket.
    @Test func aPortSomethingElseListensOnStillFailsToBind() async throws {
        try await self.withGroup { group in
            let loops = NIOLockedValueBox<Set<ObjectIdentifier>>([])
            let first = HTTPServer(handler: RecordingLoop(loops: loops), eventLoopGroup: group)
            let port = try await first.start(host: "127.0.0.1", port: 0).port!
            let second = HTTPServer(handler: RecordingLoop(loops: loops), eventLoopGroup: group)
            await #expect(throws: (any Error).self) { try await second.start(host: "127.0.0.1", port: port) }
            #expect(second.listening.isEmpty, "nothing of the second server listens")
            #expect(try await request(port: port, "GET", "/").status == 200, "the first one still serves")
            await first.shutdown(gracePeriod: .seconds(1))

            // A plain listener (no port sharing) holds a port: the server must not join it.
            let plain = try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
            let third = HTTPServer(handler: RecordingLoop(loops: loops), eventLoopGroup: group)
            await #expect(throws: (any Error).self) { try await third.start(host: "127.0.0.1", port: plain.localAddress!.port!) }
            try await plain.close()
        }
    }

    @Test func turnedOffOneSocketListensForEveryLoop() async throws {
        try await self.withGroup { group in
            let loops = NIOLockedValueBox<Set<ObjectIdentifier>>([])
            var configuration = HTTPServerConfiguration()
            configuration.listenOnEveryEventLoop = false
            let server = HTTPServer(handler: RecordingLoop(loops: loops), configuration: configuration, eventLoopGroup: group)
            let port = try await server.start(host: "127.0.0.1", port: 0).port!
            #expect(server.listening.count == 1)
            for _ in 0..<8 { #expect(try await request(port: port, "GET", "/").status == 200) }
            #expect(loops.withLockedValue { $0.count } == 2, "handed to the loops in turn")
            await server.shutdown(gracePeriod: .seconds(1))
        }
    }

    /// Every connection, on whichever listener it came, has no Nagle delay and keep-alive
    /// probes (on Linux inherited from the listening socket, not set per connection).
    @Test func acceptedConnectionsHaveNoDelayAndKeepAlive() async throws {
        try await self.withGroup { group in
            let loops = NIOLockedValueBox<Set<ObjectIdentifier>>([])
            let server = HTTPServer(handler: RecordingLoop(loops: loops), eventLoopGroup: group)
            let port = try await server.start(host: "127.0.0.1", port: 0).port!
            var clients: [RawClient] = []
            for _ in 0..<8 { clients.append(try await RawClient.connect(port: port)) }
            for _ in 0..<500 where server.connectionCount < 8 { try await Task.sleep(nanoseconds: 10_000_000) }
            let channels = server.connectionChannels
            #expect(channels.count == 8)
            for channel in channels {
                let noDelay = try await channel.getOption(.socketOption(.tcp_nodelay)).get()
                let keepAlive = try await channel.getOption(.socketOption(.so_keepalive)).get()
                #expect(noDelay != 0 && keepAlive != 0)
            }
            for client in clients { await client.close() }
            await server.shutdown(gracePeriod: .seconds(1))
        }
    }
}
