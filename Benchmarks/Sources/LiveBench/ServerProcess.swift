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
func integer(after key: [UInt8], in bytes: ByteBufferView) -> UInt64? {
    guard let range = bytes.firstRange(of: key) else { return nil }
    var value: UInt64 = 0
    var index = range.upperBound
    var digits = 0
    while index < bytes.endIndex, bytes[index] >= 48, bytes[index] <= 57 {
        value = value * 10 + UInt64(bytes[index] - 48)
        index += 1
        digits += 1
    }
    return digits > 0 ? value : nil
}

import NIOCore
