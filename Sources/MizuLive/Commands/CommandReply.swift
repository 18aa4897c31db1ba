import Foundation
import NIOCore

/// The answers of the standard command set: `{"topic":"reply","data":{"id":...,"result":{...}}}`
/// or `{"topic":"reply","data":{"id":...,"error":{...}}}` (`id` left out when the command had
/// none). Results are written straight into the buffer, members in a fixed order.
enum CommandReply {
    static func result(id: ByteBuffer?, _ writeResult: (inout ByteBuffer) -> Void) -> Live.Message {
        Self.reply(id: id) { data in
            data.writeStaticString("\"result\":")
            writeResult(&data)
        }
    }

    static func error(id: ByteBuffer?, _ error: Live.CommandError) -> Live.Message {
        Self.reply(id: id) { data in
            data.writeStaticString("\"error\":{\"code\":")
            Live.Message.writeJSONString(error.code, into: &data)
            data.writeStaticString(",\"message\":")
            Live.Message.writeJSONString(error.message, into: &data)
            data.writeString(",\"temporary\":\(error.temporary)}")
        }
    }

    private static func reply(id: ByteBuffer?, _ body: (inout ByteBuffer) -> Void) -> Live.Message {
        var data = ByteBuffer()
        data.writeStaticString("{")
        if var id {
            data.writeStaticString("\"id\":")
            data.writeBuffer(&id)
            data.writeStaticString(",")
        }
        body(&data)
        data.writeStaticString("}")
        return Live.Message(topic: "reply", data: Data(data.readableBytesView))
    }

    /// `{"topic":T,"recovered":B,"offset":O,"epoch":E}` (no position for a topic
    /// without history): a subscribe's result, and the ChatApp's `subscribed` answer.
    static func writeSubscribed(_ topic: String, _ result: Live.SubscribeResult, into data: inout ByteBuffer) {
        data.writeStaticString("{\"topic\":")
        Live.Message.writeJSONString(topic, into: &data)
        data.writeString(",\"recovered\":\(result.recovered)")
        if let top = result.top {
            data.writeString(",\"offset\":\(top.offset),\"epoch\":")
            Live.Message.writeJSONString(top.epoch, into: &data)
        }
        data.writeStaticString("}")
    }

    /// `{"topic":T}`: the result of unsubscribe and publish.
    static func writeTopic(_ topic: String, into data: inout ByteBuffer) {
        data.writeStaticString("{\"topic\":")
        Live.Message.writeJSONString(topic, into: &data)
        data.writeStaticString("}")
    }

    /// `{"topic":T,"publications":[{"data":D,"offset":O,"epoch":E},...],"offset":O,"epoch":E,"complete":B}`.
    static func writeHistory(_ topic: String, _ page: Live.HistoryPage, into data: inout ByteBuffer) {
        data.writeStaticString("{\"topic\":")
        Live.Message.writeJSONString(topic, into: &data)
        data.writeStaticString(",\"publications\":[")
        for (index, publication) in page.publications.enumerated() {
            data.writeStaticString(index == 0 ? "{\"data\":" : ",{\"data\":")
            data.writeBytes(publication.data.isEmpty ? Data("null".utf8) : publication.data)
            data.writeString(",\"offset\":\(publication.position.offset),\"epoch\":")
            Live.Message.writeJSONString(publication.position.epoch, into: &data)
            data.writeStaticString("}")
        }
        data.writeString("],\"offset\":\(page.top.offset),\"epoch\":")
        Live.Message.writeJSONString(page.top.epoch, into: &data)
        data.writeString(",\"complete\":\(page.isComplete)}")
    }

    /// `{"topic":T,"members":[...],"truncated":B}`: at most `limit` members, the earliest first.
    static func writePresence(_ topic: String, _ members: [Live.PresenceMember], limit: Int, into data: inout ByteBuffer) {
        data.writeStaticString("{\"topic\":")
        Live.Message.writeJSONString(topic, into: &data)
        data.writeStaticString(",\"members\":[")
        for (index, member) in members.prefix(limit).enumerated() {
            if index > 0 { data.writeStaticString(",") }
            member.encode(into: &data)
        }
        data.writeString("],\"truncated\":\(members.count > limit)}")
    }
}
