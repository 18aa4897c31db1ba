import MizuHTTP
import NIOCore
import NIOEmbedded
import NIOHTTP1

/// The connection's request parser against SwiftNIO's (llhttp), on the same bytes: both must
/// frame them alike (the same requests, bodies and ends, or a refusal), or differ only where
/// ours is stricter on purpose. Two parsers that frame one message differently are what request
/// smuggling is made of; this is how a change to ours is checked (the unit tests run it over a
/// generated corpus, the fuzzer over whatever it finds). Not API.
@_spi(Fuzzing) public enum RequestParserDifferential {
    /// The head size limit both parsers get.
    public static let maxHeadSize = 4096

    /// What one parser made of the bytes, up to the first request after which a server reads
    /// no more HTTP (an upgrade or CONNECT request, or one that closes the connection).
    package struct Outcome: Equatable, CustomStringConvertible {
        package struct Message: Equatable {
            package var head: HTTPRequestHead
            package var body: [UInt8] = []
            package var ended = false
        }

        package var messages: [Message] = []
        /// The reason, when the parser refused.
        package var refusal: String?
        /// It stopped because a request was the last HTTP of the connection.
        package var stoppedAfterLast = false
        /// Ours ran out of bytes inside a head, a trailer section or a chunk-size line (judged once
        /// the line is complete).
        package var awaitsLineEnd = false
        /// Ours read whitespace around a chunk's extensions (BWS, which llhttp refuses).
        package var sawChunkLineWhitespace = false
        /// Ours read a request line's HTTP/1.2 to 1.9 as 1.1 (llhttp refuses those).
        package var sawLaterMinorVersion = false

        mutating func began(_ head: HTTPRequestHead) { self.messages.append(Message(head: head)) }

        mutating func received(_ chunk: ByteBuffer) { self.messages[self.messages.count - 1].body += chunk.readableBytesView }

        /// The message ended; whether it was the connection's last HTTP (nothing after it is read).
        mutating func ended() -> Bool {
            self.messages[self.messages.count - 1].ended = true
            self.stoppedAfterLast = Self.isLast(self.messages[self.messages.count - 1].head)
            return self.stoppedAfterLast
        }

        package var description: String {
            let messages = self.messages.map { "\($0.head.method) \($0.head.uri) \($0.head.version) \($0.head.headers.map { "\($0.name)=\($0.value)" }) body \($0.body.count) ended \($0.ended)" }
            return "\(messages) refusal: \(self.refusal ?? "none")"
        }

        /// Judged from the fields alone for both (NIO's decoder also hands over llhttp's own
        /// keep-alive verdict, which differs where a field repeats: ours then closes).
        static func isLast(_ head: HTTPRequestHead) -> Bool {
            let fieldsOnly = HTTPRequestHead(version: head.version, method: head.method, uri: head.uri, headers: HTTPHeaders(head.headers.map { ($0.name, $0.value) }))
            return head.method == .CONNECT || head.headers.contains(name: "upgrade") || !fieldsOnly.isKeepAlive
        }
    }

    /// Refusals of ours that llhttp lets through: each is stricter on purpose.
    static let deliberatelyStricter: Set<String> = [
        // RFC 9110 section 9.1: 501 for a method this server does not know (llhttp knows more names).
        "method not implemented",
        // RFC 9110 section 15.6.6: HTTP/2 and beyond are not spoken in HTTP/1 syntax here.
        "HTTP version not supported",
        // RFC 9112 section 2.2 permits LF alone; a lenient line end is a smuggling lever.
        "a line ends with LF alone",
        "a CR not followed by LF",
        // RFC 9112 section 6.3: two lengths, even equal, are refused; llhttp allows some lists.
        "invalid Content-Length",
        "both Content-Length and Transfer-Encoding",
        "chunked must be the final transfer coding",
        // RFC 9112 section 3.2: the target is visible ASCII; llhttp lets some bytes above 0x7F in.
        "invalid character in the request target",
        "invalid request target",
        "invalid character in a header value",
        "malformed header field",
        "obsolete line folding",
        "malformed request line",
        "malformed HTTP version",
        "invalid chunk size",
        "invalid chunk extension",
        "chunk data not followed by CRLF",
    ]

    /// A description of how the two parsers disagree on `bytes`, or nil when they agree.
    public static func disagreement(_ bytes: [UInt8]) -> String? {
        self.disagreement(bytes, parsedBy: Self.ours)
    }

