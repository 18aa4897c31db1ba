import NIOCore

/// Writes a Swift string as a JSON string (RFC 8259 section 7), for the envelopes both the
/// server and the client build: quotes, backslashes and control characters escaped, and
/// U+2028/U+2029 too, so the text is also a valid JavaScript literal.
package enum JSONString {
    package static func write(_ string: String, into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "\""))
        var string = string
        // Over the UTF-8 bytes, copying the runs that need no escape whole (a String per
        // character showed in the connect path's profile).
        string.withUTF8 { bytes in
            var runStart = 0
            var index = 0
            while index < bytes.count {
                let byte = bytes[index]
                // U+2028 and U+2029 are E2 80 A8 and E2 80 A9.
                let separator = byte == 0xE2 && index + 2 < bytes.count && bytes[index + 1] == 0x80 && (bytes[index + 2] | 1) == 0xA9
                guard byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte < 0x20 || separator else {
                    index += 1
                    continue
                }
                buffer.writeBytes(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(bytes)[runStart..<index]))
                if separator {
                    buffer.writeStaticString(bytes[index + 2] == 0xA8 ? "\\u2028" : "\\u2029")
                    index += 3
                } else {
                    Self.writeEscape(byte, into: &buffer)
                    index += 1
                }
                runStart = index
            }
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(bytes)[runStart..<bytes.count]))
        }
        buffer.writeInteger(UInt8(ascii: "\""))
    }

    private static func writeEscape(_ byte: UInt8, into buffer: inout ByteBuffer) {
        switch byte {
        case UInt8(ascii: "\""): buffer.writeStaticString("\\\"")
        case UInt8(ascii: "\\"): buffer.writeStaticString("\\\\")
        case UInt8(ascii: "\n"): buffer.writeStaticString("\\n")
        case UInt8(ascii: "\r"): buffer.writeStaticString("\\r")
        case UInt8(ascii: "\t"): buffer.writeStaticString("\\t")
        default:
            // Other control characters: \u00XX, lowercase hex.
            func hexDigit(_ nibble: UInt8) -> UInt8 { nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10 }
            buffer.writeStaticString("\\u00")
            buffer.writeInteger(hexDigit(byte >> 4))
            buffer.writeInteger(hexDigit(byte & 0x0F))
        }
    }
}
