import Foundation

// The three container kinds of ``TrackingDecoder``: each forwards to JSONDecoder's own
// container; keyed ones record the keys read, and every generic `decode` re-enters the
// tracking through ``Tracked`` so nested objects are checked too.

struct TrackingKeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let base: KeyedDecodingContainer<Key>
    let tracker: KeyTracker
    let path: String

    var codingPath: [any CodingKey] { self.base.codingPath }
    var allKeys: [Key] {
        self.tracker.readAll(at: self.path)
        return self.base.allKeys
    }

    private func mark(_ key: Key) { self.tracker.read(key.stringValue, at: self.path) }

    func contains(_ key: Key) -> Bool {
        self.mark(key)
        return self.base.contains(key)
    }

    func decodeNil(forKey key: Key) throws -> Bool {
        self.mark(key)
        return try self.base.decodeNil(forKey: key)
    }

    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { self.mark(key); return try self.base.decode(type, forKey: key) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { self.mark(key); return try self.base.decode(type, forKey: key) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { self.mark(key); return try self.base.decode(type, forKey: key) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { self.mark(key); return try self.base.decode(type, forKey: key) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { self.mark(key); return try self.base.decode(type, forKey: key) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { self.mark(key); return try self.base.decode(type, forKey: key) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { self.mark(key); return try self.base.decode(type, forKey: key) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { self.mark(key); return try self.base.decode(type, forKey: key) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { self.mark(key); return try self.base.decode(type, forKey: key) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { self.mark(key); return try self.base.decode(type, forKey: key) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { self.mark(key); return try self.base.decode(type, forKey: key) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { self.mark(key); return try self.base.decode(type, forKey: key) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { self.mark(key); return try self.base.decode(type, forKey: key) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { self.mark(key); return try self.base.decode(type, forKey: key) }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        self.mark(key)
        if StrictJSONDecoder.isLeaf(type) { return try self.base.decode(type, forKey: key) }
        return try self.base.decode(Tracked<T>.self, forKey: key).value
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        self.mark(key)
        let raw = try self.base.nestedContainer(keyedBy: AnyJSONKey.self, forKey: key)
        let path = KeyTracker.path(raw.codingPath)
        self.tracker.saw(raw.allKeys.map(\.stringValue), at: path)
        let nested = try self.base.nestedContainer(keyedBy: type, forKey: key)
        return KeyedDecodingContainer(TrackingKeyedContainer<NestedKey>(base: nested, tracker: self.tracker, path: path))
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        self.mark(key)
        return TrackingUnkeyedContainer(base: try self.base.nestedUnkeyedContainer(forKey: key), tracker: self.tracker)
    }

    func superDecoder() throws -> any Decoder {
        self.tracker.read("super", at: self.path)
        return TrackingDecoder(base: try self.base.superDecoder(), tracker: self.tracker)
    }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        self.mark(key)
        return TrackingDecoder(base: try self.base.superDecoder(forKey: key), tracker: self.tracker)
    }
}

struct TrackingUnkeyedContainer: UnkeyedDecodingContainer {
    var base: any UnkeyedDecodingContainer
    let tracker: KeyTracker

    var codingPath: [any CodingKey] { self.base.codingPath }
    var count: Int? { self.base.count }
    var isAtEnd: Bool { self.base.isAtEnd }
    var currentIndex: Int { self.base.currentIndex }

    mutating func decodeNil() throws -> Bool { try self.base.decodeNil() }

    mutating func decode(_ type: Bool.Type) throws -> Bool { try self.base.decode(type) }
    mutating func decode(_ type: String.Type) throws -> String { try self.base.decode(type) }
    mutating func decode(_ type: Double.Type) throws -> Double { try self.base.decode(type) }
    mutating func decode(_ type: Float.Type) throws -> Float { try self.base.decode(type) }
    mutating func decode(_ type: Int.Type) throws -> Int { try self.base.decode(type) }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try self.base.decode(type) }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try self.base.decode(type) }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try self.base.decode(type) }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try self.base.decode(type) }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try self.base.decode(type) }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try self.base.decode(type) }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try self.base.decode(type) }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try self.base.decode(type) }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try self.base.decode(type) }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        if StrictJSONDecoder.isLeaf(type) { return try self.base.decode(type) }
        return try self.base.decode(Tracked<T>.self).value
    }

    // Asking an unkeyed container twice would move past two elements, so a nested object
    // is reached through one element decoder, which can be asked for the raw keys and then
    // for the typed container.
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try self.superDecoder().container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        TrackingUnkeyedContainer(base: try self.base.nestedUnkeyedContainer(), tracker: self.tracker)
    }

    mutating func superDecoder() throws -> any Decoder {
        TrackingDecoder(base: try self.base.superDecoder(), tracker: self.tracker)
    }
}

struct TrackingSingleValueContainer: SingleValueDecodingContainer {
    let base: any SingleValueDecodingContainer
    let tracker: KeyTracker

    var codingPath: [any CodingKey] { self.base.codingPath }

    func decodeNil() -> Bool { self.base.decodeNil() }

    func decode(_ type: Bool.Type) throws -> Bool { try self.base.decode(type) }
    func decode(_ type: String.Type) throws -> String { try self.base.decode(type) }
    func decode(_ type: Double.Type) throws -> Double { try self.base.decode(type) }
    func decode(_ type: Float.Type) throws -> Float { try self.base.decode(type) }
    func decode(_ type: Int.Type) throws -> Int { try self.base.decode(type) }
    func decode(_ type: Int8.Type) throws -> Int8 { try self.base.decode(type) }
    func decode(_ type: Int16.Type) throws -> Int16 { try self.base.decode(type) }
    func decode(_ type: Int32.Type) throws -> Int32 { try self.base.decode(type) }
    func decode(_ type: Int64.Type) throws -> Int64 { try self.base.decode(type) }
    func decode(_ type: UInt.Type) throws -> UInt { try self.base.decode(type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try self.base.decode(type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try self.base.decode(type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try self.base.decode(type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try self.base.decode(type) }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        if StrictJSONDecoder.isLeaf(type) { return try self.base.decode(type) }
        return try self.base.decode(Tracked<T>.self).value
    }
}
