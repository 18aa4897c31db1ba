import Foundation
@testable import MizuWebSocket
import Testing

/// The validator every publish runs: strings are validated without being built (a publish
/// allocates nothing for its data), and must be judged exactly as when they are read.
struct JSONScannerTests {
    static func isValue(_ text: String) -> Bool {
        Array(text.utf8).withUnsafeBytes { JSONScanner.isValue($0) }
    }

    @Test(arguments: [
        #""plain""#, #""""#, #""\"\\\/\b\f\n\r\t""#, #""\u00e9\u20AC""#, #""\ud83d\ude00""#,
        #"{"k\"ey":"v\u0041"}"#, #"{"\ud83d\ude00":["\n",{"a":"\\"}]}"#, #"["x", "y\u0000"]"#,
        "\"caf\u{e9} \u{1F600}\"",
    ])
    func validStringsAreValues(_ text: String) {
        #expect(Self.isValue(text), "\(text)")
    }

    @Test(arguments: [
        #""unterminated"#, #""bad \x escape""#, #""\u12""#, #""\u12G4""#, "\"tab\there\"",
        "\"line\nbreak\"", #""\ud83d""#, #""\ud83d\u0041""#, #""\ude00""#, #"{"k\q":1}"#,
        #"{"k":"\"}"#, #"["\"]"#, #""trailing\""#, #"{"a":"b"} x"#,
    ])
    func invalidStringsAreRefusedWhereverTheyStand(_ text: String) {
        #expect(!Self.isValue(text), "\(text)")
    }

    /// Every escape the reader decodes is accepted by the validator and the other way round.
    @Test func theValidatorAgreesWithTheReaderOnEveryShortEscape() {
        let alphabet: [String] = ["a", "\\", "\"", "u", "0", "d", "8", "3", "D", "e", "F", "n", "/", "\t"]
        var checked = 0
        for first in alphabet {
            for second in alphabet {
                for third in alphabet {
                    let text = "\"\(first)\(second)\(third)\""
                    let read = Array(text.utf8).withUnsafeBytes { raw -> Bool in
                        var scanner = JSONScanner(raw)
                        guard (try? scanner.readString()) != nil else { return false }
                        return scanner.atEnd
                    }
                    #expect(Self.isValue(text) == read, "\(text)")
                    checked += 1
                }
            }
        }
        #expect(checked == alphabet.count * alphabet.count * alphabet.count)
    }
}
