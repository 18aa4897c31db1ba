import Foundation

/// Reads a server's CPU time and resident memory from /proc (Linux).
struct ServerProcess {
    let pid: Int32

    /// User plus system CPU time, in seconds.
    func cpuSeconds() -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/\(self.pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the command: state is field 3, utime 14, stime 15 (1-based in proc(5)).
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Resident set size in KiB.
    func rssKiB() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(self.pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }
        }
        return nil
    }
}

/// A monotonic clock shared by every process on the machine (CLOCK_MONOTONIC).
@inline(__always) func monotonicNanoseconds() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}

/// Reads the unsigned integer after `key` (such as `"s":`) in a JSON text; nil if absent.
/// A plain byte scan: the generator must outrun the server it measures.
func integer(after key: [UInt8], in buffer: ByteBuffer) -> UInt64? {
    buffer.withUnsafeReadableBytes { bytes -> UInt64? in
        let count = bytes.count
        let keyCount = key.count
        guard count >= keyCount else { return nil }
        var index = 0
        outer: while index <= count - keyCount {
            for offset in 0..<keyCount where bytes[index + offset] != key[offset] {
                index += 1
                continue outer
            }
            var value: UInt64 = 0
            var position = index + keyCount
            var digits = 0
            while position < count, bytes[position] >= 48, bytes[position] <= 57 {
                value = value * 10 + UInt64(bytes[position] - 48)
                position += 1
                digits += 1
            }
            return digits > 0 ? value : nil
        }
        return nil
    }
}

import NIOCore
