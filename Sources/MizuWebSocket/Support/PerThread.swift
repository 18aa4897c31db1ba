import NIOPosix

/// One lazily created instance per thread, for state that event-loop threads reuse without
/// locks (a shared deflater, a flush list).
struct PerThread<Value: AnyObject>: Sendable {
    /// `nonisolated(unsafe)`: the pthread key behind ThreadSpecificVariable is thread-safe,
    /// and each value it holds is only ever touched by the thread that created it.
    private nonisolated(unsafe) let storage = ThreadSpecificVariable<Value>()
    private let make: @Sendable () -> Value

    init(_ make: @escaping @Sendable () -> Value) {
        self.make = make
    }

    /// The calling thread's instance.
    var current: Value {
        if let value = self.storage.currentValue { return value }
        let value = self.make()
        self.storage.currentValue = value
        return value
    }
}
