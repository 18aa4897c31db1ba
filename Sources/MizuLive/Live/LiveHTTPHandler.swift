import Foundation
import MizuHTTP
import MizuWebSocket
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// The seed's `server.Handler()`: origin check, onAuth, handshake, then the session.
struct LiveHTTPHandler: HTTPHandler {
    let core: ServerCore

    /// Go's order: not a WebSocket request (400, 426 for a version), then origin (403), then
    /// onAuth (401), then the key and negotiation. Before the origin: a draining server
    /// answers 503, and the connection limits 503 (sessions) or 429 (handshake rate).
    func serveHTTP(_ writer: ResponseWriter, _ request: Request) async throws {
        let options = self.core.options
        do {
            try WebSocketHandshake.checkUpgradeRequest(request)
        } catch {
            try await error.respond(writer)
            return
        }
        guard !self.core.isDraining else {
            // A random hint, so clients that honour it do not all come back together.
            writer.setHeader("retry-after", String(Int.random(in: 1...5)))
            try await Self.refuse(writer, .serviceUnavailable, "server shutting down")
            return
        }
        let ticket: ConnectionLimiter.Ticket
        switch self.core.limiter.admit(request.remoteAddress) {
        case .admitted(let admitted):
            ticket = admitted
        case .tooManySessions(let retryAfter):
            writer.setHeader("retry-after", String(retryAfter))
            try await Self.refuse(writer, .serviceUnavailable, "too many sessions")
            return
        case .tooManyConnects(let retryAfter):
            writer.setHeader("retry-after", String(retryAfter))
            try await Self.refuse(writer, .tooManyRequests, "too many connections, slow down")
            return
        }
        // From here the place is the session's: given back when it closes, or below if the
        // handshake goes no further.
        var handedOver = false
        defer { if !handedOver { ticket.release() } }
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
                // The application's error can carry internals: it is logged, never sent.
                self.core.logger.info("onAuth refused a connection", metadata: ["error": "\(LogSafe("\(error)"))"])
                try await Self.refuse(writer, .unauthorized, "unauthorized")
                return
            }
        }
        let upgrader = self.core.upgrader
        let handshake: WebSocketHandshake
        do {
            handshake = try WebSocketHandshake.negotiate(request, configuration: upgrader.configuration)
        } catch {
            try await error.respond(writer)
            return
        }
        let opening = SessionOpening(
            id: options.idGenerator.map { .custom($0()) } ?? .random(), value: value,
            request: Self.kept(request, headerBytes: options.keptRequestHeaderBytes), core: self.core,
            ticket: ticket)
        handedOver = true
        do {
            _ = try await upgrader.accept(handshake, writer: writer, request: request, events: opening.events)
        } catch {
            ticket.release()  // the connection is gone before the session opened; releasing twice is harmless
            throw error
        }
    }

    /// The request as a session keeps it: without the handshake's own headers, which mean
    /// nothing once the connection is open (an idle session is mostly what it stores), and
    /// with the others only while they fit in `headerBytes` (a header that does not fit is
    /// skipped; smaller ones after it may still fit). A client chooses its headers: what an
    /// idle session holds must not be its choice.
    static func kept(_ request: Request, headerBytes: Int) -> Request {
        var kept = request
        kept.body = ByteBuffer()
        var budget = max(0, headerBytes)
        // A fresh array of exactly the kept headers: removing in place keeps the capacity.
        kept.headers = HTTPHeaders(request.headers.filter { header in
            guard !Self.handshakeHeaders.contains(header.name.lowercased()) else { return false }
            let size = header.name.utf8.count + header.value.utf8.count
            guard size <= budget else { return false }
            budget -= size
            return true
        })
        return kept
    }

    private static let handshakeHeaders: Set<String> = [
        "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "upgrade", "connection",
    ]

    private static func refuse(_ writer: ResponseWriter, _ status: HTTPResponseStatus, _ reason: String) async throws {
        writer.status = status
        writer.setHeader("content-type", "text/plain; charset=utf-8")
        try await writer.write(reason + "\n")
    }
}

