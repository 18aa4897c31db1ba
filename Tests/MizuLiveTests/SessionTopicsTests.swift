@testable import MizuLive
import Testing

/// A session's topics kept inline up to two: the same answers as a Set, whatever the order.
struct SessionTopicsTests {
    @Test func behavesAsASetThroughEveryShape() {
        var topics = SessionTopics()
        var model = Set<String>()
        let names = ["a", "b", "c", "d", "chat:general", "a-topic-longer-than-fifteen-bytes"]
        var state: UInt64 = 0x2545_F491_4F6C_DD1D
        for step in 0..<5_000 {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            let name = names[Int(state % UInt64(names.count))]
            switch (state >> 8) % 7 {
            case 0...2: #expect(topics.insert(name) == model.insert(name).inserted, "step \(step)")
            case 3...5: #expect(topics.remove(name) == (model.remove(name) != nil), "step \(step)")
            default:
                if (state >> 16) % 10 == 0 {
                    topics.removeAll()
                    model.removeAll()
                }
            }
            #expect(topics.count == model.count && topics.isEmpty == model.isEmpty, "step \(step)")
            #expect(topics.set == model && Set(topics) == model, "step \(step)")
            for name in names { #expect(topics.contains(name) == model.contains(name)) }
            if topics.set != model { return }
        }
    }
}
