import Foundation
@testable import MizuLive
import MizuTestSupport
import NIOCore
import Testing

/// Redis Cluster's rules as values (issue 27's first piece): the key-to-slot hash with hash
/// tags, checked against a real cluster-enabled redis-server; the topology a `CLUSTER SLOTS`
/// reply draws; redirects read strictly.
@Suite struct ClusterMapTests {
    @Test func theHashIsCRC16XModemAndTagsPickWhatIsHashed() {
        #expect(ClusterSlot.crc16(Array("123456789".utf8)) == 0x31C3, "the specification's check value")
        #expect(ClusterSlot.of("foo") == 12_182 && ClusterSlot.of("bar") == 5_061)
        #expect(ClusterSlot.of("{user1000}.following") == ClusterSlot.of("{user1000}.followers"))
        #expect(ClusterSlot.of("{user1000}.following") == ClusterSlot.of("user1000"))
        #expect(ClusterSlot.of("foo{}{bar}") == Int(ClusterSlot.crc16(Array("foo{}{bar}".utf8))) % 16_384, "an empty tag hashes the whole key")
        #expect(ClusterSlot.of("foo{{bar}}zap") == ClusterSlot.of("{bar"), "the first { and the first } after it")
        #expect(ClusterSlot.of("foo{bar}{zap}") == ClusterSlot.of("bar"))
        #expect(ClusterSlot.of("") == 0)
        #expect(ClusterSlot.of("{") == Int(ClusterSlot.crc16(Array("{".utf8))) % 16_384, "no closing brace: the whole key")
    }

    @Test func everyKeyOfATopicSharesItsSlotWhateverBracesTheNameHolds() {
        for topic in ["chat:general", "a}b", "}", "{", "{x}", "", "%7D", "é{}}{"] {
            let tag = ClusterSlot.hashTag(forTopic: topic)
            let keys = ["mizu:" + tag + ":stream", "mizu:" + tag + ":meta", "mizu:" + tag + ":presence", "mizu:" + tag]
            #expect(Set(keys.map { ClusterSlot.of($0) }).count == 1, "\(topic)")
            #expect(ClusterSlot.of(keys[0]) == Int(ClusterSlot.crc16(Array(tag.utf8.dropFirst().dropLast()))) % 16_384, "\(topic): the tag is what is hashed")
        }
        #expect(ClusterSlot.hashTag(forTopic: "a}b") != ClusterSlot.hashTag(forTopic: "a%7Db"), "escaping keeps names apart")
    }

    @Test func redirectsAreReadStrictly() {
        let asked = ClusterNodeAddress(host: "10.0.0.1", port: 7000)
        #expect(ClusterRedirect(error: "MOVED 3999 127.0.0.1:6381", asked: asked) == .moved(slot: 3999, to: ClusterNodeAddress(host: "127.0.0.1", port: 6381)))
        #expect(ClusterRedirect(error: "ASK 0 [::1]:7001", asked: asked) == .ask(slot: 0, to: ClusterNodeAddress(host: "::1", port: 7001)))
        #expect(ClusterRedirect(error: "ASK 16383 ::1:7001", asked: asked) == .ask(slot: 16_383, to: ClusterNodeAddress(host: "::1", port: 7001)))
        #expect(ClusterRedirect(error: "MOVED 5 :7002", asked: asked) == .moved(slot: 5, to: ClusterNodeAddress(host: "10.0.0.1", port: 7002)), "an empty host is the asked node's")
        #expect(ClusterRedirect(error: "TRYAGAIN Multiple keys request during rehashing of slot", asked: asked) == .tryAgain)
        #expect(ClusterRedirect(error: "CLUSTERDOWN The cluster is down", asked: asked) == .clusterDown)
        for hostile in [
            "MOVED 16384 h:1", "MOVED -1 h:1", "MOVED 1 h:0", "MOVED 1 h:65536", "MOVED 1 h", "MOVED 99999999999999999999 h:1",
            "MOVED 1 h:1x", "MOVED", "MOVED 1", "ASK 1.5 h:1", "MOVED 1 ho st:1", "ERR unknown command", "",
        ] {
            #expect(ClusterRedirect(error: hostile, asked: asked) == .other, "\(hostile)")
        }
    }

