import NIOCore

/// Reads RESP2 values from bytes that may arrive split anywhere. Every size is bounded, so
/// a broken or hostile peer costs at most the limits.
struct RESPParser {
    /// Why the bytes cannot be RESP.
    enum Error: Swift.Error, Equatable, CustomStringConvertible {
        case unknownType(UInt8)
        case invalidLength
        case invalidInteger
        case lineTooLong
        case tooLarge
        case tooDeep
        case missingTerminator

        var description: String {
            switch self {
            case .unknownType(let byte):
                let shown = (0x20..<0x7F).contains(byte) ? " ('\(Character(Unicode.Scalar(byte)))')" : ""
                return "a value starting with byte 0x\(String(byte, radix: 16))\(shown) (is this a Redis server?)"
            case .invalidLength: return "an invalid length"
            case .invalidInteger: return "an invalid integer"
            case .lineTooLong: return "a line over the limit"
            case .tooLarge: return "a value over the size limit"
            case .tooDeep: return "arrays nested too deep"
            case .missingTerminator: return "a missing CRLF"
            }
        }
    }

    var maxBulkLength = 16 * 1024 * 1024
    var maxArrayLength = 1024 * 1024
    var maxLineLength = 64 * 1024
    var maxDepth = 16

    /// The next complete value at the front of `buffer`, consuming it; nil when more bytes
    /// are needed (nothing is consumed then).
    func next(_ buffer: inout ByteBuffer) throws(Error) -> RESPValue? {
        var cursor = buffer.readerIndex
        guard let value = try self.parse(buffer, at: &cursor, depth: 0) else { return nil }
        buffer.moveReaderIndex(to: cursor)
        return value
    }

    private func parse(_ buffer: ByteBuffer, at cursor: inout Int, depth: Int) throws(Error) -> RESPValue? {
        guard depth <= self.maxDepth else { throw .tooDeep }
        guard let type = buffer.getInteger(at: cursor, as: UInt8.self) else { return nil }
        var position = cursor + 1
        guard let line = try self.line(buffer, at: &position) else { return nil }
        let value: RESPValue
        switch type {
        case UInt8(ascii: "+"):
            value = .simpleString(line)
        case UInt8(ascii: "-"):
            value = .error(line)
        case UInt8(ascii: ":"):
            guard let number = Int64(line) else { throw .invalidInteger }
            value = .integer(number)
        case UInt8(ascii: "$"):
            guard let length = Int(line), length >= -1 else { throw .invalidLength }
            if length == -1 {
                value = .bulkString(nil)
                break
            }
            guard length <= self.maxBulkLength else { throw .tooLarge }
            guard buffer.writerIndex - position >= length + 2 else { return nil }
            guard buffer.getInteger(at: position + length, as: UInt16.self) == 0x0D0A else { throw .missingTerminator }
            value = .bulkString(buffer.getSlice(at: position, length: length))
            position += length + 2
        case UInt8(ascii: "*"):
            guard let count = Int(line), count >= -1 else { throw .invalidLength }
            if count == -1 {
                value = .array(nil)
                break
            }
            guard count <= self.maxArrayLength else { throw .tooLarge }
            var elements: [RESPValue] = []
            elements.reserveCapacity(min(count, 64))
            for _ in 0..<count {
                guard let element = try self.parse(buffer, at: &position, depth: depth + 1) else { return nil }
                elements.append(element)
            }
            value = .array(elements)
        default:
            throw .unknownType(type)
        }
        cursor = position
        return value
    }

    /// The text up to CRLF at `position`, moving past the CRLF; nil when it has not arrived.
    private func line(_ buffer: ByteBuffer, at position: inout Int) throws(Error) -> String? {
        let available = buffer.writerIndex - position
        let view = buffer.readableBytesView
        let start = view.startIndex + (position - buffer.readerIndex)
        let end = view.startIndex + (position - buffer.readerIndex) + min(available, self.maxLineLength + 2)
        guard let carriageReturn = view[start..<end].firstIndex(of: 0x0D) else {
            if available > self.maxLineLength + 1 { throw .lineTooLong }
            return nil
        }
        guard carriageReturn + 1 < view.endIndex else { return nil }
        guard view[carriageReturn + 1] == 0x0A else { throw .missingTerminator }
        let text = String(decoding: view[start..<carriageReturn], as: UTF8.self)
        position += carriageReturn + 2 - start
        return text
    }
}
