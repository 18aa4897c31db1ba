import MizuHTTP
import NIOCore

/// What only some connections hold, and only for a while: a partial frame, a pong owed, the
/// timers of a close, a ping, an idle check or a message begun, a stall watch, a deflater of
/// their own, output their peer leaves unread. Kept out of line so that an idle connection
/// pays one reference for all of it (about 150 bytes less per connection); the handler drops
/// the box once everything in it is gone. Confined to the handler's event loop, like the handler.
final class WebSocketHandlerExtras {
    var cumulation: ByteBuffer?
    var pendingPong: ByteBuffer?
    var ownDeflater: Deflater?
    var closeTimer: Scheduled<Void>?
    var stallWatch: WriteStallWatch?
    var pongDeadline: Scheduled<Void>?
    var idleCheck: Scheduled<Void>?
    var messageDeadline: Scheduled<Void>?
    /// What this connection last told its endpoint's ``ClientOutputLedger`` it holds.
    var heldOutput = 0

    var isEmpty: Bool {
        self.cumulation == nil && self.pendingPong == nil && self.ownDeflater == nil && self.closeTimer == nil
            && self.stallWatch == nil && self.pongDeadline == nil && self.idleCheck == nil && self.messageDeadline == nil
            && self.heldOutput == 0
    }
}
