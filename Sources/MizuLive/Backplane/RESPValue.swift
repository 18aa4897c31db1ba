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
        buffer.writeString("*\(arguments.count)\r\n")
        for argument in arguments {
            buffer.writeString("$\(argument.utf8.count)\r\n")
            buffer.writeString(argument)
            buffer.writeStaticString("\r\n")
        }
    }

    /// Writes a command whose last argument is raw bytes (a PUBLISH payload).
    static func writeCommand(_ arguments: [String], payload: ByteBuffer, into buffer: inout ByteBuffer) {
        buffer.writeString("*\(arguments.count + 1)\r\n")
        for argument in arguments {
            buffer.writeString("$\(argument.utf8.count)\r\n")
            buffer.writeString(argument)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeString("$\(payload.readableBytes)\r\n")
        var payload = payload
        buffer.writeBuffer(&payload)
        buffer.writeStaticString("\r\n")
    }
}
