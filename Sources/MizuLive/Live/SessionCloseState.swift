import MizuWebSocket

/// A session's close in one place, from the first decision to the end of its connection:
/// who decided (the application, the server, or the connection and its peer), the error
/// onClose reports, and what the connection is told, once. A value type the session keeps
/// under its lock; the connection's own close handshake is its state machine's business.
///
/// | phase | left by | to |
/// |---|---|---|
/// | `open` | ``close()`` (clean), ``fail(_:)`` (the server's reason is recorded first) | `closing` |
/// | `open`, `closing` | ``connectionEnded(_:)`` (from `open`: the connection's reason) | `finished` |
struct SessionCloseState {
    enum Phase: Equatable {
        case open
        /// Decided on our side; the connection is closing.
        case closing
        /// The connection has ended and the session left its topics.
        case finished
    }

    /// What the connection is told to do.
    enum Command: Equatable {
        case close(code: UInt16, reason: String)
        case closeAsSlowConsumer
        case closeForShutdown
    }

    private(set) var phase = Phase.open
    /// What onClose reports: nil for a clean close.
    private(set) var error: Live.Error?

    /// Closed or closing: nothing more is sent or subscribed.
    var isClosed: Bool { self.phase != .open }

    /// The application closes the session cleanly (1000), or with its own code (4000-4999).
    mutating func close(code: UInt16 = 1000, reason: String = "") -> Command? {
        guard self.phase == .open else { return nil }
        self.phase = .closing
        return .close(code: code, reason: reason)
    }

    /// The server ends the session because of `error`, which onClose will report whatever
    /// the connection says later (no round trip through a WebSocket reason).
    mutating func fail(_ error: Live.Error) -> Command? {
        guard self.phase == .open else { return nil }
        self.phase = .closing
        self.error = error
        switch error {
        case .queueFull: return .closeAsSlowConsumer
        case .serverShutdown: return .closeForShutdown
        default: return .close(code: 1011, reason: "\(error)")
        }
    }

    /// The connection ended; true the first time. If nothing on our side decided, its
    /// reason becomes the session's (a peer's close code, a protocol error, a lost peer).
    mutating func connectionEnded(_ reason: WebSocketCloseReason) -> Bool {
        switch self.phase {
        case .finished:
            return false
        case .open:
            self.error = Live.Error.from(reason)
        case .closing:
            break
        }
        self.phase = .finished
        return true
    }
}