    /// A command that comes back is held with its slot, read from the command itself: an
    /// EVAL's first key, a SPUBLISH's channel; nothing else is sent again.
    @Test func aCommandsSlotIsReadFromItsFirstKeyOrChannel() {
        let names = RedisKeyspace(prefix: "mizu:", sharded: true)
        let topicSlot = names.slot("chat:{odd}name")
        let publish = PublishOrderTests.publishCommand(topic: "chat:{odd}name", sequence: 1, predecessor: 0)
        #expect(Live.RedisClusterBroker.slot(ofCommand: publish) == topicSlot)
        var presence = ByteBuffer()
        Live.RedisBroker.writeEval(
            Live.RedisBroker.presenceLeaveScript, keys: 2,
            [.text(names.key("presence", "chat:{odd}name")), .text(names.key("presence-expiry", "chat:{odd}name")), .text("s")], into: &presence)
        #expect(Live.RedisClusterBroker.slot(ofCommand: presence) == topicSlot)
        var spublish = ByteBuffer()
        RESPValue.writeArrayHeader(count: 3, into: &spublish)
        for word in ["SPUBLISH", names.channel("chat:{odd}name"), "m:node\n{}"] { RESPValue.writeBulkString(word, into: &spublish) }
        #expect(Live.RedisClusterBroker.slot(ofCommand: spublish) == topicSlot)
        var ping = ByteBuffer()
        RESPValue.writeArrayHeader(count: 1, into: &ping)
        RESPValue.writeBulkString("PING", into: &ping)
        #expect(Live.RedisClusterBroker.slot(ofCommand: ping) == nil)
        var noKeys = ByteBuffer()
        Live.RedisBroker.writeEval("return 1", keys: 0, [], into: &noKeys)
        #expect(Live.RedisClusterBroker.slot(ofCommand: noKeys) == nil)
        #expect(Live.RedisClusterBroker.slot(ofCommand: ByteBuffer(string: "*2\r\n$4\r\nEVAL")) == nil, "cut short")
        #expect(Live.RedisClusterBroker.slot(ofCommand: ByteBuffer(string: "+OK\r\n")) == nil)
    }

    @Test func aTopologyIsWholeOrRefused() throws {
        let asked = ClusterNodeAddress(host: "127.0.0.1", port: 7000)
        func node(_ host: String, _ port: Int64) -> RESPValue {
            .array([.bulkString(ByteBuffer(string: host)), .integer(port), .bulkString(ByteBuffer(string: "id"))])
        }
        let reply = RESPValue.array([
            .array([.integer(5461), .integer(10922), node("10.0.0.2", 7001), node("10.0.0.5", 7004)]),
            .array([.integer(0), .integer(5460), node("", 7000)]),
            .array([.integer(10923), .integer(16383), node("10.0.0.3", 7002)]),
        ])
        let topology = try #require(ClusterTopology(slotsReply: reply, asked: asked))
        #expect(topology.coversEverySlot)
        #expect(topology.primary(of: 0) == asked && topology.primary(of: 5460) == asked, "an empty host is the asked node")
        #expect(topology.primary(of: 5461) == ClusterNodeAddress(host: "10.0.0.2", port: 7001))
        #expect(topology.primary(of: 16_383) == ClusterNodeAddress(host: "10.0.0.3", port: 7002))
        #expect(topology.shards[1].replicas == [ClusterNodeAddress(host: "10.0.0.5", port: 7004)])
        #expect(topology.primaries.count == 3)

        let gap = try #require(ClusterTopology(slotsReply: .array([.array([.integer(0), .integer(100), node("h", 1)])]), asked: asked))
        #expect(!gap.coversEverySlot && gap.primary(of: 101) == nil)
        for broken: RESPValue in [
            .array([.array([.integer(0), .integer(16384), node("h", 1)])]),
            .array([.array([.integer(10), .integer(5), node("h", 1)])]),
            .array([.array([.integer(-1), .integer(5), node("h", 1)])]),
            .array([.array([.integer(0), .integer(10), node("h", 0)])]),
            .array([.array([.integer(0), .integer(10), node("h", 70000)])]),
            .array([.array([.integer(0), .integer(10), node("h", 1)]), .array([.integer(10), .integer(20), node("h", 2)])]),
            .array([.array([.integer(0), .integer(10)])]),
            .array([.array([.integer(0), .integer(10), node("h", 1), .integer(3)])]),
            .integer(1), .error("ERR This instance has cluster support disabled"),
        ] {
            #expect(ClusterTopology(slotsReply: broken, asked: asked) == nil, "\(broken)")
        }
    }

    @Test func ourSlotsAreRedisSlotsAndARealSlotsReplyReads() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mizu-cluster-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let redis = try await RedisTestServer.start(extraArguments: [
            "--cluster-enabled", "yes", "--cluster-config-file", directory.appendingPathComponent("nodes.conf").path,
        ])
        do {
            var generator = SystemRandomNumberGenerator()
            var keys = ["foo", "{user1000}.following", "foo{}{bar}", "foo{{bar}}zap", "chat:général", "mizu:{chat:a}:stream", "{", "}{", "{}"]
            let alphabet = Array("ab{}:%é0".unicodeScalars)
            for _ in 0..<200 {
                var key = ""
                for _ in 0..<Int.random(in: 1...12, using: &generator) { key.unicodeScalars.append(alphabet.randomElement(using: &generator)!) }
                keys.append(key)
            }
            for key in keys {
                let answer = try await redis.command(["CLUSTER", "KEYSLOT", key])
                #expect(answer == .integer(Int64(ClusterSlot.of(key))), "\(key)")
            }
            _ = try await redis.command(["CLUSTER", "ADDSLOTSRANGE", "0", "16383"])
            let asked = ClusterNodeAddress(host: "127.0.0.1", port: redis.port)
            let topology = try await eventuallyAsync("the node to serve every slot") { () -> ClusterTopology? in
                guard let topology = ClusterTopology(slotsReply: try await redis.command(["CLUSTER", "SLOTS"]), asked: asked) else { return nil }
                return topology.coversEverySlot ? topology : nil
            }
            #expect(topology.primaries == [asked] && topology.primary(of: ClusterSlot.of("foo")) == asked)
            try await redis.stop()
        } catch {
            try? await redis.stop()
            throw error
        }
    }
}
