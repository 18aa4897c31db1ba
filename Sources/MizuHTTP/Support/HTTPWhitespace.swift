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
