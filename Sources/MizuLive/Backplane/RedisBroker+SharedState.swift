import Foundation
import MizuHTTP
import MizuWebSocket
import NIOCore

/// History in a Redis stream per topic (`<prefix>history:<topic>`, capped, expiring) with its
/// epoch and last offset in a hash (`<prefix>history-meta:<topic>`); presence in a hash of
/// members and a sorted set of their expiry times (`<prefix>presence:<topic>`,
/// `<prefix>presence-expiry:<topic>`). Each step is one Lua script, so it is atomic in Redis.
extension Live.RedisBroker: SharedState {
    /// Appends, trims, and publishes `h:<offset>:<epoch>\n<data>` on the topic's channel (by
    /// `command`: PUBLISH, or SPUBLISH on a cluster, where only a write script reaches the
    /// slot's owner: a demoted primary answers a plain SPUBLISH with 0 and no redirect);
    /// answers the offset.
    ///
    /// KEYS: the stream, its meta hash (epoch `e`, top offset `o`), this node's publisher key
    /// (the last `sequence` of its publishes to the topic applied: one written again after a
    /// lost link, already applied, is skipped, answered 0, so a replay never adds a message
    /// twice). Only keys that exist together are declared (the channel is an argument): during
    /// a slot migration a primary serves a command whose keys are all there, and refuses
    /// (TRYAGAIN) one with some of them missing.
    ///
    /// `floorEpoch`/`floorOffset`: the highest position this node delivered (``StreamFloors``):
    /// a stream of that epoch whose top is below it lost messages (a promoted replica), and a
    /// new epoch begins. `before`, when not 0, is the number of the topic's previous publish:
    /// while it is not applied this one is refused (`ORDER`, sent again after it; see
    /// ``PublishOrder``). It is the last argument, so a held command's can be cleared in place.
    static let publishScript = """
        local channel, data, size, ttl, newEpoch, metaTTL, publisherTTL, sequence, command, floorEpoch, floorOffset, before = unpack(ARGV)
        local last = redis.call('GET', KEYS[3])
        if last and tonumber(last) >= tonumber(sequence) then return 0 end
        if tonumber(before) ~= 0 and (not last or tonumber(last) < tonumber(before)) then
          return redis.error_reply('ORDER publish ' .. sequence .. ' waits for ' .. before)
        end
        local epoch = redis.call('HGET', KEYS[2], 'e')
        if epoch and epoch == floorEpoch and tonumber(redis.call('HGET', KEYS[2], 'o')) < tonumber(floorOffset) then
          epoch = false
        end
        if not epoch then
          epoch = newEpoch
          redis.call('DEL', KEYS[1])
          redis.call('HSET', KEYS[2], 'e', epoch, 'o', 0)
        end
        local offset = redis.call('HINCRBY', KEYS[2], 'o', 1)
        local t = redis.call('TIME')
        local now = string.format('%.0f', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
        redis.call('XADD', KEYS[1], 'MAXLEN', size, offset .. '-1', 't', now, 'd', data)
        redis.call('PEXPIRE', KEYS[1], ttl)
        redis.call('PEXPIRE', KEYS[2], metaTTL)
        redis.call(command, channel, 'h:' .. offset .. ':' .. epoch .. '\\n' .. data)
        redis.call('SET', KEYS[3], sequence, 'PX', publisherTTL)
        return offset
        """

    /// A new epoch (ARGV[3]) when the stream is still of epoch ARGV[1] with its top below
    /// ARGV[2]; answers 1 when it began one.
    static let newEpochScript = """
        local epoch = redis.call('HGET', KEYS[2], 'e')
        if epoch ~= ARGV[1] or tonumber(redis.call('HGET', KEYS[2], 'o')) >= tonumber(ARGV[2]) then return 0 end
        redis.call('DEL', KEYS[1])
        redis.call('HSET', KEYS[2], 'e', ARGV[3], 'o', 0)
        redis.call('PEXPIRE', KEYS[2], ARGV[4])
        return 1
        """

    /// Returns {epoch, top offset, now (ms), entries}: those after ARGV[1], or the latest
    /// ARGV[2] when it is -1. A topic without history reads as epoch "" at offset 0 and is
    /// not created (reads never cost Redis memory).
    static let readScript = """
        local epoch = redis.call('HGET', KEYS[2], 'e')
        if not epoch then
          local t = redis.call('TIME')
          return {'', '0', string.format('%.0f', tonumber(t[1]) * 1000), {}}
        end
        local top = redis.call('HGET', KEYS[2], 'o')
        local t = redis.call('TIME')
        local now = string.format('%.0f', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
        local entries = {}
        if ARGV[2] == '0' then
          -- COUNT 0 answers nil, not an empty list: read nothing instead.
        elseif ARGV[1] == '-1' then
          entries = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', ARGV[2])
        else
          entries = redis.call('XRANGE', KEYS[1], string.format('%.0f', tonumber(ARGV[1]) + 1) .. '-0', '+', 'COUNT', ARGV[2])
        end
        return {epoch, top, now, entries}
        """

