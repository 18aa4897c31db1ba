import NIOCore
import NIOHTTP1

/// HTTP/1.1 requests read from bytes (RFC 9112), one event at a time, as a value: the
/// connection handler feeds it what the socket read and acts on each event; nothing here does
/// I/O. It replaces a decoder handler in front of the connection's own (one handler per
/// connection, which on an upgrade hands the bytes after the request to the new protocol).
///
/// Strict where leniency lets two parsers frame one message differently (request smuggling):
/// every line ends with CRLF (a bare CR or LF is refused), no whitespace before a field's colon,
/// no obsolete line folding, one Content-Length of digits alone, never with Transfer-Encoding,
/// chunked last when Transfer-Encoding is present. Every number is read with overflow checked;
/// every wait for more bytes is bounded (the head and a trailer section by `maxHeadSize`, a
/// chunk-size line by ``maxChunkLineSize``), and no byte is scanned twice while a head trickles in.
package struct HTTPRequestParser {
    package enum Event: Equatable {
        case head(HTTPRequestHead)
        /// Some of the body, in order; the bytes share the read's storage.
        case body(ByteBuffer)
        case end
        /// The input breaks the protocol or a limit: answer with this and read nothing more.
        case refused(HTTPResponseStatus, String)
    }

    enum State {
        /// Looking for the end of a head; `scanned` bytes (past leading empty lines) have no end in them.
        case head(scanned: Int, skipped: Int)
        case body(remaining: Int)
        /// At a chunk-size line; `scanned` bytes of it have no line end.
        case chunkLine(scanned: Int)
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers(scanned: Int)
        case failed
    }

    /// The longest chunk-size line, extensions included, waited for.
    package static let maxChunkLineSize = 4096

    var state = State.head(scanned: 0, skipped: 0)
    let maxHeadSize: Int
    let maxBodySize: Int
    /// A chunk line had whitespace around its extensions (RFC 9110 section 5.6.3's BWS, which a
    /// recipient must accept; llhttp refuses it): the differential check's one leniency of ours.
    package internal(set) var sawChunkLineWhitespace = false
    /// A request line said HTTP/1.2 to 1.9, read as 1.1 (RFC 9110 section 2.5; llhttp refuses it).
    package private(set) var sawLaterMinorVersion = false
    /// The chunk sizes of the current body so far (saturating): a chunk that declares more than
    /// the limit is refused when its size line arrives, not after the bytes have.
    var declaredBodySize = 0

    package init(maxHeadSize: Int, maxBodySize: Int = .max) {
        self.maxHeadSize = maxHeadSize
        self.maxBodySize = maxBodySize
    }

    /// Waiting for the end of a line: of a head, a trailer section or a chunk-size line (what is
    /// in it is judged once it is complete, or at its size bound).
    package var awaitsLineEnd: Bool {
        switch self.state {
        case .head, .trailers, .chunkLine: true
        default: false
        }
    }

    /// The next event from `buffer` (its read bytes consumed), or nil until more bytes arrive.
    package mutating func next(_ buffer: inout ByteBuffer) -> Event? {
        switch self.state {
        case .failed:
            return nil
        case .head(let scanned, let skipped):
            return self.head(&buffer, scanned: scanned, skipped: skipped)
        case .body(let remaining):
            guard remaining > 0 else {
                self.state = .head(scanned: 0, skipped: 0)
                return .end
            }
            guard buffer.readableBytes > 0 else { return nil }
            let count = min(remaining, buffer.readableBytes)
            self.state = .body(remaining: remaining - count)
            return .body(buffer.readSlice(length: count)!)
        case .chunkLine(let scanned):
            return self.chunkLine(&buffer, scanned: scanned)
        case .chunkData(let remaining):
            guard buffer.readableBytes > 0 else { return nil }
            let count = min(remaining, buffer.readableBytes)
            self.state = remaining == count ? .chunkDataEnd : .chunkData(remaining: remaining - count)
            return .body(buffer.readSlice(length: count)!)
        case .chunkDataEnd:
            guard buffer.readableBytes >= 2 else {
                if let first = buffer.readableBytesView.first, first != Byte.cr { return self.fail(.badRequest, "chunk data not followed by CRLF") }
                return nil
            }
            guard buffer.readableBytesView.starts(with: Self.crlf) else { return self.fail(.badRequest, "chunk data not followed by CRLF") }
            buffer.moveReaderIndex(forwardBy: 2)
            self.state = .chunkLine(scanned: 0)
            return self.chunkLine(&buffer, scanned: 0)
        case .trailers(let scanned):
            return self.trailers(&buffer, scanned: scanned)
        }
    }

    // MARK: The head

    private mutating func head(_ buffer: inout ByteBuffer, scanned: Int, skipped: Int) -> Event? {
        var skipped = skipped
        // RFC 9112 section 2.2: empty lines before a request line are ignored (bounded all the same).
        if scanned == 0 {
            while buffer.readableBytesView.starts(with: Self.crlf) {
                buffer.moveReaderIndex(forwardBy: 2)
                skipped += 2
                if skipped > self.maxHeadSize { return self.fail(.requestHeaderFieldsTooLarge, self.tooLarge) }
            }
            if buffer.readableBytes == 1, buffer.readableBytesView.first == Byte.cr {
                self.state = .head(scanned: 0, skipped: skipped)
                return nil
            }
        }
        switch Self.findEmptyLine(in: buffer, from: scanned, limit: self.maxHeadSize) {
        case .malformed(let reason):
            return self.fail(.badRequest, reason)
        case .tooLarge:
            return self.fail(.requestHeaderFieldsTooLarge, self.tooLarge)
        case .notYet(let scannedNow):
            self.state = .head(scanned: scannedNow, skipped: skipped)
            return nil
        case .found(let end):
            // The head's lines, each with its CRLF, then the empty line's CRLF.
            let head = buffer.readSlice(length: end)!
            buffer.moveReaderIndex(forwardBy: 2)
            switch Self.parseHead(head) {
            case .failure(let refusal):
                return self.fail(refusal.status, refusal.reason)
            case .success(let (parsed, framing)):
                if Self.saysLaterMinorVersion(head) { self.sawLaterMinorVersion = true }
                switch framing {
                case .length(let length): self.state = .body(remaining: length)
                case .chunked:
                    self.state = .chunkLine(scanned: 0)
                    self.declaredBodySize = 0
                }
                return .head(parsed)
            }
        }
    }

    private var tooLarge: String { "request head exceeds \(self.maxHeadSize) bytes" }

    enum Search {
        case found(Int)
        case notYet(scanned: Int)
        case tooLarge
        case malformed(String)
    }

    /// Where the first empty line starts (after at least one line), scanning from `start`: every
    /// LF must follow a CR, and every CR precede an LF.
    static func findEmptyLine(in buffer: ByteBuffer, from start: Int, limit: Int) -> Search {
        buffer.withUnsafeReadableBytes { bytes in
            var index = start
            while index < bytes.count {
                let byte = bytes[index]
                if byte == Byte.lf {
                    guard index > 0, bytes[index - 1] == Byte.cr else { return .malformed("a line ends with LF alone") }
                    // CRLF CRLF: the line that ends here is empty.
                    if index >= 3, bytes[index - 2] == Byte.lf {
                        return index - 1 > limit ? .tooLarge : .found(index - 1)
                    }
                } else if index > 0, bytes[index - 1] == Byte.cr {
                    return .malformed("a CR not followed by LF")
                }
                index += 1
            }
            // A trailing CR is judged when its next byte comes: scan it again then.
            let scanned = bytes.last == Byte.cr ? bytes.count - 1 : bytes.count
            // The head can be no shorter than what is here but a terminator's last 3 bytes.
            return bytes.count - 3 > limit ? .tooLarge : .notYet(scanned: scanned)
        }
    }

    package enum Framing: Equatable {
        case length(Int)
        case chunked
    }

    package struct Refusal: Error, Equatable {
        package let status: HTTPResponseStatus
        package let reason: String
    }

    /// The request line and fields of `head` (each line with its CRLF; no bare CR or LF).
    package static func parseHead(_ head: ByteBuffer) -> Result<(HTTPRequestHead, Framing), Refusal> {
        head.withUnsafeReadableBytes { bytes -> Result<(HTTPRequestHead, Framing), Refusal> in
            func refuse(_ reason: String, _ status: HTTPResponseStatus = .badRequest) -> Result<(HTTPRequestHead, Framing), Refusal> {
                .failure(Refusal(status: status, reason: reason))
            }
            var lineStart = 0
            var lineEnd = Self.lineEnd(bytes, from: 0)
            let requestLine = UnsafeRawBufferPointer(rebasing: bytes[0..<lineEnd])
            guard let firstSpace = requestLine.firstIndex(of: Byte.space) else { return refuse("malformed request line") }
            let methodBytes = requestLine[0..<firstSpace]
            guard HTTPToken.isToken(methodBytes) else { return refuse("malformed request line") }
            let afterMethod = firstSpace + 1
            guard let secondSpace = requestLine[afterMethod...].firstIndex(of: Byte.space), secondSpace > afterMethod else {
                return refuse("malformed request line")
            }
            let target = requestLine[afterMethod..<secondSpace]
            // RFC 9112 section 3.2: visible ASCII only (no control, space or byte above 0x7E).
            guard target.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return refuse("invalid character in the request target") }
            let isConnect = methodBytes.elementsEqual("CONNECT".utf8)
            // RFC 9112 section 3.2: authority-form (`host:port`) is CONNECT's alone; others are a
            // path, `*` (OPTIONS) or absolute.
            let validForm = isConnect ? Self.isAuthorityForm(target) : Self.isOriginAsteriskOrAbsoluteForm(target, options: methodBytes.elementsEqual("OPTIONS".utf8))
            guard validForm else { return refuse("invalid request target") }
            guard var version = Self.version(requestLine[(secondSpace + 1)...]) else { return refuse("malformed HTTP version") }
            // RFC 9110 section 2.5: a later minor version of 1 is read as 1.1; another major is not ours.
            guard version.major == 1 else { return refuse("HTTP version not supported", .httpVersionNotSupported) }
            if version.minor > 1 { version = .http1_1 }
            let method = HTTPMethod(rawValue: String(decoding: methodBytes, as: UTF8.self))
            if case .RAW = method { return refuse("method not implemented", .notImplemented) }

            var fields: [(String, String)] = []
            var contentLength: Int?
            var lengthFields = 0
            var codings: [String] = []
            var sawTransferEncoding = false
            lineStart = lineEnd + 2
            while lineStart < bytes.count {
                lineEnd = Self.lineEnd(bytes, from: lineStart)
                let line = UnsafeRawBufferPointer(rebasing: bytes[lineStart..<lineEnd])
                lineStart = lineEnd + 2
                switch Self.field(line) {
                case .failure(let refusal):
                    return .failure(refusal)
                case .success(let (name, value)):
                    if ASCIICase.equal(name, "content-length") {
                        lengthFields += 1
                        // RFC 9112 section 6.3: one length, digits alone; two (even equal) are refused.
                        guard lengthFields == 1, let length = ClientNumber.saturating(value) else { return refuse("invalid Content-Length") }
                        contentLength = length
                    } else if ASCIICase.equal(name, "transfer-encoding") {
                        sawTransferEncoding = true
                        codings += value.split(separator: ",").map { $0.trimmingHTTPWhitespace() }
                    }
                    fields.append((name, value))
                }
            }
            var framing: Framing
            if sawTransferEncoding {
                // RFC 9112 section 6.1: both is a smuggling attempt; a length unknowable without chunked.
                guard contentLength == nil else { return refuse("both Content-Length and Transfer-Encoding") }
                guard let final = codings.last, ASCIICase.equal(final, "chunked") else {
                    return refuse("chunked must be the final transfer coding")
                }
                framing = .chunked
            } else {
                framing = .length(contentLength ?? 0)
            }
            // RFC 9110 section 9.3.6: CONNECT has no content; what follows the head is the tunnel's.
            if isConnect { framing = .length(0) }
            let uri = String(decoding: target, as: UTF8.self)
            return .success((HTTPRequestHead(version: version, method: method, uri: uri, headers: HTTPHeaders(fields)), framing))
        }
    }

    /// Where the line from `start` ends (its CR); the caller's bytes end with CRLF.
    static func lineEnd(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        var index = start
        while bytes[index] != Byte.cr { index += 1 }
        return index
    }

    /// `/...`, `scheme://...`, or `*` for OPTIONS alone (RFC 9112 section 3.2.4).
    private static func isOriginAsteriskOrAbsoluteForm(_ target: Slice<UnsafeRawBufferPointer>, options: Bool) -> Bool {
        guard let first = target.first else { return false }
        if first == UInt8(ascii: "/") || (options && target.elementsEqual("*".utf8)) { return true }
        guard let colon = target.firstIndex(of: UInt8(ascii: ":")), colon > target.startIndex else { return false }
        // Letters only (as llhttp): an origin server has no use for other schemes' digits or signs.
        guard target[target.startIndex..<colon].allSatisfy(Self.isLetter) else { return false }
        return target[colon...].starts(with: "://".utf8)
    }

    /// `uri-host ":" port` (RFC 9112 section 3.2.3).
    private static func isAuthorityForm(_ target: Slice<UnsafeRawBufferPointer>) -> Bool {
        let text = String(decoding: target, as: UTF8.self)
        guard let colon = text.utf8.lastIndex(of: UInt8(ascii: ":")), text.utf8.index(after: colon) != text.utf8.endIndex else { return false }
        return HostField.isValid(text) && !text.hasSuffix("]")
    }

    private static func isLetter(_ byte: UInt8) -> Bool { (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z") }

    /// The request line (the head's first) ends in `1.2` to `1.9`.
    private static func saysLaterMinorVersion(_ head: ByteBuffer) -> Bool {
        let bytes = head.readableBytesView
        guard let cr = bytes.firstIndex(of: Byte.cr), cr - bytes.startIndex >= 3 else { return false }
        return bytes[cr - 3] == UInt8(ascii: "1") && bytes[cr - 2] == UInt8(ascii: ".") && bytes[cr - 1] >= UInt8(ascii: "2") && bytes[cr - 1] <= UInt8(ascii: "9")
    }

    /// `HTTP/d.d`, exactly.
    private static func version(_ bytes: Slice<UnsafeRawBufferPointer>) -> HTTPVersion? {
        guard bytes.count == 8, bytes.starts(with: "HTTP/".utf8) else { return nil }
        let major = bytes[bytes.startIndex + 5], dot = bytes[bytes.startIndex + 6], minor = bytes[bytes.startIndex + 7]
        guard Self.isDigit(major), dot == UInt8(ascii: "."), Self.isDigit(minor) else { return nil }
        return HTTPVersion(major: Int(major - UInt8(ascii: "0")), minor: Int(minor - UInt8(ascii: "0")))
    }

    /// One `name: value` line (RFC 9112 section 5): a token, a colon at once, the value without
    /// its surrounding whitespace; no control character but HTAB in it.
    static func field(_ line: UnsafeRawBufferPointer) -> Result<(String, String), Refusal> {
        if let first = line.first, first == Byte.space || first == Byte.tab {
            return .failure(Refusal(status: .badRequest, reason: "obsolete line folding"))
        }
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > 0, HTTPToken.isToken(line[0..<colon]) else {
            return .failure(Refusal(status: .badRequest, reason: "malformed header field"))
        }
        var start = colon + 1
        var end = line.count
        while start < end, line[start] == Byte.space || line[start] == Byte.tab { start += 1 }
        while end > start, line[end - 1] == Byte.space || line[end - 1] == Byte.tab { end -= 1 }
        let value = line[start..<end]
        guard value.allSatisfy(Self.isFieldByte) else {
            return .failure(Refusal(status: .badRequest, reason: "invalid character in a header value"))
        }
        return .success((String(decoding: line[0..<colon], as: UTF8.self), String(decoding: value, as: UTF8.self)))
    }

    // MARK: Support

    /// HTAB, SP, visible ASCII or obs-text: what a field value (or quoted text) may hold.
    static func isFieldByte(_ byte: UInt8) -> Bool { byte == Byte.tab || (byte >= 0x20 && byte != 0x7F) }

    mutating func fail(_ status: HTTPResponseStatus, _ reason: String) -> Event {
        self.state = .failed
        return .refused(status, reason)
    }

    static let crlf: [UInt8] = [Byte.cr, Byte.lf]

    enum Byte {
        static let cr: UInt8 = 13
        static let lf: UInt8 = 10
        static let space: UInt8 = 32
        static let tab: UInt8 = 9
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
}
