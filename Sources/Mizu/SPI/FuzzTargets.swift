import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// Entry points for the libFuzzer target in Fuzz/: every parser of client bytes in the HTTP
/// layer and the router. Not API: reachable only through `@_spi(Fuzzing) import Mizu`.
///
/// Text reaches the parsers as NIO's HTTP decoder hands it over (UTF-8, invalid sequences
/// replaced). Where a target reads several fields, they are separated by `\n` in the input,
/// so the seeds in Fuzz/corpus stay readable. Besides crashes, `precondition`s check the
/// promises callers rely on; a failed one is a finding.
@_spi(Fuzzing) public enum HTTPFuzzTargets {
    /// `If-Modified-Since` and friends (`HTTPDate.parse`), and `format` back: a parsed date
    /// in years 1000 to 9999 (four digits, so the format can say it) formats to the same instant.
    public static func httpDate(_ bytes: UnsafeRawBufferPointer) {
        guard let seconds = HTTPDate.parse(Self.text(bytes)) else { return }
        let formatted = HTTPDate.format(secondsSince1970: time_t(seconds))
        if (-30_610_224_000...253_402_300_799).contains(seconds) {
            precondition(HTTPDate.parse(formatted) == seconds, "\(seconds) formats as \"\(formatted)\", which does not parse back")
        }
    }

    /// `Range` (`ByteRange.parse`) against a file size given as the input's first line
    /// (decimal, saturating at `Int.max`; anything else is 0). A part must lie inside the file.
    public static func byteRange(_ bytes: UnsafeRawBufferPointer) {
        let (sizeLine, header) = Self.firstLine(bytes)
        let size = ClientNumber.saturating(Self.text(sizeLine)) ?? 0
        if case .part(let range) = ByteRange.parse(Self.text(header), size: size) {
            precondition(
                range.lowerBound >= 0 && range.lowerBound < range.upperBound && range.upperBound <= size,
                "range \(range) for a file of \(size) bytes")
        }
    }