    /// ARGV: expiry (ms), then session and `<joinedAt ms>\n<info>` pairs.
    static let presenceJoinScript = """
        local t = redis.call('TIME')
        local until_ = string.format('%.0f', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1]))
        for i = 2, #ARGV, 2 do
          redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
          redis.call('ZADD', KEYS[2], until_, ARGV[i])
        end
        redis.call('PEXPIRE', KEYS[1], ARGV[1])
        redis.call('PEXPIRE', KEYS[2], ARGV[1])
        return 1
        """

    static let presenceLeaveScript = """
        redis.call('HDEL', KEYS[1], ARGV[1])
        redis.call('ZREM', KEYS[2], ARGV[1])
        return 1
        """

    /// Drops expired members, returns the rest as HGETALL does.
    static let presenceReadScript = """
        local t = redis.call('TIME')
        local now = string.format('%.0f', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
        local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
        for _, member in ipairs(expired) do redis.call('HDEL', KEYS[1], member) end
        redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
        return redis.call('HGETALL', KEYS[1])
        """

    /// Members per refresh script, so one script never holds Redis long.
    static let presenceBatch = 500

    func attachPositioned(
        receive: @escaping @Sendable (String, ByteBuffer, Live.StreamPosition) -> Void,
        notice: @escaping @Sendable (String, Live.StreamPosition) -> Void
    ) {
        self.positionedReceiver.withLockedValue { $0 = PositionedReceiver(receive: receive, notice: notice) }
    }

    func publish(_ topic: String, _ data: Data, history: Live.HistoryPolicy) -> Bool {
        let arguments = self.historyPublishArguments(topic, data, history: history)
        // The sequence number is given in queue order, under the queue's lock.
        return self.enqueue(size: Self.evalSize(Self.publishScript, arguments) + 110, countsAsPublish: true, replayable: true) { bytes, sequence in
            let order = self.sharedOrder?.next(topic) ?? (sequence, 0)
            Self.writeEval(Self.publishScript, keys: 3, arguments, last: self.orderArguments(topic, order), into: &bytes)
        }
    }

    /// The script's last arguments: the publish's number, the command that publishes, the
    /// topic's floor (epoch and offset; "" and 0 when none), the predecessor.
    private func orderArguments(_ topic: String, _ order: (sequence: UInt64, predecessor: UInt64)) -> [String] {
        let floor = self.floors.floor(of: topic)
        return [
            String(order.sequence), self.keyspace.publishCommand, floor?.epoch ?? "", String(floor?.offset ?? 0),
            PublishOrder.argument(order.predecessor),
        ]
    }

    /// A history publish's command with this broker's next sequence number, not queued: a
    /// cluster holds it while its slot moves, then has it written by the slot's owner,
    /// before anything this broker queues later for the topic.
    func historyPublishCommand(_ topic: String, _ data: Data, history: Live.HistoryPolicy) -> ByteBuffer {
        let arguments = self.historyPublishArguments(topic, data, history: history)
        let order = self.sharedOrder?.next(topic) ?? (self.outbox.withLockedValue { $0.takeSequence() }, 0)
        var bytes = ByteBuffer()
        Self.writeEval(Self.publishScript, keys: 3, arguments, last: self.orderArguments(topic, order), into: &bytes)
        return bytes
    }

    private func historyPublishArguments(_ topic: String, _ data: Data, history: Live.HistoryPolicy) -> [EvalArgument] {
        let names = self.keyspace
        return [
            .text(names.key("history", topic)), .text(names.key("history-meta", topic)),
            .text(names.key("history-publisher:" + (self.sharedOrder?.id ?? self.nodeID), topic)),
            .text(names.channel(topic)), .bytes(data), .text(String(history.size)), .text(String(max(1, history.ttl.nanoseconds / 1_000_000))), .text(newEpoch()),
            .text(String(max(history.ttl, self.configuration.historyMetaTTL).nanoseconds / 1_000_000)),
            .text(String(max(1, self.configuration.replayWindow.nanoseconds / 1_000_000) * 2)),
        ]
    }

