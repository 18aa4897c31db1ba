import Foundation
import MizuWebSocket
import NIOConcurrencyHelpers
import NIOCore

extension ServerCore {
    /// Runs a message of the standard command set, in the session's hook order; false when
    /// `topic` names no command (the application's `onMessage` gets the message).
    func runCommand(_ session: Live.Session, _ topic: String, _ data: Data, _ commands: Live.Commands) async -> Bool {
        guard let name = CommandRequest.Name(rawValue: topic) else { return false }
        let request: CommandRequest
        switch CommandRequest.parse(name, data) {
        case .success(let parsed): request = parsed
        case .failure(let failure):
            Self.answer(session, id: failure.id, .failure(.badRequest), legacy: name == .subscribe || name == .unsubscribe)
            return true
        }
        switch name {
        case .subscribe: await self.runSubscribe(session, request, commands)
        case .unsubscribe: await self.runUnsubscribe(session, request, commands)
        case .publish: await self.runPublish(session, request, commands)
        case .history: await self.runHistory(session, request, commands)
        case .presence: await self.runPresence(session, request, commands)
        }
        return true
    }

    private func runSubscribe(_ session: Live.Session, _ request: CommandRequest, _ commands: Live.Commands) async {
        let topic = request.topic
        let id = request.id
        // Before the application's rule, as for publish and history: the code says why.
        guard topic.utf8.count <= self.options.maxTopicLength else {
            return Self.answer(session, id: id, .failure(.topicTooLong), legacy: true)
        }
        guard await commands.canSubscribe(session, request.subscribeRequest) else {
            return Self.answer(session, id: id, .failure(.notAllowed), legacy: true)
        }
        let told = AnswerFlag()
        let result: Live.SubscribeResult
        if request.since != nil || request.count != nil {
            await commands.willRead?(session)
            // The answer goes out first, ahead of the replay (the core queues it there).
            result = await self.subscribe(
                session, topic, since: request.since, latest: min(request.count ?? 0, max(0, commands.maxHistory)),
                reply: { result in
                    told.set()
                    guard let id else { return Self.subscribedAnswer(topic, result) }
                    return CommandReply.result(id: id) { CommandReply.writeSubscribed(topic, result, into: &$0) }
                },
                refused: { refusal in
                    told.set()
                    if let error = refusal.commandError { Self.answer(session, id: id, .failure(error), legacy: true) }
                })
        } else {
            switch session.subscribe(topic) {
            case .refused(let refusal):
                if let error = refusal.commandError { Self.answer(session, id: id, .failure(error), legacy: true) }
                return
            case .added, .alreadySubscribed, .recovering:
                result = Live.SubscribeResult(subscribed: true, recovered: false, top: nil, replayed: 0)
            }
            if let id { try? session.send(CommandReply.result(id: id) { CommandReply.writeSubscribed(topic, result, into: &$0) }) }
            told.set()
        }
        guard result.subscribed else {
            // Neither refused nor answered: the session closed meanwhile, or this topic's
            // recovery already runs (another caller's). A client without ids was never told.
            if !told.isSet, id != nil { Self.answer(session, id: id, .failure(session.isClosed ? .sessionClosed : .busy), legacy: false) }
            return
        }
        await commands.subscribed?(session, request.subscribeRequest)
    }

    private func runUnsubscribe(_ session: Live.Session, _ request: CommandRequest, _ commands: Live.Commands) async {
        // Only what the client could have asked for: the server's own subscriptions stay.
        guard await commands.canSubscribe(session, request.subscribeRequest) else {
            if request.id != nil { Self.answer(session, id: request.id, .failure(.notAllowed), legacy: false) }
            return
        }
        session.unsubscribe(request.topic)
        if let id = request.id { try? session.send(CommandReply.result(id: id) { CommandReply.writeTopic(request.topic, into: &$0) }) }
    }

