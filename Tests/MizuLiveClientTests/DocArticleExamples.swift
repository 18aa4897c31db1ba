// The code of the MizuLiveClient article (Sources/MizuLiveClient/MizuLiveClient.docc),
// compiled here: scripts/docs.sh checks that every Swift block of an article appears in one
// of the DocArticleExamples files, line for line. Keep both in step.
import MizuLiveClient

struct ClientArticleExample {
    func chat(token: @escaping @Sendable () async throws -> String?) async throws {
        var configuration = LiveClient.Configuration()
        configuration.token = token                      // asked again before every attempt
        let client = LiveClient(url: "wss://chat.example.com/ws", configuration: configuration)
        try await client.connect()
        let room = try await client.subscribe("chat:general", from: .latest(50))
        try await client.publish("chat:general", json: #"{"text":"hello"}"#)
        for try await event in room.events {
            switch event {
            case .message(let message): print(message.json)
            case .missed(let resumesAfter): print("messages were lost before \(String(describing: resumesAfter))")
            }
        }
    }
}
