import MizuHTTP
import NIOHTTP1

extension HTTPHeaders {
    /// Whether the comma-separated header `name` (every line of it) lists `token`, compared
    /// without regard to ASCII case, with optional whitespace around each item (RFC 9110
    /// section 5.6.1). Scans in place: a handshake's token checks cost no allocation (NIO's
    /// `[canonicalForm:]` builds an array of strings per header).
    func lists(_ name: String, token: String) -> Bool {
        var token = token
        return token.withUTF8 { token in
            for header in self where ASCIICase.equal(header.name, name) {
                var value = header.value
                if value.withUTF8({ Self.listsItem(token, in: $0) }) { return true }
            }
            return false
        }
    }

    private static func listsItem(_ token: UnsafeBufferPointer<UInt8>, in value: UnsafeBufferPointer<UInt8>) -> Bool {
        var start = 0
        while start <= value.count {
            var end = start
            while end < value.count, value[end] != UInt8(ascii: ",") { end += 1 }
            var first = start
            var last = end
            while first < last, Self.isWhitespace(value[first]) { first += 1 }
            while last > first, Self.isWhitespace(value[last - 1]) { last -= 1 }
            if ASCIICase.equal(UnsafeBufferPointer(rebasing: value[first..<last]), token) { return true }
            start = end + 1
        }
        return false
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
}
