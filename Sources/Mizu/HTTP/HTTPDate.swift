#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOConcurrencyHelpers

/// The `Date` header value (RFC 9110 section 5.6.7, IMF-fixdate), formatted once a second.
enum HTTPDate {
    private static let cache = NIOLockedValueBox<(second: Int, value: String)>((-1, ""))
    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static var now: String {
        let seconds = time(nil)
        let second = Int(seconds)
        if let cached = self.cache.withLockedValue({ $0.second == second ? $0.value : nil }) {
            return cached
        }
        let value = self.format(secondsSince1970: seconds)
        self.cache.withLockedValue { $0 = (second, value) }
        return value
    }

    /// `seconds` since 1970 as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
    static func format(secondsSince1970 seconds: time_t) -> String {
        var seconds = seconds
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}
