/// Incremental UTF-8 validation (RFC 3629), fed fragment by fragment so an invalid text
/// message fails as soon as the offending byte arrives (RFC 6455 section 8.1).
///
/// A DFA after Björn Höhrmann's decoder: state 0 accepts, state 1 rejects, others are
/// inside a sequence.
package struct UTF8Validator {
    private(set) var state: UInt8 = 0

    package init() {}

    /// Whether everything fed so far is valid and ends on a character boundary.
    package var isComplete: Bool { self.state == 0 }

    /// Feeds bytes; false as soon as they cannot be valid UTF-8 whatever follows.
    package mutating func feed(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var state = self.state
        var index = 0
        let count = bytes.count
        while index < count {
            // Fast path: eight ASCII bytes at once while between characters.
            if state == 0 && index + 8 <= count {
                let word = bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                if word & 0x8080_8080_8080_8080 == 0 {
                    index += 8
                    continue
                }
            }
            let byte = bytes[index]
            state = Self.transitions[Int(state) * 16 + Int(Self.classes[Int(byte)])]
            if state == 1 {
                self.state = 1
                return false
            }
            index += 1
        }
        self.state = state
        return true
    }

    /// Byte classes of the DFA.
    private static let classes: [UInt8] = {
        var table = [UInt8](repeating: 0, count: 256)
        for b in 0x80...0x8F { table[b] = 1 }
        for b in 0x90...0x9F { table[b] = 9 }
        for b in 0xA0...0xBF { table[b] = 7 }
        table[0xC0] = 8; table[0xC1] = 8
        for b in 0xC2...0xDF { table[b] = 2 }
        table[0xE0] = 10
        for b in 0xE1...0xEC { table[b] = 3 }
        table[0xED] = 4
        table[0xEE] = 3; table[0xEF] = 3
        table[0xF0] = 11
        for b in 0xF1...0xF3 { table[b] = 6 }
        table[0xF4] = 5
        for b in 0xF5...0xFF { table[b] = 8 }
        return table
    }()

    /// States: 0 accept, 1 reject, 2 one continuation left, 3 two left, 4 after E0 (needs A0-BF),
    /// 5 after ED (needs 80-9F), 6 after F0 (needs 90-BF), 7 three left, 8 after F4 (needs 80-8F).
    private static let transitions: [UInt8] = {
        var table = [UInt8](repeating: 1, count: 9 * 16)
        func set(_ state: Int, _ byteClass: Int, _ next: UInt8) { table[state * 16 + byteClass] = next }
        // From accept.
        set(0, 0, 0); set(0, 2, 2); set(0, 3, 3); set(0, 10, 4); set(0, 4, 5)
        set(0, 11, 6); set(0, 6, 7); set(0, 5, 8)
        // Continuations: classes 1 (80-8F), 9 (90-9F), 7 (A0-BF).
        for c in [1, 9, 7] { set(2, c, 0); set(3, c, 2); set(7, c, 3) }
        set(4, 7, 2)
        set(5, 1, 2); set(5, 9, 2)
        set(6, 9, 3); set(6, 7, 3)
        set(8, 1, 3)
        return table
    }()
}
