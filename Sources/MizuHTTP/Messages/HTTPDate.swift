#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOConcurrencyHelpers

/// The `Date` header value (RFC 9110 section 5.6.7, IMF-fixdate), formatted once a second.
package enum HTTPDate {
    private static let cache = NIOLockedValueBox<(second: Int, value: String)>((-1, ""))
    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    package static var now: String {
        let seconds = time(nil)
        let second = Int(seconds)
        if let cached = self.cache.withLockedValue({ $0.second == second ? $0.value : nil }) {
            return cached
        }
        let value = self.format(secondsSince1970: seconds)
        self.cache.withLockedValue { $0 = (second, value) }
        return value
    }

    /// An IMF-fixdate (the only form a server must accept, RFC 9110 section 5.6.7) as
    /// seconds since 1970; nil otherwise. The grammar fixes every field's width (`DD`,
    /// `YYYY`, `hh:mm:ss`), so no value a client sends can overflow; fields out of their
    /// ranges make the date invalid, and an invalid date is ignored (section 13.1.3).
    package static func parse(_ text: String) -> Int? {
        let parts = text.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 6, parts[5] == "GMT", parts[0].hasSuffix(","), days.contains(String(parts[0].dropLast())),
            let day = self.digits(parts[1], width: 2), (1...31).contains(day),
            let month = months.firstIndex(of: String(parts[2])),
            let year = self.digits(parts[3], width: 4)
        else { return nil }
        let clock = parts[4].split(separator: ":", omittingEmptySubsequences: false)
        guard clock.count == 3, let hour = self.digits(clock[0], width: 2), hour < 24,
            let minute = self.digits(clock[1], width: 2), minute < 60,
            let second = self.digits(clock[2], width: 2), second <= 60
        else { return nil }
        var fields = tm()
        fields.tm_year = Int32(year - 1900)  // 0...9999 - 1900: fits
        fields.tm_mon = Int32(month)
        fields.tm_mday = Int32(day)
        fields.tm_hour = Int32(hour)
        fields.tm_min = Int32(minute)
        fields.tm_sec = Int32(second)
        return Int(timegm(&fields))
    }

    /// Exactly `width` ASCII digits.
    private static func digits(_ text: Substring, width: Int) -> Int? {
        guard text.utf8.count == width else { return nil }
        return ClientNumber.bounded(text, maximum: Int.max)
    }

    /// `seconds` since 1970 as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
    package static func format(secondsSince1970 seconds: time_t) -> String {
        var seconds = seconds
        var parts = tm()
        guard gmtime_r(&seconds, &parts) != nil, (0..<7).contains(parts.tm_wday), (0..<12).contains(parts.tm_mon) else {
            return "Thu, 01 Jan 1970 00:00:00 GMT"  // a time gmtime cannot represent: the epoch
        }
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}
