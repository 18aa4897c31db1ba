import Foundation
@_spi(Fuzzing) import Mizu
@testable import MizuHTTP
import MizuTestSupport
import NIOCore
import NIOHTTP1
import Testing

/// The connection's own request parser: RFC 9112 framing, its refusals, its bounds, and the
/// same framing as SwiftNIO's parser (llhttp) wherever ours is not stricter on purpose.
@Suite struct HTTPRequestParserTests {
    enum Seen: Equatable {
        case head(String)
        case body(String)
        case end
        case refused(UInt, String)
    }

    /// Every event for `input`, fed `step` bytes at a time (nil: all at once).
    private func events(_ input: String, step: Int? = nil, maxHeadSize: Int = 1024, maxBodySize: Int = .max) -> [Seen] {
        var parser = HTTPRequestParser(maxHeadSize: maxHeadSize, maxBodySize: maxBodySize)
        var buffer = ByteBuffer()
        var seen: [Seen] = []
        let bytes = Array(input.utf8)
        var offset = 0
        repeat {
            let count = min(step ?? bytes.count, bytes.count - offset)
            buffer.writeBytes(bytes[offset..<(offset + count)])
            offset += count
            while let event = parser.next(&buffer) {
                switch event {
                case .head(let head):
                    let fields = head.headers.map { "\($0.name)=\($0.value)" }.joined(separator: ",")
                    seen.append(.head("\(head.method.rawValue) \(head.uri) \(head.version.major).\(head.version.minor) [\(fields)]"))
                case .body(let chunk):
                    // Parts of one body are joined: how reads split it is not the parser's choice.
                    if case .body(let text)? = seen.last {
                        seen[seen.count - 1] = .body(text + String(buffer: chunk))
                    } else {
                        seen.append(.body(String(buffer: chunk)))
                    }
                case .end:
                    seen.append(.end)
                case .refused(let status, let reason):
                    seen.append(.refused(status.code, reason))
                }
            }
        } while offset < bytes.count
        return seen
    }

    /// The same events whole and fed one byte at a time.
    private func check(_ input: String, _ expected: [Seen], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(self.events(input) == expected, sourceLocation: sourceLocation)
        #expect(self.events(input, step: 1) == expected, "fed byte by byte", sourceLocation: sourceLocation)
    }

    @Test func requestsWithAndWithoutBodiesOneAfterAnother() {
        self.check(
            "GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-Pad:  v  \t\r\n\r\nPOST /p HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello",
            [.head("GET /a?b=1 1.1 [Host=x,X-Pad=v]"), .end, .head("POST /p 1.0 [Content-Length=5]"), .body("hello"), .end])
    }

    @Test func chunkedBodiesWithExtensionsAndTrailers() {
        self.check(
            "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;name=val\r\nhello\r\nA ; q=\"a b\"\r\n0123456789\r\n0\r\nX-Sum: 1\r\n\r\n",
            [.head("POST /c 1.1 [Host=x,Transfer-Encoding=chunked]"), .body("hello0123456789"), .end])
        self.check("POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", [.head("POST /c 1.1 [Transfer-Encoding=chunked]"), .end])
    }

    @Test func emptyLinesBeforeARequestAreSkipped() {
        self.check("\r\n\r\nGET / HTTP/1.1\r\n\r\n", [.head("GET / 1.1 []"), .end])
    }

