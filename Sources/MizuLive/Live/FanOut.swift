import MizuWebSocket
import NIOCore

/// One message to a topic's live subscribers, the only place that does it (plain publishes
/// from a snapshot, history publishes under the topic's lock): the frame is built once, plus
/// one compressed frame per shared window size in use, and handed to each event loop once.
enum FanOut {
    /// Returns the subscribers reached and the (uncompressed) frame's size.
    static func send(
        _ payload: ByteBuffer, to buckets: some Sequence<(eventLoop: any EventLoop, connections: [WebSocketConnection])>,
        sharedWindows: some Collection<Int>, compression: PerMessageDeflateConfiguration
    ) -> (subscribers: Int, frameSize: Int) {
        let frame = BroadcastFrame(text: payload, sharedWindows: sharedWindows, compression: compression)
        var subscribers = 0
        for (eventLoop, connections) in buckets {
            subscribers += connections.count
            // One call into the protocol layer per event loop, not one per subscriber.
            eventLoop.execute { frame.write(to: connections) }
        }
        return (subscribers, frame.size)
    }
}
