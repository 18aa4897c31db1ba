import MizuHTTP
import NIOCore

/// Why a WebSocket connection ended.
public enum WebSocketCloseReason: Sendable, Equatable, CustomStringConvertible {
    /// The peer started the close handshake (code nil when its close frame had none).
    case peerClosed(code: UInt16?, reason: String)
    /// The application closed it with this code.
    case serverClosed(code: UInt16, reason: String)
    /// The peer broke the protocol; the server closed with this code (1002, 1007, 1009).
    case protocolViolation(code: UInt16, reason: String)
    /// No pong (or any frame) arrived in time after a ping.
    case heartbeatTimeout
    /// The peer did not read fast enough: the send queue was full.
    case sendQueueFull
    /// The server is shutting down (close code 1001).
    case serverShutdown
    /// The peer left our output unread for longer than the write-stall timeout.
    case writeTimeout
    /// The TCP connection ended without a close handshake.
    case connectionLost

    /// Whether this is an orderly end: a close handshake with 1000 (or no code), or the
    /// application's own close.
    public var isClean: Bool {
        switch self {
        case .peerClosed(let code, _): return code == nil || code == 1000 || code == 1001
        case .serverClosed: return true
        default: return false
        }
    }

    public var description: String {
        switch self {
        // The peer's reason is escaped: logging a close reason cannot forge a log line.
        case .peerClosed(let code, let reason): return "closed by peer (\(code.map(String.init) ?? "no code")\(reason.isEmpty ? "" : ": \(LogSafe(reason))"))"
        case .serverClosed(let code, let reason): return "closed by server (\(code)\(reason.isEmpty ? "" : ": " + reason))"
        case .protocolViolation(let code, let reason): return "protocol violation (\(code): \(reason))"
        case .heartbeatTimeout: return "heartbeat timeout"
        case .sendQueueFull: return "send queue full"
        case .serverShutdown: return "server shutdown"
        case .writeTimeout: return "write timeout"
        case .connectionLost: return "connection lost"
        }
    }
}