    /// `Ctx.cookie(_:)`: the first line is the name looked up, each further line one `Cookie`
    /// header. The value found is then set back as a cookie (as an app echoing it would):
    /// what `Cookie.headerValue()` accepts must be a single clean header line.
    public static func cookie(_ bytes: UnsafeRawBufferPointer) {
        let (nameLine, rest) = Self.firstLine(bytes)
        let name = Self.text(nameLine)
        let headers = HTTPHeaders(rest.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { ("cookie", Self.text($0)) })
        guard let value = Self.context(Request(method: .GET, uri: "/", headers: headers)).cookie(name) else { return }
        precondition(!value.utf8.contains(UInt8(ascii: ";")), "cookie value \"\(value)\" runs past its pair")
        guard let header = try? Cookie(name: name, value: value).headerValue() else { return }
        precondition(header.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F }, "Set-Cookie \"\(header)\" carries control or non-ASCII bytes")
    }

    /// `Content-Type` as the router reads it: the multipart boundary (1 to 70 characters
    /// when found) and the form check of `Ctx.form()`.
    public static func mediaType(_ bytes: UnsafeRawBufferPointer) {
        let type = Self.text(bytes)
        if let boundary = MultipartParser.boundary(of: type) {
            precondition(
                (1...70).contains(boundary.utf8.count) && !boundary.utf8.contains(UInt8(ascii: ";")),
                "boundary \"\(boundary)\" of \(boundary.utf8.count) bytes")
        }
        let request = Request(method: .POST, uri: "/", headers: ["content-type": type], body: ByteBuffer(string: "a=1"))
        _ = Self.context(request).form()["a"]
    }

    /// `Ctx.multipartForm(maxMemory:)`: boundary extraction and the body parser. The first
    /// byte's low bit picks an 8-byte `maxMemory` (files spool to disk) or 64 KiB; then the
    /// `Content-Type` line, then the body. Every file's size must match its bytes, its name
    /// must be a base name, and no spooled file may outlive the request.
    public static func multipart(_ bytes: UnsafeRawBufferPointer) {
        guard let settings = bytes.first else { return }
        let (typeLine, body) = Self.firstLine(UnsafeRawBufferPointer(rebasing: bytes.dropFirst()))
        let request = Request(
            method: .POST, uri: "/upload", headers: ["content-type": Self.text(typeLine)], body: ByteBuffer(bytes: body))
        let ctx = Self.context(request)
        // A malformed body throws, and the parser has removed what it spooled by then.
        guard let form = try? ctx.multipartForm(maxMemory: settings & 1 != 0 ? 8 : 1 << 16) else { return }
        _ = form.values["name"]
        for file in form.files {
            precondition(
                !file.filename.utf8.contains(UInt8(ascii: "/")) && !file.filename.utf8.contains(UInt8(ascii: "\\")),
                "filename \"\(file.filename)\" has a directory part")
            precondition((try? file.data().count) == file.size, "file \"\(file.filename)\" does not hold its \(file.size) bytes")
        }
        ctx.values.removeTemporaryFiles()  // as the app does when the handler returns
        for file in form.files {
            if case .disk(let path) = file.content { precondition(!FileManager.default.fileExists(atPath: path), "\(path) left on disk") }
        }
    }

    /// `Accept-Encoding` (`ResponseCompression.acceptsGzip`), and its `qvalue` grammar alone:
    /// a weight it takes is 0 to 1000 thousandths and the number the text spells.
    public static func acceptEncoding(_ bytes: UnsafeRawBufferPointer) {
        let text = Self.text(bytes)
        _ = ResponseCompression.acceptsGzip(text)
        guard let weight = ResponseCompression.qvalue(text) else { return }
        precondition((0...1000).contains(weight) && text.utf8.count <= 5, "qvalue \"\(text)\" read as \(weight)")
        precondition(Double(text).map { ($0 * 1000).rounded() } == Double(weight), "qvalue \"\(text)\" read as \(weight)")
    }

    /// `application/x-www-form-urlencoded`: `Ctx.form()` on the body, and the same bytes as
    /// a request's query (`QueryParameters`, `PercentEncoding`).
    public static func form(_ bytes: UnsafeRawBufferPointer) {
        let text = Self.text(bytes)
        let request = Request(
            method: .POST, uri: "/?" + text, headers: ["content-type": "application/x-www-form-urlencoded"], body: ByteBuffer(bytes: bytes))
        let form = Self.context(request).form()
        let query = request.query
        precondition(form.isEmpty == query.isEmpty, "the body and the query read \"\(text)\" differently")
        // The first pair as the bytes delimit it (a Character split can miss a delimiter).
        if let item = text.utf8.split(separator: UInt8(ascii: "&")).first {
            let raw = String(Substring(item.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)[0]))
            let key = PercentEncoding.decode(raw, plusAsSpace: true) ?? raw
            precondition(query[key] != nil && form.values(key) == query.values(key), "\"\(text)\" lost its first key \"\(key)\"")
        }
        if let decoded = PercentEncoding.decode(text, plusAsSpace: false) {
            precondition(decoded.utf8.count <= text.utf8.count, "decoding \"\(text)\" made it longer")
        }
    }

    /// `Ctx.bindJSON` (the strict decoder, or Foundation's with unknown fields allowed): the
    /// first byte picks the target type and the mode, the rest is the body (at most 2 KiB).
    /// Every failure must come out as an `HTTPError`.
    public static func json(_ bytes: UnsafeRawBufferPointer) {
        guard let settings = bytes.first else { return }
        let ctx = Self.context(Request(method: .POST, uri: "/", body: ByteBuffer(bytes: bytes.dropFirst())))
        let allowUnknown = settings & 0x80 != 0
        do {
            switch settings % 6 {
            case 0: _ = try ctx.bindJSON(JSONProbe.self, limit: 2048, allowUnknownFields: allowUnknown)
            case 1: _ = try ctx.bindJSON([JSONProbe.Item].self, limit: 2048, allowUnknownFields: allowUnknown)
            case 2: _ = try ctx.bindJSON([String: [Int]].self, limit: 2048, allowUnknownFields: allowUnknown)
            case 3: _ = try ctx.bindJSON(JSONProbe.Pair.self, limit: 2048, allowUnknownFields: allowUnknown)
            case 4: _ = try ctx.bindJSON(Double.self, limit: 2048, allowUnknownFields: allowUnknown)
            default: _ = try ctx.bindJSON(Date.self, limit: 2048, allowUnknownFields: allowUnknown)
            }
        } catch {
            precondition(error is HTTPError, "bindJSON threw \(error), not an HTTPError")
        }
    }

    /// The request target: split into path and query, percent-decoded, matched against a
    /// routing table segment by segment; a `{path...}` capture resolved as static files do
    /// (never outside the root); the decoded path as it goes to a log line (no control characters).
    public static func requestTarget(_ bytes: UnsafeRawBufferPointer) {
        let request = Request(method: .GET, uri: Self.text(bytes))
        precondition(!request.rawPath.utf8.contains(UInt8(ascii: "?")), "path \"\(request.rawPath)\" runs into the query")
        _ = request.query["q"]
        if let match = Self.routes.match(rawPath: request.rawPath), let relative = match.parameters["path"],
            let resolved = StaticFiles.resolve(relative, root: Self.staticRoot)
        {
            precondition(resolved.hasPrefix(Self.staticRoot + "/"), "\"\(relative)\" resolved to \(resolved), outside the root")
        }
        let logged = LogSafe(request.path).description
        precondition(
            logged.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value != 0x7F && !(0x80..<0xA0).contains($0.value) && $0 != "\u{2028}" && $0 != "\u{2029}" },
            "a log line of \"\(request.path)\" keeps a control character")
    }

    /// A whole request head through the connection's state machine (Host, Transfer-Encoding,
    /// Content-Length and Expect checks, then the body limit), and what handlers read of the
    /// result: keep-alive, conditional headers against a file's validators, Accept-Encoding,
    /// cookies. The first byte picks the method (low 3 bits) and HTTP/1.0 (bit 3); then the
    /// target line, `name: value` lines, an empty line and the body.
    public static func requestHead(_ bytes: UnsafeRawBufferPointer) {
        guard let settings = bytes.first else { return }
        let methods: [HTTPMethod] = [.GET, .HEAD, .POST, .PUT, .DELETE, .OPTIONS, .CONNECT, .PATCH]
        var (line, rest) = Self.firstLine(UnsafeRawBufferPointer(rebasing: bytes.dropFirst()))
        let uri = Self.text(line)
        var headers = HTTPHeaders()
        while !rest.isEmpty {
            (line, rest) = Self.firstLine(UnsafeRawBufferPointer(rebasing: rest))
            if line.isEmpty { break }
            let colon = line.firstIndex(of: UInt8(ascii: ":")) ?? line.endIndex
            let name = line[..<colon], value = colon == line.endIndex ? line[colon...] : line[(colon + 1)...]
            // NIO's parser refuses a field name that is not a token: such a head never gets here.
            guard !name.isEmpty, name.allSatisfy(HTTPToken.isTokenCharacter) else { return }
            headers.add(name: Self.text(name), value: Self.text(value).trimmingHTTPWhitespace())
        }
        let head = HTTPRequestHead(
            version: settings & 8 != 0 ? .http1_0 : .http1_1, method: methods[Int(settings & 7)], uri: uri, headers: headers)
        var machine = HTTPConnectionStateMachine(maxBodySize: 64)
        _ = machine.bytesArrived()
        _ = machine.receivedHead(head)
        var body = ByteBuffer(bytes: rest)
        _ = machine.receivedBodyPart(&body)
        guard case .request(let request, _)? = machine.receivedEnd(remoteAddress: nil).start else { return }
        _ = request.keepAlive
        _ = StaticFiles.notModified(request, etag: "W/\"1f4-5f5e1000\"", modified: 1_600_000_000)
        _ = StaticFiles.rangeApplies(request, etag: "W/\"1f4-5f5e1000\"", modified: 1_600_000_000)
        _ = ResponseCompression.acceptsGzip(request.header("accept-encoding"))
        _ = Self.context(request).cookie("session")
    }

    /// Raw bytes through the connection's request parser and SwiftNIO's (llhttp): they must
    /// frame them alike (see ``RequestParserDifferential``), whole or fed in two parts.
    public static func requestParser(_ bytes: UnsafeRawBufferPointer) {
        if let disagreement = RequestParserDifferential.disagreement(Array(bytes)) {
            preconditionFailure("request parsers disagree on \(Array(bytes)): \(disagreement)")
        }
    }

    // MARK: Support

    /// What a JSON body is decoded into: keyed, unkeyed and single-value containers, optionals,
    /// a dictionary (which reads every key), leaf types (Date, Data) and hand-written
    /// `init(from:)`s that take nested containers the way the tracking decoder must follow.
    struct JSONProbe: Decodable {
        struct Item: Decodable {
            let id: Int
            let tags: [String]?
            let weight: Double?
            let small: UInt8?
        }

        /// `[{"key": "k"}, [1, 2]]`: nested containers reached from an unkeyed one.
        struct Pair: Decodable {
            enum CodingKeys: String, CodingKey { case key }
            let key: String
            let values: [Int]

            init(from decoder: any Decoder) throws {
                var list = try decoder.unkeyedContainer()
                self.key = try list.nestedContainer(keyedBy: CodingKeys.self).decode(String.self, forKey: .key)
                var numbers = try list.nestedUnkeyedContainer()
                var values: [Int] = []
                while !numbers.isAtEnd { values.append(try numbers.decode(Int.self)) }
                self.values = values
            }
        }

        /// `{"shape": {"kind": "circle", "size": {"r": 1}}}`: a nested keyed container and a
        /// super decoder, both reached by key.
        struct Shape: Decodable {
            enum CodingKeys: String, CodingKey { case kind, size }
            enum SizeKeys: String, CodingKey { case r, w, h }
            let kind: String
            let area: Double

            init(from decoder: any Decoder) throws {
                let container = try decoder.container(keyedBy: CodingKeys.self)
                self.kind = try container.decode(String.self, forKey: .kind)
                let size = try container.nestedContainer(keyedBy: SizeKeys.self, forKey: .size)
                if self.kind == "circle" {
                    let radius = try size.decode(Double.self, forKey: .r)
                    self.area = radius * radius * Double.pi
                } else {
                    self.area = try size.decode(Double.self, forKey: .w) * size.decode(Double.self, forKey: .h)
                }
                _ = try? container.superDecoder(forKey: .size).singleValueContainer().decodeNil()
            }
        }

        let name: String
        let count: Int?
        let flag: Bool?
        let items: [Item]?
        let meta: [String: Int]?
        let when: Date?
        let blob: Data?
        let shape: Shape?
        let grid: [[Item]]?
    }

    /// A routing table shaped like an app's: static, `{param}` and `{path...}` routes.
    private static let routes: RouteTable = {
        let table = RouteTable()
        let handler: Handler = { _ in }
        for pattern in ["/", "/users/{id}", "/users/{id}/posts/{post}", "/static/a%2Fb", "/files/{path...}", "/{slug}/edit"] {
            table.add(method: .GET, pattern: pattern, handler: handler)
        }
        return table
    }()

    /// A static-files root that does not exist: resolution runs its checks without reading
    /// anything that varies from machine to machine.
    private static let staticRoot = "/nonexistent/mizu-fuzz-root"


    /// Client bytes as NIO's HTTP decoder makes strings of them.
    private static func text(_ bytes: some Collection<UInt8>) -> String {
        String(decoding: bytes, as: UTF8.self)
    }

    /// The bytes before the first `\n`, and those after it (all of them and none without one).
    private static func firstLine(_ bytes: UnsafeRawBufferPointer) -> (Slice<UnsafeRawBufferPointer>, Slice<UnsafeRawBufferPointer>) {
        guard let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) else { return (bytes[...], bytes[bytes.endIndex...]) }
        return (bytes[..<newline], bytes[(newline + 1)...])
    }

    /// A real `Ctx` for `request`, as handlers get it; the targets only read from it.
    private static func context(_ request: Request) -> Ctx {
        Ctx(request: request, writer: ResponseWriter(connection: DetachedConnection(), requestMethod: request.method, allocator: ByteBufferAllocator()))
    }
}

/// The connection behind the fuzz targets' writers: no peer, so anything sent fails as on a
/// closed channel (no target sends; this only satisfies the writer).
private struct DetachedConnection: ResponseConnection {
    func write(_ parts: [HTTPServerResponsePart], isHeadRequest: Bool) -> EventLoopFuture<Void> {
        MultiThreadedEventLoopGroup.singleton.any().makeFailedFuture(ChannelError.ioOnClosedChannel)
    }

    func upgrade(head: HTTPResponseHead, configure: @escaping @Sendable (any Channel) -> EventLoopFuture<Void>) -> EventLoopFuture<Void> {
        MultiThreadedEventLoopGroup.singleton.any().makeFailedFuture(ChannelError.ioOnClosedChannel)
    }

    func cut() {}
}
