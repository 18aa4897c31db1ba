import NIOCore

/// A WebSocket opcode (RFC 6455 section 5.2).
public enum WebSocketOpcode: UInt8, Sendable {
    /// A later fragment of a fragmented message.
    case continuation = 0x0
    /// A text message (UTF-8, checked).
    case text = 0x1
    /// A binary message.
    case binary = 0x2
    /// The close handshake (a code and a reason).
    case close = 0x8
    /// A ping, answered with a pong carrying its payload.
    case ping = 0x9
    /// A pong: the answer to a ping (or an unsolicited heartbeat).
    case pong = 0xA

    var isControl: Bool { self.rawValue & 0x8 != 0 }
}
