import MizuHTTP
import MizuWebSocket

extension Live {
    /// What went wrong with a session: thrown by ``Session/send(_:)`` (`sessionClosed`,
    /// `queueFull`, `invalidData`), and reported as the reason a session ended
    /// (``Session/closeError``, `onClose`: every case but `sessionClosed` and `invalidData`).
    /// One type for both, as Go's `live.ErrSessionClosed` and `live.ErrQueueFull` are.
    public enum Error: Swift.Error, Sendable, Equatable, CustomStringConvertible {
        /// The session is closed; nothing more can be sent.
        case sessionClosed
        /// The session's send queue was full: it was closed as a slow consumer.
        case queueFull
        /// The client sent a message over the read limit (closed with 1009).
        case messageTooLarge
        /// The client broke the protocol; the server closed with `code` (1002, 1007).
        case protocolError(code: UInt16, reason: String)
        /// The client closed with a code other than 1000 or 1001.
        case closedByPeer(code: UInt16, reason: String)
        /// The client stopped answering heartbeat pings.
        case heartbeatTimeout
        /// The server shut down (closed with 1001).
        case serverShutdown
        /// The client left the server's output unread for longer than the write-stall timeout.
        case writeTimeout
        /// A message's data was not one JSON value (in valid UTF-8); it was not sent.
        case invalidData
        /// The TCP connection ended without a close handshake.
        case connectionLost

        public var description: String {
            switch self {
            case .sessionClosed: return "session closed"
            case .queueFull: return "send queue full"
            case .messageTooLarge: return "message over the read limit"
            // Reasons come from the client: escaped, so logging an error cannot forge a line.
            case .protocolError(let code, let reason): return "protocol error \(code): \(LogSafe(reason))"
            case .closedByPeer(let code, let reason): return "closed by client with \(code)\(reason.isEmpty ? "" : ": \(LogSafe(reason))")"
            case .heartbeatTimeout: return "heartbeat timeout"
            case .serverShutdown: return "server shutdown"
            case .writeTimeout: return "write timeout"
            case .invalidData: return "data is not one JSON value"
            case .connectionLost: return "connection lost"
            }
        }

        /// The error for how a WebSocket connection ended; nil for a clean close.
        static func from(_ reason: WebSocketCloseReason) -> Error? {
            switch reason {
            case .peerClosed(let code, let text):
                guard let code, code != 1000, code != 1001 else { return nil }
                return .closedByPeer(code: code, reason: text)
            case .serverClosed: return nil
            case .protocolViolation(let code, let text): return code == 1009 ? .messageTooLarge : .protocolError(code: code, reason: text)
            case .heartbeatTimeout: return .heartbeatTimeout
            case .sendQueueFull: return .queueFull
            case .serverShutdown: return .serverShutdown
            case .writeTimeout: return .writeTimeout
            case .connectionLost: return .connectionLost
            }
        }
    }
}