    @Test func framingThatTwoParsersCouldReadDifferentlyIsRefused() {
        let cases: [(String, UInt, String)] = [
            ("GET / HTTP/1.1\nHost: x\r\n\r\n", 400, "a line ends with LF alone"),
            ("GET / HTTP/1.1\r\nHost: x\rY: z\r\n\r\n", 400, "a CR not followed by LF"),
            ("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400, "obsolete line folding"),
            ("GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400, "malformed header field"),
            ("GET / HTTP/1.1\r\nHost: a\u{0}b\r\n\r\n", 400, "invalid character in a header value"),
            ("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "both Content-Length and Transfer-Encoding"),
            ("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", 400, "invalid Content-Length"),
            ("POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\n", 400, "invalid Content-Length"),
            ("POST / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\n", 400, "invalid Content-Length"),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400, "chunked must be the final transfer coding"),
            ("POST / HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n", 400, "chunked must be the final transfer coding"),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n", 400, "chunk data not followed by CRLF"),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nz\r\n", 400, "invalid chunk size"),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5 x\r\n", 400, "invalid chunk extension"),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\n", 400, "invalid chunk extension"),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;\t=y\r\n", 400, "invalid chunk extension"),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;a=\"x\r\n", 400, "invalid chunk extension"),
            ("GET h:443 HTTP/1.1\r\n\r\n", 400, "invalid request target"),
            // RFC 9112 section 3.2.4: the asterisk is a server-wide OPTIONS, nothing else.
            ("GET * HTTP/1.1\r\n\r\n", 400, "invalid request target"),
            ("CONNECT a#f HTTP/1.1\r\n\r\n", 400, "invalid request target"),
            ("CONNECT h HTTP/1.1\r\n\r\n", 400, "invalid request target"),
            ("GET ht5tp://h/ HTTP/1.1\r\n\r\n", 400, "invalid request target"),
            ("GET /a b HTTP/1.1\r\n\r\n", 400, "malformed HTTP version"),
            ("GET  / HTTP/1.1\r\n\r\n", 400, "malformed request line"),
            ("GET /\u{7F} HTTP/1.1\r\n\r\n", 400, "invalid character in the request target"),
            ("GET / http/1.1\r\n\r\n", 400, "malformed HTTP version"),
            ("BREW /pot HTTP/1.1\r\n\r\n", 501, "method not implemented"),
            ("GET / HTTP/2.0\r\n\r\n", 505, "HTTP version not supported"),
        ]
        for (input, status, reason) in cases {
            let seen = self.events(input)
            #expect(seen.last == .refused(status, reason), "\(input.debugDescription): \(seen)")
            #expect(self.events(input, step: 1).last == .refused(status, reason), "byte by byte: \(input.debugDescription)")
        }
    }

    @Test func aLaterMinorVersionOfHTTP1IsReadAs11() {
        self.check("GET / HTTP/1.7\r\n\r\n", [.head("GET / 1.1 []"), .end])
        self.check("OPTIONS * HTTP/1.1\r\n\r\n", [.head("OPTIONS * 1.1 []"), .end])
    }

    @Test func aChunkDeclaringMoreThanTheBodyLimitIsRefusedBeforeItsBytes() {
        let head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        // 0x65 = 101 bytes against a limit of 100: refused at the size line.
        #expect(self.events(head + "65\r\n", maxBodySize: 100).last == .refused(413, "request body exceeds 100 bytes"))
        // Two chunks of 64: the second size line takes the body past the limit.
        let two = head + "40\r\n" + String(repeating: "a", count: 64) + "\r\n40\r\n"
        #expect(self.events(two, maxBodySize: 100).last == .refused(413, "request body exceeds 100 bytes"))
        // Sizes that overflow together saturate (no trap) and are refused.
        let huge = head + "7fffffffffffffff\r\na\r\n7fffffffffffffff\r\n"
        #expect(self.events(huge, maxBodySize: 100).last == .refused(413, "request body exceeds 100 bytes"))
        #expect(self.events(head + "64\r\n", maxBodySize: 100).last == .head("POST / 1.1 [Transfer-Encoding=chunked]"))
    }

    @Test func numbersAtTheirExtremesNeverTrap() {
        // A length past Int.max is "larger than anything": the connection's limit answers 413.
        self.check("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999999\r\n\r\n",
                   [.head("POST / 1.1 [Content-Length=99999999999999999999999999]")])
        let chunk = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + String(repeating: "f", count: 17) + "\r\n"
        #expect(self.events(chunk).last == .refused(413, "chunk size too large"))
        #expect(self.events("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n7fffffffffffffff\r\nab").last == .body("ab"))
    }

    @Test func everyWaitIsBounded() {
        // A head, a trailer section and a chunk-size line that never end are refused at their bound.
        let head = "GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 2000)
        #expect(self.events(head).last == .refused(431, "request head exceeds 1024 bytes"))
        #expect(self.events(head, step: 7).last == .refused(431, "request head exceeds 1024 bytes"))
        #expect(self.events(String(repeating: "\r\n", count: 600)).last == .refused(431, "request head exceeds 1024 bytes"))
        let trailers = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: " + String(repeating: "t", count: 2000)
        #expect(self.events(trailers).last == .refused(431, "trailer section exceeds 1024 bytes"))
        let extensionLine = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;" + String(repeating: "e", count: 5000)
        #expect(self.events(extensionLine).last == .refused(400, "chunk-size line too long"))
        #expect(self.events(extensionLine, step: 3).last == .refused(400, "chunk-size line too long"))
        // A head exactly at the limit is read.
        let exact = "GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 1024 - 21) + "\r\n\r\n"
        #expect(self.events(exact).first.map { if case .head = $0 { true } else { false } } == true)
    }

    @Test func nothingIsReadAfterARefusal() {
        var parser = HTTPRequestParser(maxHeadSize: 1024)
        var buffer = ByteBuffer(string: "GET / HTTP/1.1\nGET / HTTP/1.1\r\n\r\n")
        #expect(parser.next(&buffer) == .refused(.badRequest, "a line ends with LF alone"))
        #expect(parser.next(&buffer) == nil)
    }

    // MARK: Against NIO's parser

    @Test func theSameFramingAsNIOsParserOverAGeneratedCorpus() {
        var generator = RequestGenerator(seed: 0x5EED_2026)
        var disagreements: [String] = []
        for _ in 0..<10000 {
            let bytes = generator.next()
            if let disagreement = RequestParserDifferential.disagreement(bytes) {
                disagreements.append("\(bytes): \(disagreement)")
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.count) disagreements, first: \(disagreements.prefix(3))")
    }

    @Test func theFuzzTargetsSeedsAgree() throws {
        // Fuzz/corpus/request-parser: the selector byte, then the request bytes.
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Fuzz/corpus/request-parser").standardized
        let seeds = try FileManager.default.contentsOfDirectory(atPath: folder.path)
        #expect(seeds.count >= 5)
        for seed in seeds {
            let bytes = Array(try Data(contentsOf: folder.appendingPathComponent(seed)).dropFirst())
            #expect(RequestParserDifferential.disagreement(bytes) == nil, "\(seed)")
        }
        // Found by the fuzzer on the chunked seed: whitespace before a chunk extension's `;` is
        // BWS (RFC 9110 section 5.6.3: parsed and removed); llhttp refuses it.
        let bws = "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nA ; q=\"a b\"\r\n0123456789\r\n23456789\r\n0\r\n\r\n"
        #expect(RequestParserDifferential.disagreement(Array(bws.utf8)) == nil)
    }

    @Test func theDifferentialNoticesAParserThatFramesDifferently() {
        // A parser that ignores Content-Length (so reads the body as the next request) and one
        // that accepts a chunk size NIO refuses: both must be caught.
        let ignoresLength: ([UInt8], Int?) -> RequestParserDifferential.Outcome = { bytes, split in
            var outcome = RequestParserDifferential.ours(bytes, splitAt: split)
            for index in outcome.messages.indices { outcome.messages[index].body = [] }
            return outcome
        }
        #expect(RequestParserDifferential.disagreement(Array("POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi".utf8), parsedBy: ignoresLength) != nil)
        let neverRefuses: ([UInt8], Int?) -> RequestParserDifferential.Outcome = { bytes, split in
            var outcome = RequestParserDifferential.ours(bytes, splitAt: split)
            outcome.refusal = nil
            return outcome
        }
        #expect(RequestParserDifferential.disagreement(Array("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".utf8), parsedBy: neverRefuses) != nil)
        #expect(RequestParserDifferential.disagreement(Array("POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi".utf8)) == nil)
    }
}

