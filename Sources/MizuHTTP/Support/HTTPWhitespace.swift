extension StringProtocol {
    /// The value without leading and trailing optional whitespace (RFC 9110 OWS: spaces
    /// and tabs), scanned as bytes: Foundation's `trimmingCharacters(in:)` (through NSString)
    /// and a scan by `Character` (grapheme breaking) both showed in the connect path's profile.
    package func trimmingHTTPWhitespace() -> String {
        let bytes = self.utf8
        var first: Self.UTF8View.Index?
        var last = bytes.startIndex
        var index = bytes.startIndex
        while index != bytes.endIndex {
            if bytes[index] != 0x20 && bytes[index] != 0x09 {
                if first == nil { first = index }
                last = index
            }
            bytes.formIndex(after: &index)
        }
        guard let first else { return "" }
        if first == bytes.startIndex, bytes.index(after: last) == bytes.endIndex, let whole = self as? String { return whole }
        // Whole scalars: the cut falls next to ASCII bytes.
        return String(decoding: bytes[first...last], as: UTF8.self)
    }
}

extension String {
    /// As StringProtocol's, for a `String`: the generic one is not specialized across modules,
    /// and the handshake's header checks call it on every connect.
    package func trimmingHTTPWhitespace() -> String {
        var bytes = self
        return bytes.withUTF8 { utf8 in
            var first = 0
            var end = utf8.count
            while first < end, utf8[first] == 0x20 || utf8[first] == 0x09 { first += 1 }
            while end > first, utf8[end - 1] == 0x20 || utf8[end - 1] == 0x09 { end -= 1 }
            if first == 0 && end == utf8.count { return self }
            return String(decoding: UnsafeBufferPointer(rebasing: utf8[first..<end]), as: UTF8.self)
        }
    }
}
