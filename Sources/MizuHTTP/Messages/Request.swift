import NIOCore
import NIOHTTP1

/// An HTTP request as a handler sees it: the head, the whole body (bounded by the server's
/// body limit) and where it came from.
public struct Request: Sendable {
    /// The request method.
    public var method: HTTPMethod
    /// The request target exactly as sent (path and query, still percent-encoded).
    public var uri: String
    /// The percent-decoded path, without the query.
    public var path: String
    /// The path as sent, still percent-encoded.
    public var rawPath: String
    /// The query string after `?`, without the `?`, still percent-encoded.
    public var rawQuery: String
    /// The parsed query, parsed from ``rawQuery`` when read (a request kept for a long time,
    /// such as a WebSocket session's, then stores only the raw string).
    public var query: QueryParameters { QueryParameters(self.rawQuery) }
    /// The headers; lookups by name are case-insensitive.
    public var headers: HTTPHeaders
    /// The HTTP version of the request.
    public var version: HTTPVersion
    /// The request body, complete.
    public var body: ByteBuffer
    /// The peer's address, when known.
    public var remoteAddress: SocketAddress?
    /// Whether the request came over TLS (https://, wss://).
    public var isSecure: Bool
    /// Path parameters filled by a router (`{id}` and `{path...}`); empty without one.
    public var pathParameters: [String: String]

    /// Builds a request. The server does this; tests and adapters may too.
    public init(
        method: HTTPMethod,
        uri: String,
        headers: HTTPHeaders = HTTPHeaders(),
        version: HTTPVersion = .http1_1,
        body: ByteBuffer = ByteBuffer(),
        remoteAddress: SocketAddress? = nil,
        isSecure: Bool = false
    ) {
        self.method = method
        self.uri = uri
        self.headers = headers
        self.version = version
        self.body = body
        self.remoteAddress = remoteAddress
        self.isSecure = isSecure
        self.pathParameters = [:]
        let (rawPath, rawQuery) = Request.split(target: uri)
        self.rawPath = rawPath
        self.rawQuery = rawQuery
        self.path = PercentEncoding.decode(rawPath, plusAsSpace: false) ?? rawPath
    }

    /// The first value of a header, by case-insensitive name.
    public func header(_ name: String) -> String? {
        self.headers.first(name: name)
    }

    /// The body decoded as UTF-8.
    public var bodyString: String {
        String(buffer: self.body)
    }

    /// Whether the client wants the connection kept open after this request.
    public var keepAlive: Bool {
        let tokens = self.headers[canonicalForm: "connection"].map { $0.lowercased() }
        if self.version.major == 1 && self.version.minor == 0 {
            return tokens.contains("keep-alive")
        }
        return !tokens.contains("close")
    }

    /// The delimiters are searched for among the UTF-8 bytes, not the Characters: a combining
    /// mark after `?` or `/` makes one Character of the two, which a Character search passes over.
    private static func split(target: String) -> (String, String) {
        // An absolute-form target (RFC 9112 section 3.2.2) carries scheme and authority first.
        var target = Substring(target)
        for scheme in ["http://", "https://"] where target.utf8.starts(with: scheme.utf8) {
            let authority = target.utf8.dropFirst(scheme.utf8.count)
            target = authority.firstIndex(of: UInt8(ascii: "/")).map { Substring(target.utf8[$0...]) } ?? "/"
        }
        if let question = target.utf8.firstIndex(of: UInt8(ascii: "?")) {
            return (String(Substring(target.utf8[..<question])), String(Substring(target.utf8[target.utf8.index(after: question)...])))
        }
        return (String(target), "")
    }
}

/// Parsed query parameters, keeping repeated keys in order.
public struct QueryParameters: Sendable {
    private var pairs: [(String, String)]

    /// Parses an `application/x-www-form-urlencoded` query string. It is split at the `&` and
    /// `=` bytes, not Characters: a combining mark after one would hide it inside a Character.
    public init(_ raw: String) {
        self.pairs = raw.utf8.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true).map { item in
            let parts = item.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false).map { String(Substring($0)) }
            let key = PercentEncoding.decode(parts[0], plusAsSpace: true) ?? parts[0]
            let value = parts.count > 1 ? (PercentEncoding.decode(parts[1], plusAsSpace: true) ?? parts[1]) : ""
            return (key, value)
        }
    }

    /// Parameters already split into pairs.
    package init(pairs: [(String, String)]) {
        self.pairs = pairs
    }

    /// The first value for `key`.
    public subscript(_ key: String) -> String? {
        self.pairs.first { $0.0 == key }?.1
    }

    /// Every value for `key`, in order.
    public func values(_ key: String) -> [String] {
        self.pairs.filter { $0.0 == key }.map(\.1)
    }

    /// Whether the query has no parameters.
    public var isEmpty: Bool { self.pairs.isEmpty }
}

/// RFC 3986 percent-decoding.
package enum PercentEncoding {
    /// Decodes `%XX` escapes; nil when an escape is malformed or the result is not UTF-8.
    package static func decode(_ string: String, plusAsSpace: Bool) -> String? {
        guard string.utf8.contains(where: { $0 == UInt8(ascii: "%") || (plusAsSpace && $0 == UInt8(ascii: "+")) }) else {
            return string
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(string.utf8.count)
        var iterator = string.utf8.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                    return nil
                }
                bytes.append(high << 4 | low)
            case UInt8(ascii: "+") where plusAsSpace:
                bytes.append(UInt8(ascii: " "))
            default:
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
