import NIOCore
import NIOHTTP1

/// Chunked bodies (RFC 9112 section 7.1): size lines, their extensions, and the trailer section.
extension HTTPRequestParser {
    mutating func chunkLine(_ buffer: inout ByteBuffer, scanned: Int) -> Event? {
        let found: Result<Int, Refusal>? = buffer.withUnsafeReadableBytes { bytes in
            var index = scanned
            while index < bytes.count, index <= Self.maxChunkLineSize {
                if bytes[index] == Byte.lf { return .failure(Refusal(status: .badRequest, reason: "a line ends with LF alone")) }
                if bytes[index] == Byte.cr {
                    guard index + 1 < bytes.count else { return nil }
                    guard bytes[index + 1] == Byte.lf else { return .failure(Refusal(status: .badRequest, reason: "a CR not followed by LF")) }
                    return .success(index)
                }
                index += 1
            }
            return index > Self.maxChunkLineSize ? .failure(Refusal(status: .badRequest, reason: "chunk-size line too long")) : nil
        }
        switch found {
        case nil:
            // Scanned up to a trailing CR (judged with its next byte) or the end.
            let unscanned = buffer.readableBytesView.last == Byte.cr ? 1 : 0
            self.state = .chunkLine(scanned: max(0, buffer.readableBytes - unscanned))
            return nil
        case .failure(let refusal):
            return self.fail(refusal.status, refusal.reason)
        case .success(let end):
            let line = buffer.readSlice(length: end)!
            buffer.moveReaderIndex(forwardBy: 2)
            var blank = false
            let size = Self.chunkSize(line, sawBlank: &blank)
            if blank { self.sawChunkLineWhitespace = true }
            switch size {
            case .failure(let refusal):
                return self.fail(refusal.status, refusal.reason)
            case .success(0):
                self.state = .trailers(scanned: 0)
                return self.trailers(&buffer, scanned: 0)
            case .success(let size):
                let (total, overflow) = self.declaredBodySize.addingReportingOverflow(size)
                self.declaredBodySize = overflow ? .max : total
                guard self.declaredBodySize <= self.maxBodySize else {
                    return self.fail(.payloadTooLarge, "request body exceeds \(self.maxBodySize) bytes")
                }
                self.state = .chunkData(remaining: size)
                return self.next(&buffer)
            }
        }
    }

    /// RFC 9112 section 7.1: hex digits, then extensions (ignored, but held to their grammar:
    /// `*( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )`).
    private static func chunkSize(_ line: ByteBuffer, sawBlank: inout Bool) -> Result<Int, Refusal> {
        line.withUnsafeReadableBytes { bytes in
            var size = 0
            var index = 0
            while index < bytes.count, let digit = Self.hexValue(bytes[index]) {
                let (shifted, overflow) = size.multipliedReportingOverflow(by: 16)
                guard !overflow else { return .failure(Refusal(status: .payloadTooLarge, reason: "chunk size too large")) }
                size = shifted + digit
                index += 1
            }
            guard index > 0 else { return .failure(Refusal(status: .badRequest, reason: "invalid chunk size")) }
            guard index == bytes.count || bytes[index] == UInt8(ascii: ";") || Self.isBlank(bytes[index]) else {
                return .failure(Refusal(status: .badRequest, reason: "invalid chunk size"))
            }
            return Self.chunkExtensionsAreWellFormed(bytes, from: index, sawBlank: &sawBlank)
                ? .success(size) : .failure(Refusal(status: .badRequest, reason: "invalid chunk extension"))
        }
    }

    private static func chunkExtensionsAreWellFormed(_ bytes: UnsafeRawBufferPointer, from start: Int, sawBlank: inout Bool) -> Bool {
        var index = start
        func skipBlanks() {
            while index < bytes.count, Self.isBlank(bytes[index]) {
                sawBlank = true
                index += 1
            }
        }
        func token() -> Bool {
            let first = index
            while index < bytes.count, HTTPToken.isTokenCharacter(bytes[index]) { index += 1 }
            return index > first
        }
        func quotedString() -> Bool {
            index += 1  // the opening quote
            while index < bytes.count {
                switch bytes[index] {
                case UInt8(ascii: "\""):
                    index += 1
                    return true
                case UInt8(ascii: "\\"):
                    guard index + 1 < bytes.count, Self.isFieldByte(bytes[index + 1]) else { return false }
                    index += 2
                default:
                    guard Self.isFieldByte(bytes[index]) else { return false }
                    index += 1
                }
            }
            return false
        }
        while index < bytes.count {
            skipBlanks()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ";") else { return false }
            index += 1
            skipBlanks()
            guard token() else { return false }
            let afterName = index
            skipBlanks()
            if index < bytes.count, bytes[index] == UInt8(ascii: "=") {
                index += 1
                skipBlanks()
                guard index < bytes.count else { return false }
                guard bytes[index] == UInt8(ascii: "\"") ? quotedString() : token() else { return false }
            } else {
                // Blanks not followed by `=` must lead to the next `;`.
                index = afterName
                if index < bytes.count, !Self.isBlank(bytes[index]), bytes[index] != UInt8(ascii: ";") { return false }
            }
        }
        return true
    }

    private static func isBlank(_ byte: UInt8) -> Bool { byte == Byte.space || byte == Byte.tab }


    /// The trailer section after the last chunk: fields checked as a head's, then dropped.
    mutating func trailers(_ buffer: inout ByteBuffer, scanned: Int) -> Event? {
        if buffer.readableBytesView.starts(with: Self.crlf) {
            buffer.moveReaderIndex(forwardBy: 2)
            self.state = .head(scanned: 0, skipped: 0)
            return .end
        }
        if buffer.readableBytes < 2 {
            if let first = buffer.readableBytesView.first, first == Byte.lf { return self.fail(.badRequest, "a line ends with LF alone") }
            return nil
        }
        switch Self.findEmptyLine(in: buffer, from: scanned, limit: self.maxHeadSize) {
        case .malformed(let reason):
            return self.fail(.badRequest, reason)
        case .tooLarge:
            return self.fail(.requestHeaderFieldsTooLarge, "trailer section exceeds \(self.maxHeadSize) bytes")
        case .notYet(let scannedNow):
            self.state = .trailers(scanned: scannedNow)
            return nil
        case .found(let end):
            let section = buffer.readSlice(length: end)!
            buffer.moveReaderIndex(forwardBy: 2)
            let malformed = section.withUnsafeReadableBytes { bytes -> Refusal? in
                var start = 0
                while start < bytes.count {
                    let end = Self.lineEnd(bytes, from: start)
                    if case .failure(let refusal) = Self.field(UnsafeRawBufferPointer(rebasing: bytes[start..<end])) { return refusal }
                    start = end + 2
                }
                return nil
            }
            if let malformed { return self.fail(malformed.status, malformed.reason) }
            self.state = .head(scanned: 0, skipped: 0)
            return .end
        }
    }

    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }
}
