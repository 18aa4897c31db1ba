import NIOCore

/// A RESP2 value (the Redis serialization protocol), for the Redis backplane.
enum RESPValue: Equatable, Sendable {
    case simpleString(String)
    case error(String)
    case integer(Int64)
    case bulkString(ByteBuffer?)
    case array([RESPValue]?)

    /// Writes a command as RESP clients send it: an array of bulk strings.
    static func writeCommand(_ arguments: [String], into buffer: inout ByteBuffer) {
        self.writeArrayHeader(count: arguments.count, into: &buffer)
        for argument in arguments { self.writeBulkString(argument, into: &buffer) }
    }

    /// Writes a command whose last argument is raw bytes (a PUBLISH payload).
    static func writeCommand(_ arguments: [String], payload: ByteBuffer, into buffer: inout ByteBuffer) {
        self.writeArrayHeader(count: arguments.count + 1, into: &buffer)
        for argument in arguments { self.writeBulkString(argument, into: &buffer) }
        self.writeBulkString(length: payload.readableBytes, into: &buffer) { $0.writeImmutableBuffer(payload) }
    }

    /// `*count` CRLF: the start of an array of `count` values.
    static func writeArrayHeader(count: Int, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("*")
        buffer.writeString(String(count))
        buffer.writeStaticString("\r\n")
    }

    static func writeBulkString(_ text: String, into buffer: inout ByteBuffer) {
        self.writeBulkString(length: text.utf8.count, into: &buffer) { $0.writeString(text) }
    }

    /// A bulk string of `length` bytes that `body` writes (in pieces, without a copy first).
    static func writeBulkString(length: Int, into buffer: inout ByteBuffer, _ body: (inout ByteBuffer) -> Void) {
        buffer.writeStaticString("$")
        buffer.writeString(String(length))
        buffer.writeStaticString("\r\n")
        body(&buffer)
        buffer.writeStaticString("\r\n")
    }
}
