import Foundation
import Mizu
import MizuTestSupport
import Testing

/// Set-Cookie with every attribute, odd characters, and several cookies per response.
@Suite(.timeLimit(.minutes(10))) struct CookieTests {
    @Test func everyAttributeIsWrittenInRFC6265Form() throws {
        let cookie = Cookie(
            name: "session", value: "abc123", path: "/app", domain: "example.com",
            expires: Date(timeIntervalSince1970: 784_111_777), maxAge: 3600, secure: true, httpOnly: true,
            sameSite: .noRestriction, partitioned: true)
        #expect(try cookie.headerValue()
            == "session=abc123; Path=/app; Domain=example.com; Expires=Sun, 06 Nov 1994 08:49:37 GMT; Max-Age=3600; HttpOnly; Secure; SameSite=None; Partitioned")
        #expect(try Cookie(name: "a", value: "b").headerValue() == "a=b; Path=/")
        #expect(try Cookie(name: "a", value: "b", path: nil, maxAge: -1).headerValue() == "a=b; Max-Age=0", "negative deletes, as in Go")
    }

    @Test func anExpiryNoCookieDateCanSayIsLeftOutAsInGo() throws {
        // Dates from anywhere (a client's number turned into a date) must not trap in the
        // conversion to seconds; RFC 6265's years are 1601-9999, as Go's net/http checks.
        for date in [Date(timeIntervalSince1970: .nan), .init(timeIntervalSince1970: .infinity), .init(timeIntervalSince1970: 1e300),
                     .init(timeIntervalSince1970: -1e300), .init(timeIntervalSince1970: 253_402_300_800), .init(timeIntervalSince1970: -11_644_473_601)] {
            #expect(try Cookie(name: "a", value: "b", path: nil, expires: date).headerValue() == "a=b", "\(date.timeIntervalSince1970)")
        }
        #expect(try Cookie(name: "a", value: "b", path: nil, expires: Date(timeIntervalSince1970: 253_402_300_799)).headerValue()
            == "a=b; Expires=Fri, 31 Dec 9999 23:59:59 GMT")
        #expect(try Cookie(name: "a", value: "b", path: nil, expires: Date(timeIntervalSince1970: -11_644_473_600)).headerValue()
            == "a=b; Expires=Mon, 01 Jan 1601 00:00:00 GMT")
    }

    @Test func oddCharactersAreQuotedOrRefusedWithTheReason() throws {
        #expect(try Cookie(name: "greeting", value: "hello, world").headerValue() == #"greeting="hello, world"; Path=/"#)
        #expect(try Cookie(name: "empty", value: "").headerValue() == "empty=; Path=/")
        let refused: [(Cookie, String)] = [
            (Cookie(name: "bad name", value: "x"), #"cookie name "bad name" is not an RFC 6265 token"#),
            (Cookie(name: "", value: "x"), #"cookie name "" is not an RFC 6265 token"#),
            (Cookie(name: "a", value: "x;y"), #"cookie "a" has a value with bytes a cookie cannot carry"#),
            (Cookie(name: "a", value: "caf\u{e9}"), #"cookie "a" has a value with bytes a cookie cannot carry"#),
            (Cookie(name: "a", value: "x", path: "/a;b"), #"cookie "a" has a Path with ';' or control characters"#),
            (Cookie(name: "a", value: "x", sameSite: .noRestriction), #"cookie "a": SameSite=None needs Secure"#),
            (Cookie(name: "a", value: "x", partitioned: true), #"cookie "a": Partitioned needs Secure"#),
        ]
        for (cookie, reason) in refused {
            #expect(throws: CookieError.self) { try cookie.headerValue() }
            do {
                _ = try cookie.headerValue()
            } catch {
                #expect(error.description == reason)
            }
        }
    }

    @Test func severalCookiesMakeSeveralHeadersAndCookiesAndQueryValuesAreRead() async throws {
        let app = App(logsRequests: false)
        app.get("/login") { c in
            try c.setCookie(Cookie(name: "session", value: "s1", httpOnly: true, sameSite: .lax))
            try c.setCookie(Cookie(name: "theme", value: "dark"))
            let tags = c.queryValues("tag").joined(separator: ",")
            try await c.text(.ok, "\(c.cookie("user") ?? "-") \(tags)")
        }
        try await withServer(app) { (port: Int) async throws in
            let client = try await RawClient.connect(port: port)
            try await client.send("GET /login?tag=a&tag=b+c HTTP/1.1\r\nHost: x\r\nCookie: theme=x; user=ann\r\n\r\n")
            let response = try await client.readResponse()
            #expect(response.text == "ann a,b c")
            await client.close()
            let setCookies = response.headers.filter { $0.name.lowercased() == "set-cookie" }.map(\.value)
            #expect(setCookies == ["session=s1; Path=/; HttpOnly; SameSite=Lax", "theme=dark; Path=/"])
        }
    }
}