/// Requests built from parts that matter to framing, some of them broken, then mutated a byte
/// at a time: deterministic (a fixed seed), so a disagreement found is found again.
struct RequestGenerator {
    private var random: SeededRandom

    init(seed: UInt64) { self.random = SeededRandom(state: seed) }

    private mutating func pick<T>(_ choices: [T]) -> T { choices[Int(self.random.next() % UInt64(choices.count))] }

    mutating func next() -> [UInt8] {
        var text = ""
        for _ in 0..<Int(1 + self.random.next() % 3) { text += self.message() }
        var bytes = Array(text.utf8)
        // Cut short sometimes: a parser must judge what it has so far the same way.
        if self.random.next() % 4 == 0, !bytes.isEmpty { bytes = Array(bytes.prefix(Int(self.random.next() % UInt64(bytes.count)))) }
        if self.random.next() % 3 == 0, !bytes.isEmpty {
            for _ in 0..<Int(1 + self.random.next() % 3) {
                let index = Int(self.random.next() % UInt64(bytes.count))
                switch self.random.next() % 3 {
                case 0: bytes[index] = self.pick([0, 9, 10, 13, 32, 34, 44, 58, 59, 61, 92, 0x7F, 0x80, 0xFF, UInt8(ascii: "0"), UInt8(ascii: "a")])
                case 1: bytes.insert(self.pick([10, 13, 32, 9, UInt8(ascii: ":"), UInt8(ascii: "5")]), at: index)
                default: bytes.remove(at: index)
                }
                if bytes.isEmpty { break }
            }
        }
        return bytes
    }

