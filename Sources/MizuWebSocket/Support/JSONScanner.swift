import NIOCore

/// A strict RFC 8259 scanner over bytes that finds where values start and end without
/// building them: enough to read the envelope's `topic` and keep `data` byte-exact. Here, below
/// both the server (MizuLive) and the client (MizuLiveClient), which read the same envelopes.
package struct JSONScanner {
    private let bytes: UnsafeRawBufferPointer
    package private(set) var index = 0
    private var depth = 0
    /// Nesting deeper than this is refused, so no input can exhaust the stack.
    package static let maxDepth = 128

    package struct Invalid: Error {
        package init() {}
    }

    package init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    package var atEnd: Bool { self.index >= self.bytes.count }

    /// Whether the readable bytes are exactly one JSON value (whitespace around it allowed).
    package static func isValue(_ buffer: ByteBuffer) -> Bool {
        buffer.withUnsafeReadableBytes { Self.isValue($0) }
    }

    /// Whether `raw` is valid UTF-8 holding exactly one JSON value (whitespace around it allowed):
    /// what may go into an envelope's `data` without making the frame invalid.
    package static func isValue(_ raw: UnsafeRawBufferPointer) -> Bool {
        var validator = UTF8Validator()
        guard validator.feed(raw), validator.isComplete else { return false }
        var scanner = JSONScanner(raw)
        guard (try? scanner.skipValue()) != nil else { return false }
        scanner.skipWhitespace()
        return scanner.atEnd
    }

    package mutating func skipWhitespace() {
        while self.index < self.bytes.count {
            switch self.bytes[self.index] {
            case 0x20, 0x09, 0x0A, 0x0D: self.index += 1
            default: return
            }
        }
    }

    private func peek() -> UInt8? { self.index < self.bytes.count ? self.bytes[self.index] : nil }

    private mutating func expect(_ byte: UInt8) throws(Invalid) {
        guard self.peek() == byte else { throw Invalid() }
        self.index += 1
    }

    /// Skips one value, validating it; returns its byte range.
    package mutating func skipValue() throws(Invalid) -> Range<Int> {
        self.skipWhitespace()
        let start = self.index
        guard let byte = self.peek() else { throw Invalid() }
        switch byte {
        case UInt8(ascii: "{"):
            try self.nested { (scanner: inout JSONScanner) throws(Invalid) in
                try scanner.walkMembers(readingKeys: false) { (scanner: inout JSONScanner, _: String) throws(Invalid) in _ = try scanner.skipValue() }
            }
        case UInt8(ascii: "["):
            try self.nested { (scanner: inout JSONScanner) throws(Invalid) in try scanner.skipArray() }
        case UInt8(ascii: "\""):
            try self.skipString()
        case UInt8(ascii: "t"): try self.literal("true")
        case UInt8(ascii: "f"): try self.literal("false")
        case UInt8(ascii: "n"): try self.literal("null")
        default: try self.number()
        }
        return start..<self.index
    }

    private mutating func nested(_ body: (inout JSONScanner) throws(Invalid) -> Void) throws(Invalid) {
        self.depth += 1
        guard self.depth <= Self.maxDepth else { throw Invalid() }
        try body(&self)
        self.depth -= 1
    }

    /// Walks an object's members, calling `member` positioned at each value.
    package mutating func forEachMember(_ member: (inout JSONScanner, String) throws(Invalid) -> Void) throws(Invalid) {
        try self.walkMembers(readingKeys: true, member)
    }

    /// As ``forEachMember(_:)``; without `readingKeys` each key is validated and skipped (and
    /// `member` given ""), so validating a document builds no string.
    private mutating func walkMembers(readingKeys: Bool, _ member: (inout JSONScanner, String) throws(Invalid) -> Void) throws(Invalid) {
        self.skipWhitespace()
        try self.expect(UInt8(ascii: "{"))
        self.skipWhitespace()
        if self.peek() == UInt8(ascii: "}") {
            self.index += 1
            return
        }
        while true {
            self.skipWhitespace()
            let key: String
            if readingKeys {
                key = try self.readString()
            } else {
                try self.skipString()
                key = ""
            }
            self.skipWhitespace()
            try self.expect(UInt8(ascii: ":"))
            try member(&self, key)
            self.skipWhitespace()
            guard let next = self.peek() else { throw Invalid() }
            self.index += 1
            if next == UInt8(ascii: "}") { return }
            guard next == UInt8(ascii: ",") else { throw Invalid() }
        }
    }

    private mutating func skipArray() throws(Invalid) {
        try self.forEachElement { (scanner: inout JSONScanner) throws(Invalid) in _ = try scanner.skipValue() }
    }

    /// Walks an array's elements, calling `element` positioned at each (which must consume it).
    package mutating func forEachElement(_ element: (inout JSONScanner) throws(Invalid) -> Void) throws(Invalid) {
        self.skipWhitespace()
        try self.expect(UInt8(ascii: "["))
        self.skipWhitespace()
        if self.peek() == UInt8(ascii: "]") {
            self.index += 1
            return
        }
        while true {
            try element(&self)
            self.skipWhitespace()
            guard let next = self.peek() else { throw Invalid() }
            self.index += 1
            if next == UInt8(ascii: "]") { return }
            guard next == UInt8(ascii: ",") else { throw Invalid() }
        }
    }

    /// Reads a string, decoding escapes; the bytes must already be valid UTF-8.
    package mutating func readString() throws(Invalid) -> String {
        try self.expect(UInt8(ascii: "\""))
        let start = self.index
        var scalars: String.UnicodeScalarView?
        var runStart = start
        while true {
            guard let byte = self.peek() else { throw Invalid() }
            if byte == UInt8(ascii: "\"") {
                let tail = String(decoding: UnsafeRawBufferPointer(rebasing: self.bytes[runStart..<self.index]), as: UTF8.self)
                self.index += 1
                guard var decoded = scalars else { return tail }
                decoded.append(contentsOf: tail.unicodeScalars)
                return String(decoded)
            }
            guard byte >= 0x20 else { throw Invalid() }  // control characters must be escaped
            if byte != UInt8(ascii: "\\") {
                self.index += 1
                continue
            }
            var decoded = scalars ?? String.UnicodeScalarView()
            decoded.append(contentsOf: String(decoding: UnsafeRawBufferPointer(rebasing: self.bytes[runStart..<self.index]), as: UTF8.self).unicodeScalars)
            self.index += 1
            decoded.append(try self.escapedScalar())
            scalars = decoded
            runStart = self.index
        }
    }

    /// Skips a string, validated as ``readString()`` validates it, without building it: a
    /// publish checks its data is JSON with no allocation.
    private mutating func skipString() throws(Invalid) {
        try self.expect(UInt8(ascii: "\""))
        while true {
            guard let byte = self.peek() else { throw Invalid() }
            self.index += 1
            if byte == UInt8(ascii: "\"") { return }
            guard byte >= 0x20 else { throw Invalid() }  // control characters must be escaped
            if byte == UInt8(ascii: "\\") { _ = try self.escapedScalar() }
        }
    }

    /// Decodes the escape after a backslash (positioned just past it).
    private mutating func escapedScalar() throws(Invalid) -> Unicode.Scalar {
        guard let escape = self.peek() else { throw Invalid() }
        self.index += 1
        switch escape {
        case UInt8(ascii: "\""): return "\""
        case UInt8(ascii: "\\"): return "\\"
        case UInt8(ascii: "/"): return "/"
        case UInt8(ascii: "b"): return "\u{08}"
        case UInt8(ascii: "f"): return "\u{0C}"
        case UInt8(ascii: "n"): return "\n"
        case UInt8(ascii: "r"): return "\r"
        case UInt8(ascii: "t"): return "\t"
        case UInt8(ascii: "u"):
            var code = try self.hex4()
            if (0xD800...0xDBFF).contains(code) {
                // A high surrogate must pair with a low one.
                guard self.peek() == UInt8(ascii: "\\") else { throw Invalid() }
                self.index += 1
                try self.expect(UInt8(ascii: "u"))
                let low = try self.hex4()
                guard (0xDC00...0xDFFF).contains(low) else { throw Invalid() }
                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00...0xDFFF).contains(code) {
                throw Invalid()
            }
            guard let scalar = Unicode.Scalar(code) else { throw Invalid() }
            return scalar
        default:
            throw Invalid()
        }
    }

    private mutating func hex4() throws(Invalid) -> UInt32 {
        guard self.index + 4 <= self.bytes.count else { throw Invalid() }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = self.bytes[self.index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw Invalid()
            }
            value = value << 4 | UInt32(digit)
            self.index += 1
        }
        return value
    }

    private mutating func literal(_ word: StaticString) throws(Invalid) {
        let count = word.utf8CodeUnitCount
        guard self.index + count <= self.bytes.count else { throw Invalid() }
        for offset in 0..<count where self.bytes[self.index + offset] != word.utf8Start[offset] { throw Invalid() }
        self.index += count
    }

    /// number = [ "-" ] int [ frac ] [ exp ] (RFC 8259 section 6).
    private mutating func number() throws(Invalid) {
        if self.peek() == UInt8(ascii: "-") { self.index += 1 }
        guard let first = self.peek(), Self.isDigit(first) else { throw Invalid() }
        self.index += 1
        if first != UInt8(ascii: "0") { self.digits() }
        if self.peek() == UInt8(ascii: ".") {
            self.index += 1
            guard let digit = self.peek(), Self.isDigit(digit) else { throw Invalid() }
            self.digits()
        }
        if let e = self.peek(), e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
            self.index += 1
            if let sign = self.peek(), sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") { self.index += 1 }
            guard let digit = self.peek(), Self.isDigit(digit) else { throw Invalid() }
            self.digits()
        }
    }

    private mutating func digits() {
        while let byte = self.peek(), Self.isDigit(byte) { self.index += 1 }
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
}
