import MizuHTTP

/// One extension offer from `Sec-WebSocket-Extensions` (RFC 6455 section 9.1).
struct ExtensionOffer: Equatable {
    var name: String
    /// Parameters in order; a nil value means the parameter had none.
    var parameters: [(name: String, value: String?)]

    static func == (lhs: ExtensionOffer, rhs: ExtensionOffer) -> Bool {
        lhs.name == rhs.name && lhs.parameters.elementsEqual(rhs.parameters) { $0.name == $1.name && $0.value == $1.value }
    }
}

/// Parses `Sec-WebSocket-Extensions` values by the RFC 7230 grammar:
///
///     extension-list = 1#extension
///     extension      = token *( ";" OWS param )
///     param          = token [ "=" ( token / quoted-string ) ]
///
/// A header that breaks the grammar yields nil: the whole header is ignored (no extension
/// is negotiated) rather than guessed at.
enum ExtensionHeaderParser {
    static func parse(_ values: [String]) -> [ExtensionOffer]? {
        var offers: [ExtensionOffer] = []
        for value in values {
            var scanner = Scanner(Array(value.utf8))
            while true {
                scanner.skipWhitespace()
                if scanner.atEnd { break }
                if scanner.peek == UInt8(ascii: ",") {  // empty list elements are allowed (RFC 7230 section 7)
                    scanner.advance()
                    continue
                }
                guard let name = scanner.token() else { return nil }
                var offer = ExtensionOffer(name: name.lowercased(), parameters: [])
                scanner.skipWhitespace()
                while scanner.peek == UInt8(ascii: ";") {
                    scanner.advance()
                    scanner.skipWhitespace()
                    guard let parameter = scanner.token() else { return nil }
                    scanner.skipWhitespace()
                    var parameterValue: String?
                    if scanner.peek == UInt8(ascii: "=") {
                        scanner.advance()
                        scanner.skipWhitespace()
                        if scanner.peek == UInt8(ascii: "\"") {
                            guard let quoted = scanner.quotedString() else { return nil }
                            // RFC 6455 section 9.1: a quoted value must still be a token.
                            guard !quoted.isEmpty, quoted.utf8.allSatisfy(HTTPToken.isTokenCharacter) else { return nil }
                            parameterValue = quoted
                        } else {
                            guard let token = scanner.token() else { return nil }
                            parameterValue = token
                        }
                        scanner.skipWhitespace()
                    }
                    offer.parameters.append((parameter.lowercased(), parameterValue))
                }
                offers.append(offer)
                scanner.skipWhitespace()
                if scanner.atEnd { break }
                guard scanner.peek == UInt8(ascii: ",") else { return nil }
                scanner.advance()
            }
        }
        return offers
    }

    private struct Scanner {
        let bytes: [UInt8]
        var index = 0

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        var atEnd: Bool { self.index >= self.bytes.count }
        var peek: UInt8? { self.atEnd ? nil : self.bytes[self.index] }
        mutating func advance() { self.index += 1 }

        mutating func skipWhitespace() {
            while let byte = self.peek, byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") { self.advance() }
        }

        mutating func token() -> String? {
            let start = self.index
            while let byte = self.peek, HTTPToken.isTokenCharacter(byte) { self.advance() }
            guard self.index > start else { return nil }
            return String(decoding: self.bytes[start..<self.index], as: UTF8.self)
        }

        mutating func quotedString() -> String? {
            self.advance()  // opening quote
            var result: [UInt8] = []
            while let byte = self.peek {
                self.advance()
                switch byte {
                case UInt8(ascii: "\""):
                    return String(decoding: result, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    guard let escaped = self.peek else { return nil }
                    result.append(escaped)
                    self.advance()
                default:
                    result.append(byte)
                }
            }
            return nil  // unterminated
        }
    }
}
