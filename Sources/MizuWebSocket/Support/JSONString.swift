import NIOCore

/// Writes a Swift string as a JSON string (RFC 8259 section 7), for the envelopes both the
/// server and the client build: quotes, backslashes and control characters escaped, and
/// U+2028/U+2029 too, so the text is also a valid JavaScript literal.
package enum JSONString {
    package static func write(_ string: String, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("\"")
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": buffer.writeStaticString("\\\"")
            case "\\": buffer.writeStaticString("\\\\")
            case "\n": buffer.writeStaticString("\\n")
            case "\r": buffer.writeStaticString("\\r")
            case "\t": buffer.writeStaticString("\\t")
            case "\u{2028}": buffer.writeStaticString("\\u2028")
            case "\u{2029}": buffer.writeStaticString("\\u2029")
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    buffer.writeString("\\u" + String(repeating: "0", count: 4 - hex.count) + hex)
                } else {
                    buffer.writeString(String(scalar))
                }
            }
        }
        buffer.writeStaticString("\"")
    }
}
