/// One `Range: bytes=...` request (RFC 9110 section 14.1.2) against a file of `size` bytes.
/// Several ranges at once are answered with the whole file (allowed, and no multipart body).
/// Positions are digits only, read with overflow checked: a position past anything
/// representable is still well-formed (a first byte past the end is 416, a last byte past
/// the end is the end), never a trap.
enum ByteRange: Equatable {
    case whole
    case part(Range<Int>)
    case unsatisfiable

    static func parse(_ header: String, size: Int) -> ByteRange {
        let value = header.trimmingHTTPWhitespace()
        guard value.lowercased().hasPrefix("bytes="), !value.contains(",") else { return .whole }
        let spec = value.dropFirst("bytes=".count).trimmingHTTPWhitespace()
        guard let dash = spec.firstIndex(of: "-") else { return .whole }
        let first = spec[..<dash], last = spec[spec.index(after: dash)...]
        if first.isEmpty {
            // A suffix: the last n bytes (all of them when n is larger than the file).
            guard let length = ClientNumber.saturating(last) else { return .whole }
            guard length > 0, size > 0 else { return .unsatisfiable }
            return .part((size - min(length, size))..<size)
        }
        guard let start = ClientNumber.saturating(first) else { return .whole }
        guard start < size else { return .unsatisfiable }
        if last.isEmpty { return .part(start..<size) }
        guard let end = ClientNumber.saturating(last), end >= start else { return .whole }
        // end < Int.max here or min() picks size: end + 1 cannot overflow once clamped.
        return .part(start..<(min(end, size - 1) + 1))
    }
}
