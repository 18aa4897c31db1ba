@testable import MizuWebSocket
import MizuTestSupport
import Testing

@Suite(.timeLimit(.minutes(10))) struct UTF8ValidatorTests {
    static let valid: [[UInt8]] = [
        [], Array("hello".utf8), Array("κόσμε".utf8), [0x7F], [0xC2, 0x80], [0xDF, 0xBF],
        [0xE0, 0xA0, 0x80], [0xED, 0x9F, 0xBF], [0xEE, 0x80, 0x80], [0xEF, 0xBF, 0xBF],
        [0xF0, 0x90, 0x80, 0x80], [0xF4, 0x8F, 0xBF, 0xBF], Array("long ascii run that spans words 12345678".utf8),
    ]

    static let invalid: [[UInt8]] = [
        [0x80], [0xBF], [0xC0, 0x80], [0xC1, 0xBF], [0xC2, 0x41], [0xE0, 0x80, 0x80],  // overlong
        [0xED, 0xA0, 0x80], [0xED, 0xBF, 0xBF],  // UTF-16 surrogates
        [0xF0, 0x80, 0x80, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80], [0xFE], [0xFF],
        Array("abcdefgh".utf8) + [0xFF] + Array("abcdefgh".utf8),
    ]

    static let truncated: [[UInt8]] = [[0xC2], [0xE0, 0xA0], [0xF0, 0x90, 0x80], Array("ok".utf8) + [0xE2, 0x82]]

    @Test(arguments: valid) func acceptsValid(_ bytes: [UInt8]) {
        var validator = UTF8Validator()
        #expect(bytes.withUnsafeBytes { validator.feed($0) })
        #expect(validator.isComplete)
    }

    @Test(arguments: invalid) func rejectsInvalid(_ bytes: [UInt8]) {
        var validator = UTF8Validator()
        let ok = bytes.withUnsafeBytes { validator.feed($0) }
        #expect(!ok)
    }

    @Test(arguments: truncated) func truncatedIsIncomplete(_ bytes: [UInt8]) {
        var validator = UTF8Validator()
        #expect(bytes.withUnsafeBytes { validator.feed($0) })
        #expect(!validator.isComplete)
    }

    @Test func validatesAcrossFragmentBoundaries() {
        let euro: [UInt8] = [0xE2, 0x82, 0xAC]
        for split in 0...euro.count {
            var validator = UTF8Validator()
            #expect(Array(euro[..<split]).withUnsafeBytes { validator.feed($0) })
            #expect(Array(euro[split...]).withUnsafeBytes { validator.feed($0) })
            #expect(validator.isComplete)
        }
        // Fails fast: the second fragment's first byte already makes it invalid.
        var validator = UTF8Validator()
        #expect(([0xE2] as [UInt8]).withUnsafeBytes { validator.feed($0) })
        #expect(!([0x41] as [UInt8]).withUnsafeBytes { validator.feed($0) })
    }

    @Test func agreesWithTheStandardLibraryOnEveryTwoByteSequence() {
        for first in 0...255 {
            for second in 0...255 {
                let bytes: [UInt8] = [UInt8(first), UInt8(second)]
                var validator = UTF8Validator()
                let ours = bytes.withUnsafeBytes { validator.feed($0) } && validator.isComplete
                let stdlib = String(validating: bytes, as: UTF8.self) != nil
                if ours != stdlib { Issue.record("disagree on \(bytes)") }
            }
        }
    }
}
