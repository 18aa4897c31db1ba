extension StringProtocol {
    /// The value without leading and trailing optional whitespace (RFC 9110 OWS: spaces
    /// and tabs). Foundation's `trimmingCharacters(in:)` goes through NSString and showed
    /// in the connect path's profile; this does not allocate beyond the result.
    package func trimmingHTTPWhitespace() -> String {
        let isOWS: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = self.firstIndex(where: { !isOWS($0) }), let last = self.lastIndex(where: { !isOWS($0) }) else {
            return ""
        }
        return String(self[first...last])
    }
}
