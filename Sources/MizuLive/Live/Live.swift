import MizuHTTP
import MizuWebSocket

/// MizuLive's realtime server: WebSocket sessions, topic publish/subscribe, and hooks for
/// authentication and lifecycle. The Swift form of go-mizu's `live` package.
public enum Live {
}
