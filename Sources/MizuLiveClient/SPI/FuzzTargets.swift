/// Entry point for the libFuzzer target in Fuzz/: what a server's bytes go through in the
/// client. Not API: reachable only through `@_spi(Fuzzing) import MizuLiveClient`.
@_spi(Fuzzing) public enum LiveClientFuzzTargets {
    /// A server frame, then (when it is a reply) its result read as each command's answer, and
    /// any message's position fed to a stream tracker: nothing a server sends may trap.
    public static func serverFrame(_ bytes: UnsafeRawBufferPointer) {
        let frame = ServerFrame.parse(Array(bytes))
        var tracker = StreamTracker(after: StreamPosition(offset: StreamPosition.maxOffset - 1, epoch: "e"))
        switch frame {
        case .reply(_, .result(let result)):
            if let subscribed = CommandResults.subscribed(result) {
                _ = tracker.subscribed(recovered: subscribed.recovered, at: subscribed.position, askedAfter: nil, history: 1)
            }
            _ = CommandResults.history(result, topic: "t")
            _ = CommandResults.presence(result)
        case .message(let message):
            _ = tracker.receive(message.position)
            _ = tracker.receive(message.position)
        case .notice(_, let position):
            tracker.notice(position)
            _ = tracker.receive(StreamPosition(offset: position.offset, epoch: position.epoch))
        case .reply, .unreadable:
            break
        }
    }
}
