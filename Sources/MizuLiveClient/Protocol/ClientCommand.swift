import MizuWebSocket
import NIOCore

/// The standard commands (PROTOCOL.md, "The standard command set (version 1)") as frames:
/// `{"topic":COMMAND,"data":{"id":ID,...}}`.
enum ClientCommand: Equatable {
    case subscribe(topic: String, since: StreamPosition?, history: Int?)
    case unsubscribe(topic: String)
    case publish(topic: String, data: [UInt8])
    case history(topic: String, since: StreamPosition?, limit: Int?)
    case presence(topic: String)
    /// Not a command: an application's own message (the seed's `onMessage`), never answered.
    case message(topic: String, data: [UInt8])

    var name: StaticString {
        switch self {
        case .subscribe: return "subscribe"
        case .unsubscribe: return "unsubscribe"
        case .publish: return "publish"
        case .history: return "history"
        case .presence: return "presence"
        case .message: return "message"
        }
    }

    /// Reads only: sending one again after a lost connection cannot do anything twice.
    var isIdempotent: Bool {
        switch self {
        case .publish, .message: return false
        default: return true
        }
    }

    func encode(id: UInt64) -> ByteBuffer {
        var buffer = ByteBuffer()
        if case .message(let topic, let data) = self {
            buffer.writeStaticString("{\"topic\":")
            JSONString.write(topic, into: &buffer)
            buffer.writeStaticString(",\"data\":")
            buffer.writeBytes(data)
            buffer.writeStaticString("}")
            return buffer
        }
        buffer.writeStaticString("{\"topic\":\"")
        buffer.writeStaticString(self.name)
        buffer.writeString("\",\"data\":{\"id\":\(id),\"topic\":")
        switch self {
        case .subscribe(let topic, let since, let history):
            JSONString.write(topic, into: &buffer)
            Self.writePosition(since, into: &buffer)
            if let history { buffer.writeString(",\"history\":\(max(0, history))") }
        case .unsubscribe(let topic), .presence(let topic):
            JSONString.write(topic, into: &buffer)
        case .publish(let topic, let data):
            JSONString.write(topic, into: &buffer)
            buffer.writeStaticString(",\"data\":")
            buffer.writeBytes(data)
        case .history(let topic, let since, let limit):
            JSONString.write(topic, into: &buffer)
            Self.writePosition(since, into: &buffer)
            if let limit { buffer.writeString(",\"limit\":\(max(0, limit))") }
        case .message:
            break
        }
        buffer.writeStaticString("}}")
        return buffer
    }

    private static func writePosition(_ position: StreamPosition?, into buffer: inout ByteBuffer) {
        guard let position else { return }
        buffer.writeString(",\"since\":{\"offset\":\(position.offset),\"epoch\":")
        JSONString.write(position.epoch, into: &buffer)
        buffer.writeStaticString("}")
    }
}
