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
    /// are needed (nothing is consumed then). For a value that arrives in many reads, see
    /// ``hasCompleteValue(_:progress:)``.
    func next(_ buffer: inout ByteBuffer) throws(Error) -> RESPValue? {
        var cursor = buffer.readerIndex
        guard let value = try self.parse(buffer, at: &cursor, depth: 0) else { return nil }
        buffer.moveReaderIndex(to: cursor)
        return value
    }

    /// How far ``hasCompleteValue(_:progress:)`` has checked the value at the front of a
    /// buffer: where it stopped, and the elements still owed by each array it is inside.
    struct Progress {
        fileprivate var readerIndex = -1
        fileprivate var cursor = 0
        fileprivate var owed: [Int] = []
    }

    /// Whether the value at the front of `buffer` has arrived whole, checked from where the
    /// last call stopped (the same limits and errors as ``next(_:)``): a reply of a million
    /// elements arriving in a thousand reads is walked once, not a thousand times over.
    func hasCompleteValue(_ buffer: ByteBuffer, progress: inout Progress) throws(Error) -> Bool {
        if progress.readerIndex != buffer.readerIndex {
            // A new value (or the buffer was compacted): start at its front.
            progress = Progress(readerIndex: buffer.readerIndex, cursor: buffer.readerIndex, owed: [1])
        }
        while true {
            while progress.owed.last == 0 { progress.owed.removeLast() }
            guard !progress.owed.isEmpty else { return true }
            guard progress.owed.count - 1 <= self.maxDepth else { throw .tooDeep }
            var position = progress.cursor
            guard let element = try self.element(buffer, at: &position) else { return false }
            progress.owed[progress.owed.count - 1] -= 1
            if case .arrayHeader(let count?) = element, count > 0 { progress.owed.append(count) }
            progress.cursor = position
        }
    }

    /// One element as it appears on the wire: an array is its header, its elements follow.
    private enum Element {
        case value(RESPValue)
        case arrayHeader(count: Int?)
    }

    /// The element at `position`, moving past it; nil when it has not arrived whole.
    private func element(_ buffer: ByteBuffer, at position: inout Int) throws(Error) -> Element? {
        guard let type = buffer.getInteger(at: position, as: UInt8.self) else { return nil }
        var next = position + 1
        guard let line = try self.line(buffer, at: &next) else { return nil }
        let element: Element
        switch type {
        case UInt8(ascii: "+"):
            element = .value(.simpleString(line))
        case UInt8(ascii: "-"):
            element = .value(.error(line))
        case UInt8(ascii: ":"):
            guard let number = Int64(line) else { throw .invalidInteger }
            element = .value(.integer(number))
        case UInt8(ascii: "$"):
            guard let length = Int(line), length >= -1 else { throw .invalidLength }
            if length == -1 {
                element = .value(.bulkString(nil))
                break
            }
            guard length <= self.maxBulkLength else { throw .tooLarge }
            guard buffer.writerIndex - next >= length + 2 else { return nil }
            guard buffer.getInteger(at: next + length, as: UInt16.self) == 0x0D0A else { throw .missingTerminator }
            element = .value(.bulkString(buffer.getSlice(at: next, length: length)))
            next += length + 2
        case UInt8(ascii: "*"):
            guard let count = Int(line), count >= -1 else { throw .invalidLength }
            guard count <= self.maxArrayLength else { throw .tooLarge }
            element = .arrayHeader(count: count == -1 ? nil : count)
        default:
            throw .unknownType(type)
        }
        position = next
        return element
    }

    private func parse(_ buffer: ByteBuffer, at cursor: inout Int, depth: Int) throws(Error) -> RESPValue? {
        guard depth <= self.maxDepth else { throw .tooDeep }
        var position = cursor
        guard let element = try self.element(buffer, at: &position) else { return nil }
        switch element {
        case .value(let value):
            cursor = position
            return value
        case .arrayHeader(nil):
            cursor = position
            return .array(nil)
        case .arrayHeader(let count?):
            var elements: [RESPValue] = []
            elements.reserveCapacity(min(count, 64))
            for _ in 0..<count {
                guard let element = try self.parse(buffer, at: &position, depth: depth + 1) else { return nil }
                elements.append(element)
            }
            cursor = position
            return .array(elements)
        }
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
