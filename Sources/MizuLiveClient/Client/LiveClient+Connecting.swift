import MizuHTTP
import MizuWebSocket
import NIOCore

/// The one task a client runs: connect, wait for the end, decide (``ReconnectSchedule``),
/// wait, again. Frames never pass through it: they are handled on the connection's event loop.
extension LiveClient {
    static let subprotocol = "mizu-live.v1"

    func run() async {
        var schedule = ReconnectSchedule(policy: self.core.configuration.reconnect)
        var random = SystemRandomNumberGenerator()
        var attempt = 0
        var generation = 0
        while !Task.isCancelled {
            attempt += 1
            generation += 1
            guard self.transition(to: .connecting(attempt: attempt)) else { return }
            let (event, attemptReason) = await self.attempt(generation: generation)
            var reason = attemptReason
            if case .opened? = event {
                attempt = 0
                _ = schedule.decide(.opened, using: &random)
            }
            guard let event, !Task.isCancelled else { continue }
            let outcome: ReconnectSchedule.Event
            switch event {
            case .opened(let connection):
                let opened = ContinuousClock.now
                let end = await connection.closeReason()
                outcome = .closed(code: Self.closeCode(end), openFor: ContinuousClock.now - opened)
                reason = end == .heartbeatTimeout ? "no frame for \(self.core.configuration.deadConnectionTimeout): connection dead" : end.description
            case .refused(let status, let retryAfter): outcome = .refused(status: status, retryAfter: retryAfter)
            case .failed: outcome = .failed
            case .stop(let reason):
                _ = self.transition(to: .stopped(reason))
                return
            }
            switch schedule.decide(outcome, using: &random) {
            case .retry(let wait):
                guard self.transition(to: .disconnected(reason: reason ?? "\(outcome)", retryIn: wait)) else { return }
                try? await Task.sleep(for: wait)
            case .stop(let reason):
                _ = self.transition(to: .stopped(reason))
                return
            case .none:
                continue
            }
        }
    }

    enum AttemptEvent {
        case opened(WebSocketConnection)
        case refused(status: Int, retryAfter: Int?)
        case failed
        case stop(StopReason)
    }

    /// One connection attempt; the reason is for the state (`disconnected(reason:)`).
    private func attempt(generation: Int) async -> (AttemptEvent?, String?) {
        let configuration = self.core.configuration
        var url = self.url
        var headers = configuration.headers.map { ($0.name, $0.value) }
        if let provider = configuration.token {
            do {
                // A provider that never answers (its auth server gone silent) must cost one
                // attempt, not the client's only task.
                let limit = configuration.handshakeTimeout
                if let token = try await withAbandoningDeadline(limit, expired: { TokenExpired(limit: limit) }, provider) {
                    switch configuration.tokenPlacement {
                    case .authorizationBearer: headers.append(("Authorization", "Bearer " + token))
                    case .query(let name): url = Self.adding(query: name, value: token, to: url)
                    }
                }
            } catch {
                return (.failed, "token provider: \(error)")
            }
        }
        var client = WebSocketClient(configuration: configuration.webSocket)
        client.configuration.idleTimeout = configuration.deadConnectionTimeout.timeAmount
        client.handshakeTimeout = configuration.handshakeTimeout.timeAmount
        #if TLS
        client.tls = configuration.tls
        #endif
        let core = self.core
        let events = WebSocketEvents(
            onOpen: { connection in
                guard connection.subprotocol == Self.subprotocol else { return }
                core.opened(connection, generation: generation)
            },
            onMessage: { _, message in core.received(message, generation: generation) },
            onClose: { _, _ in core.closed(generation: generation) })
        do {
            let connection = try await client.connect(
                to: url, subprotocols: [Self.subprotocol], headers: headers, events: events, on: configuration.eventLoopGroup)
            guard connection.subprotocol == Self.subprotocol else {
                connection.close(code: 1000, reason: "mizu-live.v1 required")
                return (.stop(.unsupportedServer), nil)
            }
            return (.opened(connection), nil)
        } catch {
            switch error {
            case .refused(let status, let retryAfter, let reason):
                return (.refused(status: status, retryAfter: retryAfter), "refused with \(status)\(reason.isEmpty ? "" : ": \(reason)")")
            case .invalidURL, .invalidHeader:
                return (.stop(.unusable(error.description)), nil)
            case .connectFailed, .invalidHandshake, .timeout, .closed:
                return (.failed, error.description)
            }
        }
    }

    /// The server's close code as the reconnect rules read it: nil for a connection lost or
    /// one we ended (a dead server, a request it never answered), which is retried.
    static func closeCode(_ reason: WebSocketCloseReason) -> UInt16? {
        switch reason {
        case .peerClosed(let code, _): return code ?? 1005
        case .serverShutdown: return 1001
        case .serverClosed, .protocolViolation, .heartbeatTimeout, .sendQueueFull, .writeTimeout, .connectionLost: return nil
        }
    }

    /// Moves to `new` unless the client was closed meanwhile (then false: stop).
    private func transition(to new: ConnectionState) -> Bool {
        var open = true
        self.core.withState { state, effects in
            guard !state.closing else {
                open = false
                return
            }
            if case .stopped = new {
                // Nothing will answer what still waits: its callers learn why now.
                for (_, request) in state.requests {
                    request.timeout?.cancel()
                    if case .call(let continuation) = request.kind, case .stopped(let reason) = new {
                        effects.replies.append((continuation, .failure(.stopped(reason))))
                    }
                }
                state.requests = [:]
                state.unsent = []
                state.unsentBytes = 0
                for topic in state.order {
                    guard let record = state.subscriptions[topic], case .stopped(let reason) = new else { continue }
                    if let waiter = record.waiter { effects.subscribed.append((waiter, .failure(.stopped(reason)))) }
                    record.subscription.buffer.finish(.failure(.stopped(reason)))
                }
                state.subscriptions = [:]
                state.order = []
                self.core.signalFlushedIfIdle(&state, &effects)
            }
            // `connected` is set by the connection's open, with the subscribes it sends.
            if new != .connected { self.core.setConnectionState(new, in: &state, &effects) }
        }
        return open
    }

    /// `url` with `name=value` added to its query, both percent-encoded.
    static func adding(query name: String, value: String, to url: String) -> String {
        let separator = url.contains("?") ? "&" : "?"
        return url + separator + Self.percentEncoded(name) + "=" + Self.percentEncoded(value)
    }

    /// RFC 3986 unreserved characters stay; every other byte is %XX.
    static func percentEncoded(_ text: String) -> String {
        var encoded = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                encoded.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                encoded += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return encoded
    }
}

/// The token provider did not answer within the handshake timeout.
struct TokenExpired: Error, CustomStringConvertible {
    let limit: Duration
    var description: String { "no token within \(self.limit)" }
}
