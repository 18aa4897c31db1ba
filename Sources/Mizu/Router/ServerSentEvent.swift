/// One server-sent event (the WHATWG HTML "text/event-stream" format), for ``Ctx/sse(_:keepAlive:)``.
public struct ServerSentEvent: Sendable, Equatable {
    /// The data; each line becomes one `data:` line, so newlines survive.
    public var data: String
    /// The event type (`event:`); nil is a plain "message".
    public var event: String?
    /// The event ID (`id:`), which a reconnecting browser sends back as `Last-Event-ID`.
    public var id: String?
    /// How long the browser waits before reconnecting, in milliseconds (`retry:`).
    public var retry: Int?

    /// An event with these fields (nil ones are left out).
    public init(data: String, event: String? = nil, id: String? = nil, retry: Int? = nil) {
        self.data = data
        self.event = event
        self.id = id
        self.retry = retry
    }

    /// The wire form, ending with the blank line that dispatches it. A line break inside
    /// `event` or `id` would start a field of its own, so those are cut at the first one (and
    /// an `id` with NUL is left out, as browsers ignore it).
    public var encoded: String {
        var text = ""
        if let event { text += "event: " + Self.firstLine(event) + "\n" }
        if let id, !id.contains("\0") { text += "id: " + Self.firstLine(id) + "\n" }
        if let retry, retry >= 0 { text += "retry: \(retry)\n" }
        var line = ""
        var previousWasCR = false
        for character in self.data.unicodeScalars {
            switch character {
            case "\r":
                text += "data: " + line + "\n"
                line = ""
                previousWasCR = true
                continue
            case "\n":
                if !previousWasCR {
                    text += "data: " + line + "\n"
                    line = ""
                }
            default:
                line.unicodeScalars.append(character)
            }
            previousWasCR = false
        }
        text += "data: " + line + "\n\n"
        return text
    }

    private static func firstLine(_ text: String) -> String {
        String(text.prefix { $0 != "\n" && $0 != "\r" && $0 != "\r\n" })
    }
}
