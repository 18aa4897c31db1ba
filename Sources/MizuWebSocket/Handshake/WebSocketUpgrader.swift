import MizuHTTP
import NIOConcurrencyHelpers
import NIOCore

/// Turns an HTTP request into a WebSocket connection: validates the opening handshake,
/// answers 101 (or the refusal RFC 6455 names) and installs the protocol engine.
public struct WebSocketUpgrader: Sendable {
    /// The endpoint's settings.
    public var configuration: WebSocketConfiguration {
        get { self.settings.configuration }
        set { self.settings = WebSocketSettings(newValue) }
    }

    /// One copy for all the connections this upgrader opens.
    private var settings: WebSocketSettings

    /// What each client's connections hold unread, when the configuration bounds it.
    package var outputLedger: ClientOutputLedger? { self.settings.outputLedger }

    /// An upgrader with `configuration`.
    public init(configuration: WebSocketConfiguration = WebSocketConfiguration()) {
        self.settings = WebSocketSettings(configuration)
    }

    /// Validates and upgrades in one step. A bad handshake is answered (400, 405 or 426
    /// with a short reason) and nil is returned.
    @discardableResult
    public func upgrade(_ writer: ResponseWriter, _ request: Request, events: WebSocketEvents) async throws -> WebSocketConnection? {
        let handshake: WebSocketHandshake
        do {
            handshake = try WebSocketHandshake.validate(request, configuration: self.configuration)
        } catch {
            try await error.respond(writer)
            return nil
        }
        return try await self.accept(handshake, writer: writer, request: request, events: events)
    }

    /// Completes a handshake already validated with ``WebSocketHandshake/validate(_:configuration:)``
    /// (a caller can run its own checks, such as authentication, in between).
    public func accept(
        _ handshake: WebSocketHandshake,
        writer: ResponseWriter,
        request: Request,
        events: WebSocketEvents
    ) async throws -> WebSocketConnection {
        for (name, value) in handshake.responseHeaders { writer.setHeader(name, value) }
        let created = NIOLockedValueBox<WebSocketConnection?>(nil)
        let settings = self.settings
        try await writer.upgrade { channel in
            channel.eventLoop.makeCompletedFuture {
                let connection = WebSocketConnection(
                    eventLoop: channel.eventLoop, subprotocol: handshake.subprotocol,
                    remoteAddress: request.remoteAddress, deflate: handshake.deflate,
                    sendQueueLimit: settings.configuration.maxQueuedMessages,
                    watermark: settings.configuration.sendQueueWatermark)
                created.withLockedValue { $0 = connection }
                // Our server's pipeline after an upgrade holds, besides this handler, only an
                // inbound observer and, when it serves TLS (and only then), the TLS handler.
                try channel.pipeline.syncOperations.addHandler(
                    WebSocketChannelHandler(connection: connection, events: events, settings: settings, writesStraightToChannel: !request.isSecure))
            }
        }
        guard let connection = created.withLockedValue({ $0 }) else { throw ChannelError.ioOnClosedChannel }
        return connection
    }
}
