import NIOConcurrencyHelpers

/// Coalesces reads of a topic's members (an O(members) walk, with Redis a script on the
/// shared Redis): at most one read per topic runs at a time. A request that arrives while one
/// runs waits for the next, which starts when the current one ends and answers every request
/// that arrived meanwhile. So an answer never misses a change made before it was asked for
/// (a snapshot asked for after a leave event reflects it), and a thousand sessions asking at
/// once cost two reads, not a thousand. The one task that exists is the running read's.
final class PresenceReads: Sendable {
    typealias Answer = @Sendable (Result<[Live.PresenceMember], any Error>) -> Void
    typealias Read = @Sendable (String) async throws -> [Live.PresenceMember]

    private struct Topic {
        /// Answered by the read that runs now.
        var current: [Answer]
        /// Answered by the next read.
        var next: [Answer] = []
    }

    private let topics = NIOLockedValueBox<[String: Topic]>([:])

    /// Reads `topic`'s members with `read` for `answer`, sharing the read with every other
    /// request that waits for the same one (whose `read` is then not called).
    func members(_ topic: String, read: @escaping Read, _ answer: @escaping Answer) {
        let start = self.topics.withLockedValue { topics -> Bool in
            if topics[topic] != nil {
                topics[topic]!.next.append(answer)
                return false
            }
            topics[topic] = Topic(current: [answer])
            return true
        }
        if start { self.run(topic, read) }
    }

    /// As ``members(_:read:_:)``, awaited.
    func members(_ topic: String, read: @escaping Read) async throws -> [Live.PresenceMember] {
        try await withCheckedThrowingContinuation { continuation in
            self.members(topic, read: read) { continuation.resume(with: $0) }
        }
    }

    /// Topics with a read running or waiting (tests check nothing is left behind).
    var busyTopics: Int { self.topics.withLockedValue { $0.count } }

    private func run(_ topic: String, _ read: @escaping Read) {
        Task {
            let result: Result<[Live.PresenceMember], any Error>
            do { result = .success(try await read(topic)) } catch { result = .failure(error) }
            let (answers, again) = self.topics.withLockedValue { topics -> ([Answer], Bool) in
                guard var entry = topics[topic] else { return ([], false) }
                let answers = entry.current
                guard !entry.next.isEmpty else {
                    topics[topic] = nil
                    return (answers, false)
                }
                entry.current = entry.next
                entry.next = []
                topics[topic] = entry
                return (answers, true)
            }
            for answer in answers { answer(result) }
            if again { self.run(topic, read) }
        }
    }
}
