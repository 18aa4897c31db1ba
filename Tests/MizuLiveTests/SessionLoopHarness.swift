import Foundation
@_spi(Benchmarking) @testable import MizuLive
@_spi(Benchmarking) import MizuWebSocket
import MizuHTTP
import MizuTestSupport
import NIOCore
import NIOEmbedded

/// A session on a testing event loop that any task may use: frames go in and out of a testing
/// channel, the loop runs when the test says. With `opening`, the session opens as a
/// handshaken one does (admitted, hooks run); without, it is a detached one (no hooks).
final class SessionLoopHarness: Sendable {
    let server: Live.Server
    let loop = NIOAsyncTestingEventLoop()
    let channel: NIOAsyncTestingChannel
    let connection: WebSocketConnection

    /// A connection on the testing loop; `events` (nil: a detached session, no hooks) drive it.
    init(_ options: Live.Options, opening: Bool) async throws {
        self.server = Live.Server(options)
        self.channel = NIOAsyncTestingChannel(loop: self.loop)
        try await self.channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).get()
        let configuration = self.server.webSocketConfiguration
        self.connection = WebSocketConnection.unattached(eventLoop: self.loop, sendQueueLimit: configuration.maxQueuedMessages)
        var events = WebSocketEvents()
        if opening {
            guard case .admitted(let ticket) = self.server.core.limiter.admit(nil) else { throw Refused() }
            events = SessionOpening(
                id: .custom("s"), value: nil, request: Request(method: .GET, uri: "/ws"), core: self.server.core, ticket: ticket
            ).events
        }
        let (channel, connection, drivers) = (self.channel, self.connection, events)
        try await self.loop.submit { try connection.attach(to: channel, configuration: configuration, events: drivers) }.get()
    }

    struct Refused: Error {}

    /// A masked client text frame, as the peer would send it.
    func receive(_ text: String) async throws {
        try await self.channel.writeInbound(ByteBuffer(bytes: clientFrame(0x1, Array(text.utf8))))
        await self.loop.run()
    }

    /// Runs the loop (and lets tasks on it run) until `done`, within the patience.
    func drive(until done: @Sendable () -> Bool) async throws {
        let deadline = NIODeadline.now() + Patience.scaled(.seconds(5))
        while !done() {
            guard NIODeadline.now() < deadline else { throw TimedOut() }
            await self.loop.run()
            try await Task.sleep(for: .milliseconds(1))
        }
    }

    struct TimedOut: Error {}

    /// Every data frame flushed so far, as JSON objects.
    func sentObjects() async throws -> [[String: Any]] {
        try await self.sentTexts().map { text in
            guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { throw NotAnObject(text: text) }
            return object
        }
    }

    struct NotAnObject: Error {
        var text: String
    }

    /// The text of every data frame flushed so far.
    func sentTexts() async throws -> [String] {
        await self.loop.run()
        var texts: [String] = []
        while var buffer = try await self.channel.readOutbound(as: ByteBuffer.self) {
            while let frame = ServerFrame.parse(&buffer) {
                if frame.opcode == 0x1 { texts.append(String(decoding: frame.payload, as: UTF8.self)) }
            }
        }
        return texts
    }
}
