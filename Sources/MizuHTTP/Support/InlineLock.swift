#if MIZU_TSAN_LOCKS
import NIOConcurrencyHelpers
#else
import Synchronization
#endif

/// A value behind a lock, stored inline: the standard library's `Mutex` (a futex word, no
/// allocation of its own), for state kept per connection or per request.
///
/// ThreadSanitizer does not see `Mutex` on Linux (its lock and unlock run in the uninstrumented
/// runtime), so it reports every access from two threads as a race. Builds for ThreadSanitizer
/// (`-Xswiftc -DMIZU_TSAN_LOCKS`, as scripts/test.sh does) use a pthread mutex instead, which it
/// understands: the code between lock and unlock is the same in both.
package struct InlineLock<Value>: ~Copyable {
    #if MIZU_TSAN_LOCKS
    @usableFromInline package let box: NIOLockedValueBox<Value>
    #else
    @usableFromInline package let mutex: Mutex<Value>
    #endif

    // Inlinable, so each module specializes it: unspecialized, every lock made looked up its
    // generic type's metadata at run time (seen in the connect path's profile).
    @inlinable
    package init(_ initialValue: consuming sending Value) {
        #if MIZU_TSAN_LOCKS
        self.box = NIOLockedValueBox(initialValue)
        #else
        self.mutex = Mutex(initialValue)
        #endif
    }

    #if MIZU_TSAN_LOCKS
    /// Runs `body` with the value, under the lock; never call it from inside `body`.
    @inlinable
    package borrowing func withLock<Result, Failure: Error>(_ body: (inout Value) throws(Failure) -> Result) throws(Failure) -> Result {
        // The box's closure is not typed-throws: carry the error out by hand.
        var failure: Failure?
        let result: Result? = self.box.withLockedValue { value in
            do throws(Failure) { return try body(&value) } catch { failure = error; return nil }
        }
        if let failure { throw failure }
        return result!
    }
    #else
    /// Runs `body` with the value, under the lock; never call it from inside `body`.
    @inlinable
    package borrowing func withLock<Result, Failure: Error>(_ body: (inout sending Value) throws(Failure) -> sending Result) throws(Failure) -> sending Result {
        try self.mutex.withLock(body)
    }
    #endif
}

// Safe: every access to the value goes through the lock (either kind).
extension InlineLock: @unchecked Sendable {}
