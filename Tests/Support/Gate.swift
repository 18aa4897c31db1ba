import NIOConcurrencyHelpers

/// A one-shot gate: `wait()` returns once `open()` was called (before or after), and ignores
/// task cancellation, so a test can hold a handler for as long as it chooses and assert what
/// happens meanwhile (an order of events, not a duration).
public final class Gate: Sendable {
    private enum State {
        case closed([CheckedContinuation<Void, Never>])
        case open
    }

    private let state = NIOLockedValueBox(State.closed([]))

    public init() {}

    public var isOpen: Bool {
        self.state.withLockedValue { if case .open = $0 { return true } else { return false } }
    }

    public func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let openAlready = self.state.withLockedValue { state -> Bool in
                guard case .closed(var waiters) = state else { return true }
                waiters.append(continuation)
                state = .closed(waiters)
                return false
            }
            if openAlready { continuation.resume() }
        }
    }

    public func open() {
        let waiters = self.state.withLockedValue { state -> [CheckedContinuation<Void, Never>] in
            guard case .closed(let waiters) = state else { return [] }
            state = .open
            return waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}
