import Foundation

/// A cookie to set (RFC 6265 section 4.1), with every attribute Go's `http.Cookie` has.
public struct Cookie: Sendable, Equatable {
    /// `SameSite` (RFC 6265bis): whether the browser sends the cookie with cross-site requests.
    public enum SameSite: String, Sendable {
        /// `SameSite=Strict`: never sent with a cross-site request.
        case strict = "Strict"
        /// `SameSite=Lax`: sent with top-level cross-site navigations (links), not with
        /// cross-site subrequests.
        case lax = "Lax"
        /// `SameSite=None`: sent cross-site too; browsers require `secure` with it. (Not
        /// spelled `.none`, which would read as a missing `Optional`.)
        case noRestriction = "None"
    }

    /// The cookie's name (an RFC 6265 token).
    public var name: String
    /// Its value (cookie-octets only: no whitespace, quotes, comma, semicolon or backslash).
    public var value: String
    /// Defaults to `/`; nil leaves the attribute out (the browser uses the request's directory).
    public var path: String?
    /// The domain it is sent to, subdomains included; nil: this host only.
    public var domain: String?
    /// When it expires, as an HTTP date; nil (and no `maxAge`): when the browser closes.
    public var expires: Date?
    /// Seconds until it expires; 0 or less deletes the cookie now (`Max-Age=0`), as in Go.
    public var maxAge: Int?
    /// Sent over https only.
    public var secure: Bool
    /// Hidden from scripts (`document.cookie`).
    public var httpOnly: Bool
    /// Cross-site sending (nil leaves the attribute out: the browser's default, `Lax`).
    public var sameSite: SameSite?
    /// CHIPS: kept per top-level site (browsers require `secure` with it).
    public var partitioned: Bool

    /// A cookie with these attributes; ``Ctx/setCookie(_:)`` checks them before it is sent.
    public init(
        name: String, value: String, path: String? = "/", domain: String? = nil, expires: Date? = nil, maxAge: Int? = nil,
        secure: Bool = false, httpOnly: Bool = false, sameSite: SameSite? = nil, partitioned: Bool = false
    ) {
        self.name = name
        self.value = value
        self.path = path
        self.domain = domain
        self.expires = expires
        self.maxAge = maxAge
        self.secure = secure
        self.httpOnly = httpOnly
        self.sameSite = sameSite
        self.partitioned = partitioned
    }

    /// Seconds since 1970 of 1601-01-01T00:00:00Z through 9999-12-31T23:59:59Z.
    private static let writableExpiry: ClosedRange<Double> = -11_644_473_600...253_402_300_799

    /// The `Set-Cookie` header value. A value with a space or a comma is sent quoted (as Go
    /// does); a name that is not a token, a value or attribute with bytes a cookie cannot carry,
    /// or `SameSite=None` (`.noRestriction`) or `Partitioned` without `Secure` are refused with the reason.
    public func headerValue() throws(CookieError) -> String {
        guard !self.name.isEmpty, self.name.utf8.allSatisfy(HTTPToken.isTokenCharacter) else {
            throw CookieError("cookie name \"\(self.name)\" is not an RFC 6265 token")
        }
        var value = self.value
        if !value.utf8.allSatisfy(Self.isCookieOctet) {
            let quotable = value.utf8.allSatisfy { Self.isCookieOctet($0) || $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: ",") }
            guard quotable else { throw CookieError("cookie \"\(self.name)\" has a value with bytes a cookie cannot carry") }
            value = "\"" + value + "\""
        }
        var header = self.name + "=" + value
        for (attribute, text) in [("Path", self.path), ("Domain", self.domain)] {
            guard let text else { continue }
            guard text.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ";") }) else {
                throw CookieError("cookie \"\(self.name)\" has a \(attribute) with ';' or control characters")
            }
            header += "; \(attribute)=\(text)"
        }
        // As Go's net/http: a date outside the years 1601-9999 (RFC 6265 5.1.1), or no date at
        // all (NaN, infinity), is left out rather than converted (the conversion trapped).
        if let expires = self.expires, Self.writableExpiry.contains(expires.timeIntervalSince1970) {
            header += "; Expires=" + HTTPDate.format(secondsSince1970: time_t(expires.timeIntervalSince1970.rounded(.down)))
        }
        if let maxAge = self.maxAge { header += "; Max-Age=\(max(0, maxAge))" }
        if self.httpOnly { header += "; HttpOnly" }
        if self.secure { header += "; Secure" }
        if let sameSite = self.sameSite {
            guard sameSite != .noRestriction || self.secure else { throw CookieError("cookie \"\(self.name)\": SameSite=None needs Secure") }
            header += "; SameSite=" + sameSite.rawValue
        }
        if self.partitioned {
            guard self.secure else { throw CookieError("cookie \"\(self.name)\": Partitioned needs Secure") }
            header += "; Partitioned"
        }
        return header
    }

    /// RFC 6265 cookie-octet: visible ASCII but `"`, `,`, `;` and `\`.
    private static func isCookieOctet(_ byte: UInt8) -> Bool {
        byte >= 0x21 && byte <= 0x7E && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: ",") && byte != UInt8(ascii: ";")
            && byte != UInt8(ascii: "\\")
    }
}

/// Why a cookie cannot be set.
public struct CookieError: Error, Equatable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

extension Ctx {
    /// Adds a `Set-Cookie` header for `cookie` (Go's `SetCookie`); several cookies make
    /// several headers.
    public func setCookie(_ cookie: Cookie) throws(CookieError) {
        self.writer.addHeader("set-cookie", try cookie.headerValue())
    }

    /// Every query value for `name`, in order (Go's `QueryValues()[name]`).
    public func queryValues(_ name: String) -> [String] {
        self.request.query.values(name)
    }
}
