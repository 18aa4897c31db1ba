import Foundation
@testable import MizuLive
import MizuTestSupport
import NIOConcurrencyHelpers
import Testing

/// Presence reads are shared: a thousand sessions asking at once cost two reads.
@Suite(.timeLimit(.minutes(10))) struct PresenceReadsTests {
    @Test func requestsDuringAReadShareTheNextOneAndNoneMissesAnEarlierChange() async throws {
        let reads = PresenceReads()
        let calls = NIOLockedValueBox(0)
        let gates = NIOLockedValueBox<[Gate]>([Gate(), Gate(), Gate()])
        let read: PresenceReads.Read = { topic in
            let index = calls.withLockedValue { $0 += 1; return $0 - 1 }
            await gates.withLockedValue { $0[index] }.wait()
            return [Live.PresenceMember(session: "read \(index)", info: Data("null".utf8), joinedAt: Date())]
        }
        let answers = NIOLockedValueBox<[String]>([])
        let answer: PresenceReads.Answer = { result in
            answers.withLockedValue { $0.append((try? result.get().first?.session) ?? "failed") }
        }
        reads.members("room", read: read, answer)
        _ = try await eventually("the first read") { calls.withLockedValue { $0 } == 1 ? true : nil }
        // 1,000 more while it runs: they wait for the next read (one), not their own.
        for _ in 0..<1_000 { reads.members("room", read: read, answer) }
        #expect(calls.withLockedValue { $0 } == 1)
        gates.withLockedValue { $0[0] }.open()
        _ = try await eventually("the second read") { calls.withLockedValue { $0 } == 2 ? true : nil }
        #expect(answers.withLockedValue { $0 } == ["read 0"], "the early requester got the read that started before the others")
        reads.members("room", read: read, answer)  // arrives during the second read: the third serves it
        gates.withLockedValue { $0[1] }.open()
        _ = try await eventually("the 1,000 answers") { answers.withLockedValue { $0.count } == 1_001 ? true : nil }
        #expect(answers.withLockedValue { $0.dropFirst().allSatisfy { $0 == "read 1" } })
        gates.withLockedValue { $0[2] }.open()
        _ = try await eventually("the last answer") { answers.withLockedValue { $0.count } == 1_002 ? true : nil }
        #expect(answers.withLockedValue { $0.last } == "read 2" && calls.withLockedValue { $0 } == 3)
        _ = try await eventually("nothing left behind") { reads.busyTopics == 0 ? true : nil }
        // Another topic never waits for this one's.
        let other = try await reads.members("other", read: { _ in [] })
        #expect(other.isEmpty)
    }

    @Test func aFailedReadAnswersItsRequestersWithTheError() async throws {
        struct Down: Error {}
        let reads = PresenceReads()
        await #expect(throws: Down.self) { try await reads.members("room", read: { _ in throw Down() }) }
        #expect(try await reads.members("room", read: { _ in [] }).isEmpty, "the next read is a new one")
    }
}
