/// Numbers a client sends (header fields, JSON members, query values) are read only through
/// here: ASCII digits alone (no sign, no space, no `_`), with overflow checked, so no value,
/// however long, can trap or wrap. Callers decide what an out-of-range value means.
package enum ClientNumber {
    /// What a run of characters held.
    package enum Parsed: Equatable, Sendable {
        /// Digits whose value fits.
        case value(Int)
        /// Digits whose value is above `Int.max`: well-formed, but larger than anything real.
        case tooLarge
    }

    /// `text` as a non-negative decimal integer; nil unless it is one or more ASCII digits.
    package static func parse<S: StringProtocol>(_ text: S) -> Parsed? {
        var value = 0
        var overflowed = false
        var sawDigit = false
        for byte in text.utf8 {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            sawDigit = true
            if overflowed { continue }
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(Int(byte - UInt8(ascii: "0")))
            if o1 || o2 { overflowed = true } else { value = sum }
        }
        guard sawDigit else { return nil }
        return overflowed ? .tooLarge : .value(value)
    }

    /// As ``parse(_:)``, with a value above `Int.max` read as `Int.max` (for a bound that only
    /// gets clamped, such as a range's last byte).
    package static func saturating<S: StringProtocol>(_ text: S) -> Int? {
        switch self.parse(text) {
        case .value(let value): value
        case .tooLarge: Int.max
        case nil: nil
        }
    }

    /// As ``parse(_:)``, nil when the value is above `maximum`.
    package static func bounded<S: StringProtocol>(_ text: S, maximum: Int) -> Int? {
        guard case .value(let value) = self.parse(text), value <= maximum else { return nil }
        return value
    }
}
