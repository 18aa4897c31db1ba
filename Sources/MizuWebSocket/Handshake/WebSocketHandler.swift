import MizuHTTP

/// A plain handler that serves WebSocket connections with `events`: mount it with
/// `compat(_:)` or run it on an `HTTPServer` directly.
public struct WebSocketHandler: HTTPHandler {
    private let upgrader: WebSocketUpgrader
    private let events: WebSocketEvents

    /// A handler upgrading every request with `configuration` and reporting to `events`.
    public init(configuration: WebSocketConfiguration = WebSocketConfiguration(), events: WebSocketEvents) {
        self.upgrader = WebSocketUpgrader(configuration: configuration)
        self.events = events
    }

    /// What each client's connections hold unread, when the configuration bounds it.
    package var outputLedger: ClientOutputLedger? { self.upgrader.outputLedger }

    public func serveHTTP(_ writer: ResponseWriter, _ request: Request) async throws {
        try await self.upgrader.upgrade(writer, request, events: self.events)
    }
}