/// What a connection needs until its session exists, then the session: the events that
/// drive it. The three callbacks share this one object, and once the session is open the
/// opening data is dropped, so an idle connection carries little.
///
/// `@unchecked Sendable`: `stage` is read and written only by the three callbacks of
/// ``events``, which ``WebSocketEvents`` runs on the connection's one event loop, one at a
/// time, in order; its first value is set in `init`, before the events reach the upgrader
/// (the channel that calls them is set up after that, on its loop). So no two threads
/// ever touch it at once, and it needs no lock: none is taken per message.
final class SessionOpening: @unchecked Sendable {
    private enum Stage {
        /// Boxed so the stage stays the size of a reference once the session is open.
        case pending(Pending)
        case open(Live.Session)
        case gone
    }

    private final class Pending {
        let id: Live.SessionID
        let value: (any Sendable)?
        let request: Request

        init(id: Live.SessionID, value: (any Sendable)?, request: Request) {
            self.id = id
            self.value = value
            self.request = request
        }
    }

    let core: ServerCore
    private var stage: Stage
    /// The session's place under the connection limits, given back when it closes.
    private let ticket: ConnectionLimiter.Ticket

    init(id: Live.SessionID, value: (any Sendable)?, request: Request, core: ServerCore, ticket: ConnectionLimiter.Ticket) {
        self.core = core
        self.stage = .pending(Pending(id: id, value: value, request: request))
        self.ticket = ticket
    }

    var events: WebSocketEvents {
        WebSocketEvents(
            onOpen: { [self] connection in self.open(connection) },
            onMessage: { [self] _, message in self.receive(message) },
            onClose: { [self] _, reason in self.close(reason) })
    }

    private func open(_ connection: WebSocketConnection) {
        guard case .pending(let pending) = self.stage else { return }
        let session = Live.Session(
            id: pending.id, value: pending.value, request: pending.request, connection: connection, core: self.core)
        self.stage = .open(session)
        self.core.metrics.opened.increment()
        self.core.metrics.sessions.increment()
        let accepted = self.core.register(session)
        if self.core.options.onOpen != nil { session.enqueue(.open) }
        // Opened while the server drains: open and closed like every other session, at once.
        if !accepted { session.fail(.serverShutdown) }
    }

    /// One copy from the frame to the hook: the envelope is scanned in place and only its
    /// `data` is copied out; text was validated as UTF-8 when it arrived, so it is not again.
    private func receive(_ message: WebSocketMessage) {
        guard case .open(let session) = self.stage else { return }
        self.core.metrics.received.increment()
        let envelope = message.data.withUnsafeReadableBytes {
            Live.Message.parse($0, utf8Validated: message.opcode == .text)
        }
        if let envelope {
            if self.core.options.onMessage != nil { session.enqueue(.message(topic: envelope.topic, data: envelope.data)) }
        } else {
            // Through the queue even for the default reply: reactions keep the order of the frames.
            session.enqueue(.bad(Data(message.data.readableBytesView)))
        }
    }

    private func close(_ reason: WebSocketCloseReason) {
        self.ticket.release()
        let current = self.stage
        self.stage = .gone
        guard case .open(let session) = current, session.markClosed(reason) else { return }
        self.core.metrics.sessionClosed(session.closeError)
        self.core.unregister(session)
        if self.core.options.onClose != nil { session.enqueue(.close) }
    }
}

extension Live.Session {
    /// Runs one hook; a session's hooks run one at a time, in order (see ``SessionInbox``).
    func runHook(_ item: SessionInbox.Item) async {
        let options = self.core.options
        switch item {
        case .open:
            await options.onOpen?(Live.Context(request: self.request), self)
        case .message(let topic, let data):
            await options.onMessage?(Live.Context(request: self.request), self, topic, data)
        case .bad(let data):
            if let onBadMessage = options.onBadMessage {
                await onBadMessage(self, data)
            } else {
                try? self.send(Live.Message(topic: "error", data: Data(#""bad message""#.utf8)))
            }
        case .close:
            await options.onClose?(self, self.closeError)
        }
    }
}
