import MizuTestSupport
@testable import MizuWebSocket
import NIOCore
import Testing

/// JSON strings written byte-run by byte-run: the same text as escaping scalar by scalar.
@Suite struct JSONStringTests {
    /// The reference: RFC 8259 section 7 one scalar at a time, U+2028/U+2029 escaped too.
    private func reference(_ string: String) -> String {
        var out = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{2028}": out += "\\u2028"
            case "\u{2029}": out += "\\u2029"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    private func written(_ string: String) -> String {
        var buffer = ByteBuffer()
        JSONString.write(string, into: &buffer)
        return String(buffer: buffer)
    }

    @Test func everyEscapeAtEveryPlace() {
        for string in ["", "plain", "\"", "\\", "a\"b\\c", "\n\r\t", "\u{0}\u{1}\u{1F}\u{7F}", "\u{2028}", "x\u{2029}y", "\u{2027}\u{202A}",
                       "é€😀", "ends with E2 \u{E2}", "chat:général \u{2028}\"room\""] {
            #expect(self.written(string) == self.reference(string), "\(string.debugDescription)")
        }
    }

    @Test func randomStringsReadTheSameAsTheReference() {
        var random = SeededRandom(state: 0x150E_2026)
        let pieces: [String] = ["a", "Z", "0", " ", "\"", "\\", "\n", "\r", "\t", "\u{0}", "\u{1B}", "\u{7F}", "é", "€", "😀", "\u{2028}", "\u{2029}", "\u{2027}", "/"]
        for _ in 0..<2000 {
            let string = (0..<Int(random.next() % 24)).map { _ in pieces[Int(random.next() % UInt64(pieces.count))] }.joined()
            #expect(self.written(string) == self.reference(string), "\(string.debugDescription)")
        }
    }
}