    private mutating func message() -> String {
        let method = self.pick(["GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "PATCH", "CONNECT", "get", "BREW", "M-SEARCH"])
        let target = self.pick(["/", "/a/b?c=d", "*", "http://h/x", "/%20", "/a#f", "h:443"])
        let version = self.pick(["HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/1.2", "HTTP/2.0", "HTTP/1.1 ", "HTTP/11"])
        var lines = ["\(method) \(target) \(version)"]
        var body = ""
        for _ in 0..<Int(self.random.next() % 4) {
            lines.append(self.pick(["Host: x", "Accept: */*", "X-Empty:", "X-Spaces:   v  ", "Connection: keep-alive", "Connection: close",
                                    "Upgrade: websocket", "Expect: 100-continue", "X-Tab:\tv\t", "Cookie: a=b; c=d"]))
        }
        switch self.random.next() % 6 {
        case 0:
            let length = Int(self.random.next() % 6)
            lines.append(self.pick(["Content-Length: \(length)", "content-length:\(length)", "Content-Length: 0\(length)"]))
            body = String(repeating: "b", count: length)
        case 1:
            lines.append(self.pick(["Transfer-Encoding: chunked", "transfer-encoding: CHUNKED", "Transfer-Encoding: gzip, chunked"]))
            body = self.pick(["3\r\nabc\r\n0\r\n\r\n", "1;x=y\r\nz\r\n0\r\nT: v\r\n\r\n", "0\r\n\r\n", "A\r\n0123456789\r\n0\r\n\r\n", "2 ; a=\"q \\\" r\" ;b\r\nzz\r\n0;e\r\n\r\n"])
        case 2:
            lines.append(self.pick(["Content-Length: 2", "Content-Length: 2, 2", "Content-Length: -1", "Content-Length: 1x"]))
            lines.append(self.pick(["Transfer-Encoding: chunked", "Content-Length: 3", "X: y"]))
            body = "ab"
        default:
            break
        }
        return lines.joined(separator: "\r\n") + "\r\n\r\n" + body
    }
}