    /// As ``disagreement(_:)``, with `parse` standing for our parser (a test checks that the
    /// check notices a parser that frames differently).
    package static func disagreement(_ bytes: [UInt8], parsedBy parse: ([UInt8], Int?) -> Outcome) -> String? {
        let ours = parse(bytes, nil)
        let split = parse(bytes, bytes.count / 2)
        guard ours == split else { return "fed whole and in two parts, ours differs: \(ours) / \(split)" }
        let nio = self.nio(bytes)
        switch (ours.refusal, nio.refusal) {
        case (nil, nil):
            return Self.sameFraming(ours, nio) ? nil : "ours \(ours) / NIO \(nio)"
        case (let reason?, nil):
            guard Self.deliberatelyStricter.contains(reason) || Self.refusedOnlyLater(ours, nio) else {
                return "only ours refused (\(reason)): NIO \(nio)"
            }
            return Self.agreeBefore(ours, nio) ? nil : "ours \(ours) / NIO \(nio)"
        case (nil, let refusal?):
            // Ours may still wait for the end of a line (a head's, a chunk's) that llhttp already
            // judged: it refuses once that line is complete, too long or too slow. And RFC 9110 section 5.6.3 has a
            // recipient accept whitespace around chunk extensions (BWS), which llhttp refuses.
            // Anything else accepted is a finding.
            // Likewise OWS after a Content-Length's digits is not part of the value (RFC 9110 5.5);
            // llhttp refuses it, and ours accepts nothing else there but digits.
            // And HTTP/1.2 to 1.9 are read as 1.1 (RFC 9110 section 2.5); llhttp refuses them.
            let lenient = ours.sawChunkLineWhitespace || ours.sawLaterMinorVersion || refusal.contains("content-length")
            guard Self.waitsForALineEnd(ours) || lenient else { return "only NIO refused: ours \(ours) / NIO \(nio)" }
            return Self.agreeBefore(ours, nio) ? nil : "ours \(ours) / NIO \(nio)"
        case (_?, _?):
            return Self.agreeBefore(ours, nio) ? nil : "ours \(ours) / NIO \(nio)"
        }
    }

    /// Both framed the same requests alike (NIO may have read past a last request; ours stops).
    private static func sameFraming(_ ours: Outcome, _ nio: Outcome) -> Bool {
        guard ours.messages.count <= nio.messages.count else { return false }
        let theirs = Array(nio.messages.prefix(ours.messages.count))
        if ours.stoppedAfterLast || ours.messages.count == nio.messages.count { return Self.same(ours.messages, theirs) }
        // Ours has fewer only while a head is still incomplete to it.
        return false
    }

    /// The requests both completed before either refused are the same.
    private static func agreeBefore(_ ours: Outcome, _ nio: Outcome) -> Bool {
        let complete = min(ours.messages.filter(\.ended).count, nio.messages.filter(\.ended).count)
        return Self.same(Array(ours.messages.prefix(complete)), Array(nio.messages.prefix(complete)))
    }

    /// Ours refused a request whose head NIO has not finished either (a size limit met first).
    private static func refusedOnlyLater(_ ours: Outcome, _ nio: Outcome) -> Bool {
        ours.refusal?.hasPrefix("request head exceeds") == true || ours.refusal?.hasPrefix("trailer section exceeds") == true
            || ours.refusal == "chunk-size line too long" || ours.refusal == "chunk size too large"
    }

    private static func same(_ a: [Outcome.Message], _ b: [Outcome.Message]) -> Bool {
        guard a.count == b.count else { return false }
        for (x, y) in zip(a, b) {
            guard x.head.method == y.head.method, x.head.uri == y.head.uri, x.head.version == y.head.version,
                x.body == y.body, x.ended == y.ended,
                Self.fields(x.head) == Self.fields(y.head)
            else { return false }
        }
        return true
    }

    /// RFC 9112 section 5: a value's leading and trailing whitespace is not part of it (ours
    /// drops both; llhttp keeps the trailing).
    private static func fields(_ head: HTTPRequestHead) -> [String] {
        head.headers.map { "\($0.name.lowercased()):\($0.value.trimmingHTTPWhitespace())" }
    }

    /// Ours produced no refusal and waits for the end of a line (not for body bytes).
    private static func waitsForALineEnd(_ ours: Outcome) -> Bool {
        !ours.stoppedAfterLast && ours.awaitsLineEnd
    }

    package static func ours(_ bytes: [UInt8], splitAt split: Int?) -> Outcome {
        var parser = HTTPRequestParser(maxHeadSize: Self.maxHeadSize)
        var outcome = Outcome()
        var buffer = ByteBuffer()
        let parts = split.map { [Array(bytes[..<$0]), Array(bytes[$0...])] } ?? [bytes]
        feeding: for part in parts {
            buffer.writeBytes(part)
            while let event = parser.next(&buffer) {
                switch event {
                case .head(let head):
                    outcome.began(head)
                case .body(let chunk):
                    outcome.received(chunk)
                case .end:
                    if outcome.ended() { break feeding }
                case .refused(_, let reason):
                    outcome.refusal = reason
                    break feeding
                }
            }
        }
        outcome.awaitsLineEnd = outcome.refusal == nil && !outcome.stoppedAfterLast && parser.awaitsLineEnd
        outcome.sawChunkLineWhitespace = parser.sawChunkLineWhitespace
        outcome.sawLaterMinorVersion = parser.sawLaterMinorVersion
        return outcome
    }

    static func nio(_ bytes: [UInt8]) -> Outcome {
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderListSize = Self.maxHeadSize
        limits.maxHeaderFieldSize = Self.maxHeadSize
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes, limitConfiguration: limits)))
        var outcome = Outcome()
        do {
            try channel.writeInbound(ByteBuffer(bytes: bytes))
        } catch {
            outcome.refusal = "\(error)"
        }
        reading: while let part = try? channel.readInbound(as: HTTPServerRequestPart.self) {
            switch part {
            case .head(let head):
                outcome.began(head)
            case .body(let chunk):
                outcome.received(chunk)
            case .end:
                if outcome.ended() {
                    // What llhttp said of bytes after the last request is not ours to compare.
                    outcome.refusal = nil
                    break reading
                }
            }
        }
        _ = try? channel.finish()
        return outcome
    }
}
