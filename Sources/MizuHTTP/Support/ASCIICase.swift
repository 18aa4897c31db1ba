/// Comparisons of protocol tokens (header names, list items), which are ASCII and compared
/// without regard to case: in place, where `lowercased()` would allocate for any string
/// longer than 15 bytes. On contiguous bytes: a generic version over `Collection<UInt8>`,
/// left unspecialized across modules, cost 6 % of a connect's CPU in a profile.
package enum ASCIICase {
    package static func equal(_ lhs: UnsafeBufferPointer<UInt8>, _ rhs: UnsafeBufferPointer<UInt8>) -> Bool {
        guard lhs.count == rhs.count else { return false }
        for index in 0..<lhs.count where self.lowercased(lhs[index]) != self.lowercased(rhs[index]) { return false }
        return true
    }

    package static func equal(_ lhs: String, _ rhs: String) -> Bool {
        guard lhs.utf8.count == rhs.utf8.count else { return false }
        var lhs = lhs
        var rhs = rhs
        return lhs.withUTF8 { left in rhs.withUTF8 { right in self.equal(left, right) } }
    }

    package static func lowercased(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
    }
}
