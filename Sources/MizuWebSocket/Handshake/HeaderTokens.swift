import MizuHTTP
import NIOHTTP1

extension HTTPHeaders {
    /// Whether the comma-separated header `name` (every line of it) lists `token`, compared
    /// without regard to ASCII case, with optional whitespace around each item (RFC 9110
    /// section 5.6.1). Scans in place: a handshake's token checks cost no allocation (NIO's
    /// `[canonicalForm:]` builds an array of strings per header).
    func lists(_ name: String, token: String) -> Bool {
        for header in self where ASCIICase.equal(header.name.utf8, name.utf8) {
            let value = header.value.utf8
            var start = value.startIndex
            while start <= value.endIndex {
                let end = value[start...].firstIndex(of: UInt8(ascii: ",")) ?? value.endIndex
                var first = start
                var last = end
                while first < last, Self.isWhitespace(value[first]) { first = value.index(after: first) }
                while last > first, Self.isWhitespace(value[value.index(before: last)]) { last = value.index(before: last) }
                if ASCIICase.equal(value[first..<last], token.utf8) { return true }
                guard end < value.endIndex else { break }
                start = value.index(after: end)
            }
        }
        return false
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
}
