import NIOCore

/// A WebSocket opcode (RFC 6455 section 5.2).
public enum WebSocketOpcode: UInt8, Sendable {
    case continuation = 0x0
    case text = 0x1
    case binary = 0x2
    case close = 0x8
    case ping = 0x9
    case pong = 0xA

    var isControl: Bool { self.rawValue & 0x8 != 0 }
}
