/// A client-controlled string made fit for one log line: control characters, quotes and
/// backslashes escaped (a `\n` in a close reason cannot forge a second line), and at most
/// `limit` characters kept.
package struct LogSafe: CustomStringConvertible, Sendable {
    package let description: String

    package init(_ text: some StringProtocol, limit: Int = 256) {
        var out = ""
        out.reserveCapacity(min(text.utf8.count, limit) + 8)
        var count = 0
        for scalar in text.unicodeScalars {
            if count == limit {
                out += "..."
                break
            }
            count += 1
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case _ where scalar.value < 0x20 || scalar.value == 0x7F || (0x80..<0xA0).contains(scalar.value)
                || scalar.value == 0x2028 || scalar.value == 0x2029:
                out += "\\u{" + String(scalar.value, radix: 16) + "}"
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        self.description = out
    }
}
