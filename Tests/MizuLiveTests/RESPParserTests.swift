@testable import MizuLive
import NIOCore
import Testing

@Suite(.timeLimit(.minutes(10))) struct RESPParserTests {
    static let stream = "+OK\r\n-ERR wrong password\r\n:42\r\n:-7\r\n$5\r\nhello\r\n$0\r\n\r\n$-1\r\n*-1\r\n*0\r\n"
        + "*3\r\n$7\r\nmessage\r\n$4\r\nchat\r\n$9\r\n{\"a\":\r\n1}\r\n*2\r\n*1\r\n:1\r\n+nested\r\n"

    static let expected: [RESPValue] = [
        .simpleString("OK"), .error("ERR wrong password"), .integer(42), .integer(-7),
        .bulkString(ByteBuffer(string: "hello")), .bulkString(ByteBuffer()), .bulkString(nil), .array(nil), .array([]),
        .array([.bulkString(ByteBuffer(string: "message")), .bulkString(ByteBuffer(string: "chat")),
                .bulkString(ByteBuffer(string: "{\"a\":\r\n1}"))]),
        .array([.array([.integer(1)]), .simpleString("nested")]),
    ]

    func parseAll(_ chunks: [ArraySlice<UInt8>]) throws -> [RESPValue] {
        let parser = RESPParser()
        var buffer = ByteBuffer()
        var values: [RESPValue] = []
        for chunk in chunks {
            buffer.writeBytes(chunk)
            while let value = try parser.next(&buffer) { values.append(value) }
        }
        #expect(buffer.readableBytes == 0)
        return values
    }

    /// As the connection reads: values are built only once ``RESPParser/hasCompleteValue`` says
    /// one has arrived whole.
    func parseAllResuming(_ chunks: [ArraySlice<UInt8>]) throws -> [RESPValue] {
        let parser = RESPParser()
        var progress = RESPParser.Progress()
        var buffer = ByteBuffer()
        var values: [RESPValue] = []
        for chunk in chunks {
            buffer.writeBytes(chunk)
            while try parser.hasCompleteValue(buffer, progress: &progress) {
                values.append(try #require(try parser.next(&buffer)))
            }
        }
        #expect(buffer.readableBytes == 0)
        return values
    }

    @Test func checksAValueArrivingInPiecesOnlyOnce() throws {
        let bytes = Array(Self.stream.utf8)
        for split in 1..<bytes.count {
            #expect(try self.parseAllResuming([bytes[..<split], bytes[split...]]) == Self.expected, "split at \(split)")
        }
        #expect(try self.parseAllResuming(bytes.map { [$0][...] }) == Self.expected, "one byte at a time")
        // A long reply in two reads: the bytes checked by the first are never read again (it
        // was re-parsed from its start on every read: quadratic in the reads of one reply).
        var text = "*1000\r\n"
        for index in 0..<1000 { text += "$\(String(index).utf8.count)\r\n\(index)\r\n" }
        let reply = Array(text.utf8)
        let parser = RESPParser()
        var progress = RESPParser.Progress()
        var buffer = ByteBuffer(bytes: reply[..<(reply.count / 2)])
        #expect(try !parser.hasCompleteValue(buffer, progress: &progress))
        buffer.setBytes(Array(repeating: UInt8(ascii: "?"), count: reply.count / 4), at: buffer.readerIndex)
        buffer.writeBytes(reply[(reply.count / 2)...])
        #expect(try parser.hasCompleteValue(buffer, progress: &progress), "resumed where it stopped")
        var fresh = RESPParser.Progress()
        #expect(throws: RESPParser.Error.unknownType(UInt8(ascii: "?"))) { try parser.hasCompleteValue(buffer, progress: &fresh) }
    }

    @Test func parsesEveryTypeInOnePiece() throws {
        #expect(try self.parseAll([Array(Self.stream.utf8)[...]]) == Self.expected)
    }

    @Test func parsesTheSameWhateverTheSplit() throws {
        let bytes = Array(Self.stream.utf8)
        for split in 1..<bytes.count {
            #expect(try self.parseAll([bytes[..<split], bytes[split...]]) == Self.expected, "split at \(split)")
        }
        #expect(try self.parseAll(bytes.map { [$0][...] }) == Self.expected, "one byte at a time")
    }

    @Test func refusesMalformedInput() {
        let cases: [(String, RESPParser.Error)] = [
            ("?x\r\n", .unknownType(UInt8(ascii: "?"))),
            (":12a\r\n", .invalidInteger),
            ("$-2\r\n", .invalidLength),
            ("$abc\r\n", .invalidLength),
            ("$3\r\nabcX\n", .missingTerminator),
            ("+OK\rX", .missingTerminator),
            ("*-5\r\n", .invalidLength),
        ]
        for (text, error) in cases {
            var buffer = ByteBuffer(string: text)
            #expect(throws: error, "\(text.debugDescription)") { try RESPParser().next(&buffer) }
            var progress = RESPParser.Progress()
            #expect(throws: error, "\(text.debugDescription)") { try RESPParser().hasCompleteValue(buffer, progress: &progress) }
        }
    }

    @Test func enforcesItsLimits() {
        var parser = RESPParser()
        parser.maxBulkLength = 10
        parser.maxArrayLength = 3
        parser.maxLineLength = 8
        parser.maxDepth = 2
        for (text, error) in [("$11\r\n", RESPParser.Error.tooLarge), ("*4\r\n", .tooLarge),
                              ("+0123456789", .lineTooLong), ("*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", .tooDeep)] {
            var buffer = ByteBuffer(string: text)
            #expect(throws: error, "\(text.debugDescription)") { try parser.next(&buffer) }
            var progress = RESPParser.Progress()
            #expect(throws: error, "\(text.debugDescription)") { try parser.hasCompleteValue(buffer, progress: &progress) }
        }
    }

    @Test func writesCommandsAsArraysOfBulkStrings() throws {
        var buffer = ByteBuffer()
        RESPValue.writeCommand(["SUBSCRIBE", "mizu:chat"], into: &buffer)
        RESPValue.writeCommand(["PUBLISH", "mizu:chat"], payload: ByteBuffer(string: "{\"x\":\"é\"}"), into: &buffer)
        #expect(String(buffer: buffer) == "*2\r\n$9\r\nSUBSCRIBE\r\n$9\r\nmizu:chat\r\n*3\r\n$7\r\nPUBLISH\r\n$9\r\nmizu:chat\r\n$10\r\n{\"x\":\"é\"}\r\n")
        let parser = RESPParser()
        #expect(try parser.next(&buffer) == .array([.bulkString(ByteBuffer(string: "SUBSCRIBE")), .bulkString(ByteBuffer(string: "mizu:chat"))]))
        #expect(try parser.next(&buffer) == .array([.bulkString(ByteBuffer(string: "PUBLISH")), .bulkString(ByteBuffer(string: "mizu:chat")),
                                                     .bulkString(ByteBuffer(string: "{\"x\":\"é\"}"))]))
    }
}
