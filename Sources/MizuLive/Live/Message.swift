import Foundation
import MizuWebSocket
import NIOCore

extension Live {
    /// The envelope every live message travels in: `{"topic":"T","data":D}`, where `data`
    /// is raw JSON kept byte for byte.
    public struct Message: Sendable, Equatable {
        /// The topic.
        public var topic: String
        /// The payload as raw JSON bytes; empty means none.
        public var data: Data

        /// A message for `topic` carrying the raw JSON `data`.
        public init(topic: String, data: Data = Data()) {
            self.topic = topic
            self.data = data
        }

        /// A message whose data is `value` encoded as JSON.
        public init(topic: String, encoding value: some Encodable) throws {
            self.init(topic: topic, data: try JSONEncoder().encode(value))
        }

        /// Whether `data` can go out as a message's data: empty, or one JSON value in valid
        /// UTF-8 nested at most 128 deep. ``Server/publish(_:_:)`` drops anything else; an
        /// application that wraps a client's data (adding a level) asks here first, to tell
        /// the client its message is bad rather than that it was not sent.
        public static func isValidData(_ data: Data) -> Bool {
            data.isEmpty || data.withUnsafeBytes { JSONScanner.isValue($0) }
        }

        /// Parses a client's envelope: a JSON object with a string `topic`; `data` may be
        /// any JSON value, or absent. Nil for anything else.
        public static func parse(_ bytes: some ContiguousBytes) -> Message? {
            bytes.withUnsafeBytes { Self.parse($0, utf8Validated: false) }
        }

        /// As ``parse(_:)``, over bytes in place; `utf8Validated` skips the UTF-8 check for
        /// bytes already checked (a text frame's payload).
        static func parse(_ raw: UnsafeRawBufferPointer, utf8Validated: Bool) -> Message? {
            if !utf8Validated {
                var validator = UTF8Validator()
                guard validator.feed(raw), validator.isComplete else { return nil }
            }
            var scanner = JSONScanner(raw)
            var topic: String?
            var dataRange: Range<Int>?
            do {
                try scanner.forEachMember { (scanner: inout JSONScanner, key: String) throws(JSONScanner.Invalid) in
                    switch key {
                    case "topic":
                        scanner.skipWhitespace()
                        topic = try scanner.readString()  // a topic that is not a string is a bad envelope
                    case "data":
                        dataRange = try scanner.skipValue()
                    default:
                        _ = try scanner.skipValue()
                    }
                }
                scanner.skipWhitespace()
                guard scanner.atEnd else { return nil }
            } catch {
                return nil
            }
            guard let topic else { return nil }
            let data = dataRange.map { Data(UnsafeRawBufferPointer(rebasing: raw[$0])) } ?? Data()
            return Message(topic: topic, data: data)
        }

        /// The wire form, `{"topic":...,"data":...}`, empty fields left out (as Go's omitempty).
        public func encoded() -> ByteBuffer {
            var buffer = ByteBuffer()
            Self.encode(topic: self.topic, data: self.data, into: &buffer)
            return buffer
        }

        static func encode(topic: String, data: some Collection<UInt8>, into buffer: inout ByteBuffer) {
            buffer.reserveCapacity(minimumWritableBytes: topic.utf8.count + data.count + 22)
            buffer.writeStaticString("{")
            if !topic.isEmpty {
                buffer.writeStaticString("\"topic\":")
                Self.writeJSONString(topic, into: &buffer)
            }
            if !data.isEmpty {
                buffer.writeStaticString(topic.isEmpty ? "\"data\":" : ",\"data\":")
                buffer.writeBytes(data)
            }
            buffer.writeStaticString("}")
        }

        /// As above, with the message's place in a history topic's stream:
        /// `{"topic":...,"data":...,"offset":N,"epoch":"E"}`.
        static func encode(topic: String, data: some Collection<UInt8>, position: StreamPosition, into buffer: inout ByteBuffer) {
            Self.encode(topic: topic, data: data, into: &buffer)
            buffer.moveWriterIndex(to: buffer.writerIndex - 1)  // reopen the object
            buffer.writeString(",\"offset\":\(position.offset),\"epoch\":")
            Self.writeJSONString(position.epoch, into: &buffer)
            buffer.writeStaticString("}")
        }

        /// A history topic's notice that messages before the next one may be missing (the
        /// history no longer holds them, or a new epoch began): `{"topic":...,"recovered":false,
        /// "offset":N,"epoch":"E"}`; the stream goes on after that position.
        static func encodeNotice(topic: String, resumeAfter position: StreamPosition, into buffer: inout ByteBuffer) {
            buffer.writeStaticString("{\"topic\":")
            Self.writeJSONString(topic, into: &buffer)
            buffer.writeString(",\"recovered\":false,\"offset\":\(position.offset),\"epoch\":")
            Self.writeJSONString(position.epoch, into: &buffer)
            buffer.writeStaticString("}")
        }

        /// RFC 8259 section 7 escaping (``JSONString``, which the client shares).
        static func writeJSONString(_ string: String, into buffer: inout ByteBuffer) {
            JSONString.write(string, into: &buffer)
        }
    }
}