    private func runPublish(_ session: Live.Session, _ request: CommandRequest, _ commands: Live.Commands) async {
        let topic = request.topic
        guard topic.utf8.count <= self.options.maxTopicLength else {
            return Self.answer(session, id: request.id, .failure(.topicTooLong), legacy: true)
        }
        let data = request.payload ?? Data()
        guard await commands.canPublish(session, topic, data) else {
            return Self.answer(session, id: request.id, .failure(.notAllowed), legacy: true)
        }
        let published = commands.publication?(session, topic, data) ?? data
        guard published.withUnsafeBytes({ JSONScanner.isValue($0) }) else {
            return Self.answer(session, id: request.id, .failure(.badRequest), legacy: true)
        }
        guard self.publish(topic, published) else {
            return Self.answer(session, id: request.id, .failure(.notSent), legacy: true)
        }
        if let id = request.id { try? session.send(CommandReply.result(id: id) { CommandReply.writeTopic(topic, into: &$0) }) }
    }

    private func runHistory(_ session: Live.Session, _ request: CommandRequest, _ commands: Live.Commands) async {
        let topic = request.topic
        // As for publish and subscribe: a topic becomes store keys and script arguments.
        guard topic.utf8.count <= self.options.maxTopicLength else {
            return Self.answer(session, id: request.id, .failure(.topicTooLong), legacy: false)
        }
        guard await commands.canSubscribe(session, request.subscribeRequest) else {
            return Self.answer(session, id: request.id, .failure(.notAllowed), legacy: false)
        }
        guard self.options.history?(topic) != nil else { return Self.answer(session, id: request.id, .failure(.notEnabled), legacy: false) }
        await commands.willRead?(session)
        let limit = min(request.count ?? commands.maxHistory, max(0, commands.maxHistory))
        do {
            let page = try await self.historyPage(topic, since: request.since, limit: limit)
            Self.answer(session, id: request.id, .success { CommandReply.writeHistory(topic, page, into: &$0) }, legacy: false)
        } catch {
            Self.answer(session, id: request.id, .failure(.unavailable), legacy: false)
        }
    }

    private func runPresence(_ session: Live.Session, _ request: CommandRequest, _ commands: Live.Commands) async {
        let topic = request.topic
        guard topic.utf8.count <= self.options.maxTopicLength else {
            return Self.answer(session, id: request.id, .failure(.topicTooLong), legacy: false)
        }
        guard await commands.canSubscribe(session, request.subscribeRequest) else {
            return Self.answer(session, id: request.id, .failure(.notAllowed), legacy: false)
        }
        guard let presence = self.options.presence, presence.topics(topic) else {
            return Self.answer(session, id: request.id, .failure(.notEnabled), legacy: false)
        }
        await commands.willRead?(session)
        do {
            let members = try await self.presence(topic)
            let limit = max(0, commands.maxPresenceMembers)
            Self.answer(session, id: request.id, .success { CommandReply.writePresence(topic, members, limit: limit, into: &$0) }, legacy: false)
        } catch {
            Self.answer(session, id: request.id, .failure(.unavailable), legacy: false)
        }
    }

    /// What a command answers.
    enum Answer {
        case success((inout ByteBuffer) -> Void)
        case failure(Live.CommandError)
    }

    /// Sends the answer: a reply (with the id, if any), or for a failed command without an id
    /// that the seed's ChatApp answered (`legacy`), `{"topic":"error","data":"<message>"}`.
    static func answer(_ session: Live.Session, id: ByteBuffer?, _ answer: Answer, legacy: Bool) {
        switch answer {
        case .success(let write):
            try? session.send(CommandReply.result(id: id, write))
        case .failure(let error):
            if id == nil && legacy { return session.tell(error) }
            try? session.send(CommandReply.error(id: id, error))
        }
    }

    /// The ChatApp's answer to a subscribe with `since` or `history` and no id:
    /// `{"topic":"subscribed","data":{"topic":T,"recovered":B,"offset":N,"epoch":E}}`.
    static func subscribedAnswer(_ topic: String, _ result: Live.SubscribeResult) -> Live.Message {
        var data = ByteBuffer()
        CommandReply.writeSubscribed(topic, result, into: &data)
        return Live.Message(topic: "subscribed", data: Data(data.readableBytesView))
    }
}

/// Set once, read after: whether a subscribe's answer was already given (from the core's
/// callbacks, which may run on the session's loop).
private final class AnswerFlag: Sendable {
    private let flag = NIOLockedValueBox(false)
    func set() { self.flag.withLockedValue { $0 = true } }
    var isSet: Bool { self.flag.withLockedValue { $0 } }
}
