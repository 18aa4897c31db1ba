import Foundation
import Mizu
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// The seed's `server.Handler()`: origin check, onAuth, handshake, then the session.
struct LiveHTTPHandler: HTTPHandler {
    let core: ServerCore

    func serveHTTP(_ writer: ResponseWriter, _ request: Request) async throws {
        let options = self.core.options
        guard options.allowsOrigin(of: request) else {
            try await Self.refuse(writer, .forbidden, "origin not allowed")
            return
        }
        let context = Live.Context(request: request)
        var value: (any Sendable)?
        if let onAuth = options.onAuth {
            do {
                value = try await onAuth(context, request)
            } catch {
                try await Self.refuse(writer, .unauthorized, "unauthorized: \(error)")
                return
            }
        }
        // As in Go, where the upgrader runs after OnAuth: the handshake is checked last.
        let configuration = self.core.webSocketConfiguration
        let handshake: WebSocketHandshake
        do {
            handshake = try WebSocketHandshake.validate(request, configuration: configuration)
        } catch {
            try await error.respond(writer)
            return
        }
        let id = options.idGenerator?() ?? Live.Options.randomID()
        let slot = NIOLockedValueBox<Live.Session?>(nil)
        let core = self.core
        let events = WebSocketEvents(
            onOpen: { [value] connection in
                let session = Live.Session(
                    id: id, value: value, request: request, connection: connection, core: core,
                    hooks: { session, item in await Self.run(item, session: session, context: context, options: options) })
                slot.withLockedValue { $0 = session }
                core.register(session)
                if options.onOpen != nil { session.enqueue(.open) }
            },
            onMessage: { _, message in
                guard let session = slot.withLockedValue({ $0 }) else { return }
                let bytes = Data(message.data.readableBytesView)
                if let envelope = Live.Message.parse(bytes) {
                    if options.onMessage != nil { session.enqueue(.message(topic: envelope.topic, data: envelope.data)) }
                } else if options.onBadMessage != nil {
                    session.enqueue(.bad(bytes))
                } else {
                    try? session.send(Live.Message(topic: "error", data: Data(#""bad message""#.utf8)))
                }
            },
            onClose: { _, reason in
                guard let session = slot.withLockedValue({ $0 }) else { return }
                if session.markClosed(reason) {
                    core.unregister(session)
                    if options.onClose != nil { session.enqueue(.close) }
                }
            })
        _ = try await WebSocketUpgrader(configuration: configuration).accept(handshake, writer: writer, request: request, events: events)
    }

    /// Runs one hook; a session's hooks run one at a time, in order (see ``SessionInbox``).
    private static func run(_ item: SessionInbox.Item, session: Live.Session, context: Live.Context, options: Live.Options) async {
        switch item {
        case .open:
            await options.onOpen?(context, session)
        case .message(let topic, let data):
            await options.onMessage?(context, session, topic, data)
        case .bad(let data):
            await options.onBadMessage?(session, data)
        case .close:
            await options.onClose?(session, session.closeError)
        }
    }

    private static func refuse(_ writer: ResponseWriter, _ status: HTTPResponseStatus, _ reason: String) async throws {
        writer.status = status
        writer.setHeader("content-type", "text/plain; charset=utf-8")
        try await writer.write(reason + "\n")
    }
}
