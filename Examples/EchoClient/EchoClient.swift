import ArgumentParser
import MizuWebSocket
import NIOConcurrencyHelpers
import NIOCore

/// The client half of the WebSocket layer with no envelope: connects, sends back every text or
/// binary message unchanged, and returns when the server closes. With `--autobahn` it drives
/// the Autobahn TestSuite's fuzzingserver (every case, then the report), the client-side twin
/// of EchoServer under fuzzingclient.
@main
struct EchoClient: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "WebSocket echo client (conformance target for the client half).")

    @Argument(help: "ws://host:port/path to echo, or with --autobahn the fuzzingserver's ws://host:port.")
    var url: String

    @Flag(help: "Run every case of an Autobahn fuzzingserver at URL, then ask it to write its report.")
    var autobahn = false

    @Option(help: "The agent name Autobahn reports under.")
    var agent = "MizuWebSocketClient"

    // The fuzzingserver's own limit for a case: giving up sooner made a slow machine's run red
    // (three 1,000 x 128 KiB compressed cases took over 120 s under two CPU hogs).
    @Option(help: "Give up on one connection after this many seconds (Autobahn's own limit per case).")
    var caseTimeout = 480

    @Flag(help: "Offer no permessage-deflate.")
    var noCompression = false

    func run() async throws {
        var configuration = WebSocketConfiguration()
        configuration.maxMessageSize = 16 * 1024 * 1024
        if self.noCompression { configuration.compression = nil }
        let client = WebSocketClient(configuration: configuration)
        guard self.autobahn else {
            try await Self.echo(client, self.url, timeout: .seconds(Int64(self.caseTimeout)))
            return
        }
        let base = self.url.hasSuffix("/") ? String(self.url.dropLast()) : self.url
        let count = try await Self.firstText(client, base + "/getCaseCount", timeout: .seconds(Int64(self.caseTimeout)))
        guard let cases = Int(count), cases > 0 else { throw ValidationError("getCaseCount answered \(count)") }
        for number in 1...cases {
            do {
                try await Self.echo(client, base + "/runCase?case=\(number)&agent=\(self.agent)", timeout: .seconds(Int64(self.caseTimeout)))
            } catch {
                // A case may refuse or break the connection on purpose: the report judges it.
                print("case \(number): \(error)")
            }
        }
        try await Self.echo(client, base + "/updateReports?agent=\(self.agent)", timeout: .seconds(Int64(self.caseTimeout)))
        print("ran \(cases) cases as \(self.agent)")
    }

    /// Echoes everything on one connection until it closes (or `timeout` passes).
    static func echo(_ client: WebSocketClient, _ url: String, timeout: TimeAmount) async throws {
        let (closed, ended) = AsyncStream.makeStream(of: WebSocketCloseReason.self)
        let connection = try await client.connect(to: url, events: WebSocketEvents(
            onMessage: { connection, message in connection.send(message) },
            onClose: { _, reason in
                ended.yield(reason)
                ended.finish()
            }))
        _ = try await Self.first(of: closed, within: timeout) { connection.close(code: 1001) }
    }

    /// The first text message on a connection (Autobahn's case count), then closes it.
    static func firstText(_ client: WebSocketClient, _ url: String, timeout: TimeAmount) async throws -> String {
        let (texts, sink) = AsyncStream.makeStream(of: String.self)
        let connection = try await client.connect(to: url, events: WebSocketEvents(
            onMessage: { _, message in
                if message.opcode == .text { sink.yield(String(buffer: message.data)) }
            },
            onClose: { _, _ in sink.finish() }))
        let text = try await Self.first(of: texts, within: timeout) { connection.close(code: 1000) }
        connection.close(code: 1000)
        return text
    }

    struct TimedOut: Error {}

    /// The stream's first element within `timeout`; `onTimeout` runs before throwing.
    static func first<Element: Sendable>(of stream: AsyncStream<Element>, within timeout: TimeAmount, onTimeout: @escaping @Sendable () -> Void) async throws -> Element {
        try await withThrowingTaskGroup(of: Element?.self) { group in
            group.addTask {
                var iterator = stream.makeAsyncIterator()
                return await iterator.next()
            }
            group.addTask {
                try await Task.sleep(nanoseconds: UInt64(timeout.nanoseconds))
                return nil
            }
            defer { group.cancelAll() }
            guard let result = try await group.next(), let element = result else {
                onTimeout()
                throw TimedOut()
            }
            return element
        }
    }
}
