import Foundation
import MizuHTTP
import MizuWebSocket
import NIOCore

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
            if self.core.options.onMessage != nil || self.core.options.commands != nil {
                session.enqueue(.message(topic: envelope.topic, data: envelope.data))
            }
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
