import NIOCore
import NIOHTTP1

/// Gzip for one response, decided when its head leaves (``Middlewares/gzip(level:minSize:contentTypes:)``).
///
/// `@unchecked Sendable`: the writer keeps it in its locked state and calls it only under
/// that lock, so the mutable zlib stream is never used from two threads at once.
package final class ResponseCompression: @unchecked Sendable {
    package struct Settings: Sendable {
        package var level: Int
        package var minSize: Int
        /// Media types compressed: exact (`application/json`) or a family (`text/*`).
        package var contentTypes: [String]

        package init(level: Int, minSize: Int, contentTypes: [String]) {
            self.level = level
            self.minSize = minSize
            self.contentTypes = contentTypes
        }
    }

    let settings: Settings
    /// The request's Accept-Encoding takes gzip.
    let clientAccepts: Bool
    private var gzip: GzipStream?

    init(settings: Settings, acceptEncoding: String?) {
        self.settings = settings
        self.clientAccepts = Self.acceptsGzip(acceptEncoding)
    }

    /// Whether the body is being compressed (``begin(status:headers:bodySize:)`` said so).
    var isActive: Bool { self.gzip != nil }

    /// Decides as the head leaves and adjusts `headers`: `Vary: Accept-Encoding` whenever the
    /// answer depends on it; when compressing, `Content-Encoding: gzip`, a weak ETag (the bytes
    /// differ, the meaning does not), no byte ranges and no identity length. `bodySize` is the
    /// whole body when known (a buffered response), nil for a streamed one.
    func begin(status: HTTPResponseStatus, headers: inout HTTPHeaders, bodySize: Int?) -> Bool {
        guard ResponseWriter.statusAllowsBody(status), status != .partialContent,
            !headers.contains(name: "content-encoding"), !headers.contains(name: "content-range"),
            self.isCompressible(headers.first(name: "content-type"))
        else { return false }
        if !headers[canonicalForm: "vary"].contains(where: { $0.lowercased() == "accept-encoding" || $0 == "*" }) {
            headers.add(name: "vary", value: "Accept-Encoding")
        }
        guard self.clientAccepts, bodySize.map({ $0 >= self.settings.minSize }) ?? true else { return false }
        let gzip = GzipStream(level: self.settings.level, compact: bodySize == nil)
        guard gzip.isReady else { return false }  // zlib could not start: identity it is
        self.gzip = gzip
        headers.replaceOrAdd(name: "content-encoding", value: "gzip")
        headers.remove(name: "content-length")
        headers.remove(name: "accept-ranges")
        if let etag = headers.first(name: "etag"), !etag.hasPrefix("W/") { headers.replaceOrAdd(name: "etag", value: "W/" + etag) }
        return true
    }

    /// The compressed form of the next piece (`last`: and the end of the body). A zlib
    /// failure (out of memory) returns nil: the caller cuts the response.
    func compress(_ piece: ByteBuffer, last: Bool, allocator: ByteBufferAllocator) -> ByteBuffer? {
        self.gzip?.compress(piece, last: last, allocator: allocator)
    }

    private func isCompressible(_ contentType: String?) -> Bool {
        guard let contentType else { return false }
        let media = contentType.split(separator: ";", maxSplits: 1).first.map { $0.trimmingHTTPWhitespace().lowercased() } ?? ""
        return self.settings.contentTypes.contains { type in
            type.hasSuffix("/*") ? media.hasPrefix(type.dropLast()) : media == type
        }
    }

    /// RFC 9110 section 12.5.3: gzip (or x-gzip) with a weight above 0, or `*` when gzip is
    /// not named.
    package static func acceptsGzip(_ header: String?) -> Bool {
        guard let header else { return false }
        var star: Bool?
        // Split at the bytes: a combining mark after a delimiter would hide it inside a Character.
        members: for item in header.utf8.split(separator: UInt8(ascii: ",")) {
            let parts = item.split(separator: UInt8(ascii: ";")).map { Substring($0) }
            guard let name = parts.first?.trimmingHTTPWhitespace().lowercased() else { continue }
            var weight = 1000
            for parameter in parts.dropFirst() {
                let pair = parameter.utf8.split(separator: UInt8(ascii: "="), maxSplits: 1).map { Substring($0).trimmingHTTPWhitespace().lowercased() }
                guard pair.count == 2, pair[0] == "q" else { continue }
                // A malformed weight makes the member malformed: it is ignored, as if not sent.
                guard let parsed = Self.qvalue(pair[1]) else { continue members }
                weight = parsed
            }
            if name == "gzip" || name == "x-gzip" { return weight > 0 }
            if name == "*" { star = weight > 0 }
        }
        return star ?? false
    }

    /// RFC 9110 section 12.4.2 `qvalue` in thousandths: `"0" [ "." 0*3DIGIT ]` or
    /// `"1" [ "." 0*3("0") ]`, nothing else (no sign, exponent, `nan`, `inf` or hex that
    /// `Double(_:)` would take); nil when it is not one.
    package static func qvalue(_ text: String) -> Int? {
        let utf8 = text.utf8
        guard let first = utf8.first, first == UInt8(ascii: "0") || first == UInt8(ascii: "1") else { return nil }
        let whole = first == UInt8(ascii: "1") ? 1000 : 0
        let rest = utf8.dropFirst()
        guard let dot = rest.first else { return whole }
        let fraction = rest.dropFirst()
        guard dot == UInt8(ascii: "."), fraction.count <= 3 else { return nil }
        if fraction.isEmpty { return whole }  // "0." and "1.": zero digits are allowed
        guard let digits = ClientNumber.bounded(Substring(fraction), maximum: 999) else { return nil }
        let thousandths = digits * [100, 10, 1][fraction.count - 1]
        guard whole == 0 || thousandths == 0 else { return nil }  // "1.5" is no qvalue
        return whole + thousandths
    }
}
