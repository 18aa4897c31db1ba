import NIOCore

/// Who "one client" is for per-client limits (HTTP connections, live sessions and handshakes,
/// an application's budgets): an IPv4 address, an IPv6 /64, or "unknown" (a Unix socket, tests). An IPv4 client of
/// a dual-stack listener (`::`) arrives as an IPv4-mapped address (`::ffff:a.b.c.d`, RFC
/// 4291 section 2.5.5.2) and is keyed as that IPv4 address: every IPv4 client shares the
/// zero /64 otherwise.
package struct ClientAddressKey: Hashable, Sendable {
    let high: UInt64
    let low: UInt64

    package init(_ address: SocketAddress?) {
        switch address {
        case .v4(let v4):
            self.high = 4
            self.low = UInt64(UInt32(bigEndian: v4.address.sin_addr.s_addr))
        case .v6(let v6):
            var address = v6.address.sin6_addr
            let bytes = withUnsafeBytes(of: &address) { Array($0) }
            if bytes.prefix(10).allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF {
                self.high = 4
                self.low = bytes.suffix(4).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                return
            }
            self.high = 6
            self.low = bytes.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        default:
            self.high = 0
            self.low = 0
        }
    }
}
