import Mizu
import NIOCore

/// A complete data message: text (already validated UTF-8) or binary.
public struct WebSocketMessage: Sendable, Equatable {
    /// `.text` or `.binary`.
    public private(set) var opcode: WebSocketOpcode
    /// The payload, decompressed when it arrived compressed.
    public var data: ByteBuffer

    /// A message of `opcode` with `data`; nil unless `opcode` is `.text` or `.binary` (pings and
    /// closes have their own calls on ``WebSocketConnection``, continuations are the
    /// connection's business), so no message can make an invalid frame.
    public init?(opcode: WebSocketOpcode, data: ByteBuffer) {
        guard opcode == .text || opcode == .binary else { return nil }
        self.init(dataOpcode: opcode, data: data)
    }

    /// For callers that pass `.text` or `.binary` only.
    package init(dataOpcode opcode: WebSocketOpcode, data: ByteBuffer) {
        self.opcode = opcode
        self.data = data
    }

    /// A text message.
    public static func text(_ text: String) -> WebSocketMessage {
        WebSocketMessage(dataOpcode: .text, data: ByteBuffer(string: text))
    }

    /// A binary message.
    public static func binary(_ bytes: [UInt8]) -> WebSocketMessage {
        WebSocketMessage(dataOpcode: .binary, data: ByteBuffer(bytes: bytes))
    }

    /// The payload as a string (text messages are valid UTF-8 by construction).
    public var text: String { String(buffer: self.data) }
}

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
