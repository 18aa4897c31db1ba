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
        // Fields read one by one (a copy of the whole options retains and releases each).
        let core = self.core
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
        guard core.options.allowsOrigin(of: request) else {
            try await Self.refuse(writer, .forbidden, "origin not allowed")
            return
        }
        let context = Live.Context(request: request)
        var value: (any Sendable)?
        if let onAuth = core.options.onAuth {
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
            id: core.options.idGenerator.map { .custom($0()) } ?? .random(), value: value,
            request: Self.kept(request, headerBytes: core.options.keptRequestHeaderBytes), core: core,
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
            guard !Self.handshakeHeaders.contains(where: { ASCIICase.equal(header.name, $0) }) else { return false }
            let size = header.name.utf8.count + header.value.utf8.count
            guard size <= budget else { return false }
            budget -= size
            return true
        })
        return kept
    }

    private static let handshakeHeaders: [String] = [
        "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "upgrade", "connection",
    ]

    private static func refuse(_ writer: ResponseWriter, _ status: HTTPResponseStatus, _ reason: String) async throws {
        writer.status = status
        writer.setHeader("content-type", "text/plain; charset=utf-8")
        try await writer.write(reason + "\n")
    }
}
