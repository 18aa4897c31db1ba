import MizuWebSocket

/// One frame from the server, read strictly: every number checked before use (an offset past
/// 2^53 - 1, a negative or fractional one, is not a position), anything unexpected is
/// `.unreadable` and never traps. The forms are PROTOCOL.md's.
enum ServerFrame: Equatable {
    /// A message of a topic (with its position for a history topic).
    case message(LiveMessage)
    /// `{"topic":T,"recovered":false,"offset":O,"epoch":E}`: messages before the next one may be
    /// missing; the stream goes on after `position`.
    case notice(topic: String, position: StreamPosition)
    /// The reply to the request `id`.
    case reply(id: UInt64, Reply)
    /// Not JSON, not an object, no topic, a reply to nothing we sent: ignored (and counted).
    case unreadable

    enum Reply: Equatable {
        case result([UInt8])
        case error(code: String, message: String, temporary: Bool)
    }

    static func parse(_ bytes: [UInt8]) -> ServerFrame {
        bytes.withUnsafeBytes { raw in
            var topic: String?
            var data: Range<Int>?
            var offset: UInt64?
            var epoch: String?
            var recovered: Bool?
            var scanner = JSONScanner(raw)
            do {
                try scanner.forEachMember { (scanner: inout JSONScanner, key: String) throws(JSONScanner.Invalid) in
                    let range = try scanner.skipValue()
                    let value = UnsafeRawBufferPointer(rebasing: raw[range])
                    switch key {
                    case "topic": topic = JSONValue.string(value)
                    case "data": data = range
                    case "offset": offset = JSONValue.count(value)
                    case "epoch": epoch = JSONValue.string(value)
                    case "recovered": recovered = JSONValue.bool(value)
                    default: break
                    }
                }
                scanner.skipWhitespace()
                guard scanner.atEnd else { return .unreadable }
            } catch {
                return .unreadable
            }
            guard let topic else { return .unreadable }
            let position = offset.flatMap { offset in epoch.map { StreamPosition(offset: offset, epoch: $0) } }
            guard let data else {
                if recovered == false, let position { return .notice(topic: topic, position: position) }
                return .unreadable
            }
            if topic == "reply" {
                return Self.reply(UnsafeRawBufferPointer(rebasing: raw[data])) ?? .unreadable
            }
            return .message(LiveMessage(topic: topic, data: Array(raw[data]), position: position))
        }
    }

    /// `{"id":N,"result":R}` or `{"id":N,"error":{"code":C,"message":M,"temporary":B}}`.
    private static func reply(_ raw: UnsafeRawBufferPointer) -> ServerFrame? {
        var id: UInt64?
        var result: [UInt8]?
        var error: (code: String, message: String, temporary: Bool)?
        let valid = JSONValue.forEachMember(raw) { key, value in
            switch key {
            case "id": id = JSONValue.count(value)
            case "result": result = Array(value)
            case "error": error = Self.error(value)
            default: break
            }
        }
        guard valid else { return nil }
        guard let id else { return nil }
        if let result { return .reply(id: id, .result(result)) }
        if let error { return .reply(id: id, .error(code: error.code, message: error.message, temporary: error.temporary)) }
        return nil
    }

    private static func error(_ raw: UnsafeRawBufferPointer) -> (code: String, message: String, temporary: Bool)? {
        var code: String?
        var message = ""
        var temporary = false
        let valid = JSONValue.forEachMember(raw) { key, value in
            switch key {
            case "code": code = JSONValue.string(value)
            case "message": message = JSONValue.string(value) ?? ""
            case "temporary": temporary = JSONValue.bool(value) ?? false
            default: break
            }
        }
        guard valid else { return nil }
        return code.map { ($0, message, temporary) }
    }
}

/// Reading single JSON values the scanner has delimited.
enum JSONValue {
    static func string(_ value: UnsafeRawBufferPointer) -> String? {
        var scanner = JSONScanner(value)
        return try? scanner.readString()
    }

    static func bool(_ value: UnsafeRawBufferPointer) -> Bool? {
        if value.elementsEqual("true".utf8) { return true }
        if value.elementsEqual("false".utf8) { return false }
        return nil
    }

    /// A non-negative integer up to 2^53 - 1 written as plain digits; nil for anything else
    /// (a sign, a fraction, an exponent, more digits), so no server number can overflow.
    static func count(_ value: UnsafeRawBufferPointer) -> UInt64? {
        guard !value.isEmpty, value.count <= 16, value.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        var number: UInt64 = 0
        for digit in value { number = number * 10 + UInt64(digit - UInt8(ascii: "0")) }
        return number <= StreamPosition.maxOffset ? number : nil
    }

    /// Runs `member` for each member of the object `raw` (with the value's bytes); false when
    /// `raw` is not an object.
    static func forEachMember(_ raw: UnsafeRawBufferPointer, _ member: (String, UnsafeRawBufferPointer) -> Void) -> Bool {
        var scanner = JSONScanner(raw)
        do {
            try scanner.forEachMember { (scanner: inout JSONScanner, key: String) throws(JSONScanner.Invalid) in
                member(key, UnsafeRawBufferPointer(rebasing: raw[try scanner.skipValue()]))
            }
            return true
        } catch {
            return false
        }
    }

    /// Runs `element` for each element of the array `raw`; false when `raw` is not an array.
    static func forEachElement(_ raw: UnsafeRawBufferPointer, _ element: (UnsafeRawBufferPointer) -> Void) -> Bool {
        var scanner = JSONScanner(raw)
        do {
            try scanner.forEachElement { (scanner: inout JSONScanner) throws(JSONScanner.Invalid) in
                element(UnsafeRawBufferPointer(rebasing: raw[try scanner.skipValue()]))
            }
            return true
        } catch {
            return false
        }
    }
}