    func readHistory(_ topic: String, since: UInt64?, count: Int, policy: Live.HistoryPolicy) async throws -> HistoryRead {
        // The stream never holds more than its size; one more tells a reader asking past it
        // that the history is incomplete.
        let count = min(max(0, count), policy.size + 1)
        let arguments: [EvalArgument] = [
            .text(self.keyspace.key("history", topic)), .text(self.keyspace.key("history-meta", topic)),
            .text(since.map { String($0) } ?? "-1"), .text(String(count)),
        ]
        let reply = try await self.request("EVAL") { Self.writeEval(Self.readScript, keys: 2, arguments, into: &$0) }
        let read = try Self.parseRead(reply)
        let oldest = read.now - policy.ttl.nanoseconds / 1_000_000
        var entries: [Live.Publication] = []
        entries.reserveCapacity(read.entries.count)
        for entry in read.entries where entry.stored > oldest {  // else expired, not yet trimmed by Redis
            entries.append(Live.Publication(data: Data(entry.data.readableBytesView), position: Live.StreamPosition(offset: entry.offset, epoch: read.epoch)))
        }
        if since == nil { entries.reverse() }
        return HistoryRead(epoch: read.epoch, top: read.top, entries: entries)
    }

    /// 2^53 ms after 1970 (year 287,396): past any clock, within every integer type involved.
    static let largestClockReading: Int64 = 1 << 53

    /// A reply of ``readScript``: the epoch, the top offset, Redis' clock (ms) and the entries
    /// with the time each was stored.
    struct StreamRead {
        var epoch: String
        var top: UInt64
        var now: Int64
        var entries: [(offset: UInt64, stored: Int64, data: ByteBuffer)]
    }

    static func parseRead(_ reply: RESPValue) throws -> StreamRead {
        if case .error(let message) = reply { throw Live.RedisError.refused(command: "EVAL", message: message) }
        guard case .array(let items?) = reply, items.count == 4, let epoch = items[0].text, let top = items[1].text.flatMap({ UInt64($0) }),
            let now = items[2].text.flatMap({ Int64($0) }), case .array(let rawEntries?) = items[3],
            // Redis' clock in ms: what no clock reads would make the expiry arithmetic overflow.
            (0...Self.largestClockReading).contains(now)
        else { throw Live.RedisError.protocolViolation("unexpected history reply") }
        var read = StreamRead(epoch: epoch, top: top, now: now, entries: [])
        read.entries.reserveCapacity(rawEntries.count)
        for raw in rawEntries {
            // [id, [field, value, ...]], id `<offset>-1`
            guard case .array(let pair?) = raw, pair.count == 2, let id = pair[0].text, let offset = id.split(separator: "-").first.flatMap({ UInt64($0) }),
                case .array(let fields?) = pair[1]
            else { throw Live.RedisError.protocolViolation("unexpected history entry") }
            var stored: Int64 = 0
            var data = ByteBuffer()
            for index in stride(from: 0, to: fields.count - 1, by: 2) {
                switch fields[index].text {
                case "t": stored = fields[index + 1].text.flatMap { Int64($0) } ?? 0
                case "d": if case .bulkString(let bytes?) = fields[index + 1] { data = bytes }
                default: break
                }
            }
            read.entries.append((offset, stored, data))
        }
        return read
    }

    func presenceJoin(_ topic: String, _ members: [Live.PresenceMember], expiry: TimeAmount) {
        for start in stride(from: 0, to: members.count, by: Self.presenceBatch) {
            var arguments: [EvalArgument] = [.text(self.keyspace.key("presence", topic)), .text(self.keyspace.key("presence-expiry", topic)), .text(String(expiry.nanoseconds / 1_000_000))]
            for member in members[start..<min(members.count, start + Self.presenceBatch)] {
                var value = Data("\(member.joinedAtMilliseconds)\n".utf8)
                value.append(member.info)
                arguments.append(.text(member.session))
                arguments.append(.bytes(value))
            }
            // Joining twice is joining once: written again if a dying link never answered it.
            let queued = self.enqueue(size: Self.evalSize(Self.presenceJoinScript, arguments), countsAsPublish: false, replayable: true) { bytes, _ in
                Self.writeEval(Self.presenceJoinScript, keys: 2, arguments, into: &bytes)
            }
            if !queued, self.isConnected { self.reportDroppedPresence(topic) }
        }
    }

    /// Presence writes dropped while connected mean Redis is too slow to take the pending
    /// bytes (`maxPendingPublishBytes`): members may expire until the next refresh gets through.
    private func reportDroppedPresence(_ topic: String) {
        guard self.presenceDropLog.allows() else { return }
        self.logger.warning(
            "presence not written to Redis: more than maxPendingPublishBytes wait to be sent (retried at the next refresh)",
            metadata: ["topic": "\(LogSafe(topic))"])
    }

