import Foundation
import MizuWebSocket
import NIOCore

/// One command of the standard set, read from a message's data. Every number a client sends
/// is checked here before anything uses it: an id is a number below 2^53 or a string of at
/// most 64 bytes, a count a non-negative integer (clamped by the caller), a position one that
/// a stream can reach; anything else is a `bad_request`, and nothing can trap.
struct CommandRequest {
    enum Name: String {
        case subscribe, unsubscribe, publish, history, presence
    }

    let name: Name
    /// The client's id as JSON (a number or a string), echoed in the reply; nil when absent.
    var id: ByteBuffer?
    var topic: String
    var since: Live.StreamPosition?
    /// `history` (subscribe) or `limit` (history).
    var count: Int?
    /// `data` (publish): one JSON value, byte for byte.
    var payload: Data?
    /// The whole data object.
    let raw: Data

    /// The longest string id echoed back.
    static let maxIDBytes = 64

    /// A failed parse: the id when it could be read, so the error can still be correlated.
    struct Failure: Error {
        var id: ByteBuffer?
    }

    /// Reads `data` (an object, already validated as JSON by the envelope's parser).
    static func parse(_ name: Name, _ data: Data) -> Result<CommandRequest, Failure> {
        data.withUnsafeBytes { raw in
            var request = CommandRequest(name: name, topic: "", raw: data)
            var topic: String?
            var valid = true
            var scanner = JSONScanner(raw)
            do {
                try scanner.forEachMember { (scanner: inout JSONScanner, key: String) throws(JSONScanner.Invalid) in
                    let range = try scanner.skipValue()
                    let value = UnsafeRawBufferPointer(rebasing: raw[range])
                    // `null` is the member left out (as JSON encoders write absent optionals).
                    guard !value.elementsEqual("null".utf8) else { return }
                    switch key {
                    case "id":
                        request.id = Self.id(value)
                        if request.id == nil { valid = false }
                    case "topic": topic = Self.string(value)
                    case "since":
                        request.since = try? JSONDecoder().decode(Live.StreamPosition.self, from: Data(value))
                        if request.since?.isPlausible != true { valid = false }
                    case "history" where name == .subscribe, "limit" where name == .history:
                        request.count = Self.count(value)
                        if request.count == nil { valid = false }
                    case "data" where name == .publish:
                        request.payload = Data(value)
                    default:
                        break
                    }
                }
            } catch {
                return .failure(Failure(id: nil))
            }
            guard valid, let topic, !topic.isEmpty else { return .failure(Failure(id: request.id)) }
            if name == .publish && request.payload == nil { return .failure(Failure(id: request.id)) }
            request.topic = topic
            return .success(request)
        }
    }

    /// A JSON string's value, or nil for anything else.
    private static func string(_ value: UnsafeRawBufferPointer) -> String? {
        var scanner = JSONScanner(value)
        return try? scanner.readString()
    }

    /// The id re-encoded: digits only (below 2^53), or a string of at most 64 bytes.
    private static func id(_ value: UnsafeRawBufferPointer) -> ByteBuffer? {
        var buffer = ByteBuffer()
        if let number = Self.count(value) {
            buffer.writeString(String(number))
            return buffer
        }
        guard let text = Self.string(value), text.utf8.count <= Self.maxIDBytes else { return nil }
        Live.Message.writeJSONString(text, into: &buffer)
        return buffer
    }

    /// A non-negative integer below 2^53 written as plain digits (no sign, fraction or exponent).
    private static func count(_ value: UnsafeRawBufferPointer) -> Int? {
        guard !value.isEmpty, value.count <= 16, value.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        var number = 0
        for digit in value { number = number * 10 + Int(digit - UInt8(ascii: "0")) }
        return number <= Int(Live.StreamPosition.maxOffset) ? number : nil
    }

    /// What a hook sees of a subscribe (or of a read of the topic).
    var subscribeRequest: Live.SubscribeRequest {
        Live.SubscribeRequest(topic: self.topic, since: self.since, history: self.count, data: self.raw)
    }
}
