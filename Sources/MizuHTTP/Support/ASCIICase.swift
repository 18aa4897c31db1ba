/// Comparisons of protocol tokens (header names, list items), which are ASCII and compared
/// without regard to case: in place, where `lowercased()` would allocate for any string
/// longer than 15 bytes.
package enum ASCIICase {
    package static func equal(_ lhs: some Collection<UInt8>, _ rhs: some Collection<UInt8>) -> Bool {
        lhs.count == rhs.count && lhs.elementsEqual(rhs) { lowercased($0) == lowercased($1) }
    }

    package static func lowercased(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
    }
}
