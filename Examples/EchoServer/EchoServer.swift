import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import Logging
import Mizu
import MizuWebSocket

/// The raw WebSocket layer with no envelope: every text or binary message comes back
/// unchanged on the same connection. The Autobahn TestSuite and load generators drive it.
@main
struct EchoServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "WebSocket echo server (conformance and load target).")

    @Option(help: "Port to listen on.")
    var port: Int = 9001

    @Option(help: "Address to bind.")
    var host: String = "0.0.0.0"

    @Flag(help: "Decline permessage-deflate.")
    var noCompression = false

    func run() async throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var configuration = WebSocketConfiguration()
        configuration.maxMessageSize = 16 * 1024 * 1024
        if self.noCompression { configuration.compression = nil }
        let echo = WebSocketHandler(configuration: configuration, events: WebSocketEvents(
            onMessage: { connection, message in connection.send(message) }
        ))
        let server = HTTPServer(handler: echo, logger: Logger(label: "echo"))
        let address = try await server.start(host: self.host, port: self.port)
        print("EchoServer listening on ws://\(self.host):\(address.port ?? self.port)")
        let signals = SignalWatcher(signals: [SIGINT, SIGTERM])
        _ = await signals.next()
        await server.shutdown()
    }
}
