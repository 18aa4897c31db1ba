@testable import MizuHTTP
import Testing

/// Small pieces of the connect path made cheaper: they must still be right.
struct ConnectPathHelpersTests {
    @Test func optionalWhitespaceIsTrimmedAsBytesKeepingWhatIsInside() {
        #expect(" \t13\t ".trimmingHTTPWhitespace() == "13")
        #expect("13".trimmingHTTPWhitespace() == "13")
        #expect("  ".trimmingHTTPWhitespace() == "")
        #expect("".trimmingHTTPWhitespace() == "")
        #expect("\tchat, superchat ".trimmingHTTPWhitespace() == "chat, superchat")
        // Not HTTP whitespace: kept. Multi-byte scalars at either end stay whole.
        #expect("\u{A0}x\u{A0}".trimmingHTTPWhitespace() == "\u{A0}x\u{A0}")
        #expect(" é ".trimmingHTTPWhitespace() == "é")
        #expect(" 👍🏽 ".trimmingHTTPWhitespace() == "👍🏽")
        let text = "  key  "
        #expect(text[text.index(after: text.startIndex)...].trimmingHTTPWhitespace() == "key")
    }

    /// Buffered, the generator hands out each value once, across many refills, and its
    /// values carry every bit (a pool left unfilled would repeat zeros).
    @Test func bufferedRandomValuesAreNeverRepeatedAndUseEveryBit() {
        var generator = BufferedSystemRandom()
        var seen = Set<UInt64>()
        var ored: UInt64 = 0
        var anded: UInt64 = .max
        for _ in 0..<2_000 {
            let value = generator.next()
            seen.insert(value)
            ored |= value
            anded &= value
        }
        #expect(seen.count == 2_000)
        #expect(ored == .max && anded == 0)
    }
}