    func presenceLeave(_ topic: String, session: String) {
        let arguments: [EvalArgument] = [.text(self.keyspace.key("presence", topic)), .text(self.keyspace.key("presence-expiry", topic)), .text(session)]
        _ = self.enqueue(size: Self.evalSize(Self.presenceLeaveScript, arguments), countsAsPublish: false, replayable: true) { bytes, _ in
            Self.writeEval(Self.presenceLeaveScript, keys: 2, arguments, into: &bytes)
        }
    }

    func presence(_ topic: String) async throws -> [Live.PresenceMember] {
        let arguments: [EvalArgument] = [.text(self.keyspace.key("presence", topic)), .text(self.keyspace.key("presence-expiry", topic))]
        let reply = try await self.request("EVAL") { Self.writeEval(Self.presenceReadScript, keys: 2, arguments, into: &$0) }
        guard case .array(let items?) = reply else { throw Live.RedisError.protocolViolation("unexpected presence reply") }
        var members: [Live.PresenceMember] = []
        for index in stride(from: 0, to: items.count - 1, by: 2) {
            guard let session = items[index].text, case .bulkString(let value?) = items[index + 1] else { continue }
            let bytes = value.readableBytesView
            // What another node wrote, or anything a shared store holds: a member whose fields
            // this node would not have written is skipped, not trusted into a client's frame.
            guard let newline = bytes.firstIndex(of: 0x0A),
                let milliseconds = Int64(String(decoding: bytes[..<newline], as: UTF8.self)),
                let joinedAt = Live.PresenceMember.joinedAt(milliseconds: milliseconds),
                let info = value.getSlice(at: newline + 1, length: bytes.endIndex - newline - 1),
                JSONScanner.isValue(info)
            else { continue }
            members.append(Live.PresenceMember(session: session, info: Data(info.readableBytesView), joinedAt: joinedAt))
        }
        return members.sorted { $0.joinedAt < $1.joinedAt }
    }

    /// A history message from the channel: `h:<offset>:<epoch>\n<data>` (on the broker's
    /// event loop).
    func deliverPositioned(topic: String, channel: ByteBuffer, payload: ByteBuffer) {
        var data = payload
        let bytes = payload.readableBytesView
        guard let newline = bytes.firstIndex(of: 0x0A) else { return }
        let head = String(decoding: bytes[(bytes.startIndex + 2)..<newline], as: UTF8.self).split(separator: ":", maxSplits: 1)
        guard head.count == 2, let offset = UInt64(head[0]) else { return }
        data.moveReaderIndex(forwardBy: newline + 1 - bytes.startIndex)
        guard JSONScanner.isValue(data) else { return }
        self.receivePositioned(topic, StreamContinuity.Entry(position: Live.StreamPosition(offset: offset, epoch: String(head[1])), data: data))
    }

    // MARK: EVAL framing

    enum EvalArgument {
        case text(String)
        case bytes(Data)

        var count: Int {
            switch self {
            case .text(let text): return text.utf8.count
            case .bytes(let data): return data.count
            }
        }
    }

    static func evalSize(_ script: String, _ arguments: [EvalArgument]) -> Int {
        arguments.reduce(script.utf8.count + 64) { $0 + $1.count + 16 }
    }

    /// `EVAL script numkeys key... arg... [last]`; the first `keys` arguments are the keys.
    static func writeEval(_ script: String, keys: Int, _ arguments: [EvalArgument], last: [String] = [], into buffer: inout ByteBuffer) {
        RESPValue.writeArrayHeader(count: 3 + arguments.count + last.count, into: &buffer)
        RESPValue.writeBulkString("EVAL", into: &buffer)
        RESPValue.writeBulkString(script, into: &buffer)
        RESPValue.writeBulkString(String(keys), into: &buffer)
        for argument in arguments {
            switch argument {
            case .text(let text): RESPValue.writeBulkString(text, into: &buffer)
            case .bytes(let data): RESPValue.writeBulkString(length: data.count, into: &buffer) { $0.writeBytes(data) }
            }
        }
        for text in last { RESPValue.writeBulkString(text, into: &buffer) }
    }
}

extension RESPValue {
    /// A bulk or simple string's text, or an integer's digits.
    var text: String? {
        switch self {
        case .bulkString(let bytes?): return String(buffer: bytes)
        case .simpleString(let text): return text
        case .integer(let value): return String(value)
        default: return nil
        }
    }
}
