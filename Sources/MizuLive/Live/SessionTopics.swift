/// The topics one session is subscribed to. Most sessions have one or two (a room, and a
/// presence topic every session joins, as the ChatApp's `online`), so up to two are kept
/// inline and a set is made from the third on: an idle subscribed session holds no set
/// storage (a small `Set<String>` is about 140 bytes of heap).
struct SessionTopics: Sequence {
    private enum Storage {
        case none
        case one(String)
        case two(String, String)
        case many(Set<String>)
    }

    private var storage = Storage.none

    var count: Int {
        switch self.storage {
        case .none: 0
        case .one: 1
        case .two: 2
        case .many(let set): set.count
        }
    }

    var isEmpty: Bool { self.count == 0 }

    func contains(_ topic: String) -> Bool {
        switch self.storage {
        case .none: false
        case .one(let first): first == topic
        case .two(let first, let second): first == topic || second == topic
        case .many(let set): set.contains(topic)
        }
    }

    /// Adds `topic`; false when it was there already.
    @discardableResult
    mutating func insert(_ topic: String) -> Bool {
        guard !self.contains(topic) else { return false }
        switch self.storage {
        case .none:
            self.storage = .one(topic)
        case .one(let first):
            self.storage = .two(first, topic)
        case .two(let first, let second):
            self.storage = .many([first, second, topic])
        case .many(var set):
            // Taken out first, so the set stays uniquely referenced and grows in place.
            self.storage = .none
            set.insert(topic)
            self.storage = .many(set)
        }
        return true
    }

    /// Removes `topic`; false when it was not there.
    @discardableResult
    mutating func remove(_ topic: String) -> Bool {
        guard self.contains(topic) else { return false }
        switch self.storage {
        case .none:
            break
        case .one:
            self.storage = .none
        case .two(let first, let second):
            self.storage = .one(first == topic ? second : first)
        case .many(var set):
            self.storage = .none
            set.remove(topic)
            // Back inline at two, so a session that left its rooms drops the set.
            if set.count == 2 {
                var rest = set.makeIterator()
                self.storage = .two(rest.next()!, rest.next()!)
            } else {
                self.storage = .many(set)
            }
        }
        return true
    }

    mutating func removeAll() {
        self.storage = .none
    }

    var set: Set<String> {
        switch self.storage {
        case .none: []
        case .one(let first): [first]
        case .two(let first, let second): [first, second]
        case .many(let set): set
        }
    }

    func makeIterator() -> Set<String>.Iterator {
        self.set.makeIterator()
    }
}
