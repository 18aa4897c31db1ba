import MizuHTTP
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
