// The code of the MizuWebSocket article (Sources/MizuWebSocket/MizuWebSocket.docc), compiled
// here: scripts/docs.sh checks that every Swift block of an article appears in one of the
// DocArticleExamples files, line for line. Keep both in step.
import MizuWebSocket

struct WebSocketArticleExample {
    func echoHandler() -> WebSocketHandler {
        WebSocketHandler(events: WebSocketEvents(onMessage: { connection, message in
            connection.send(message)                      // echo
        }))
    }
}
