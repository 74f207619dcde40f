import NIOConcurrencyHelpers
import NIOCore

/// A queue filled by NIO handlers and drained by one async consumer, with a timeout per wait.
///
/// The consumer is a single task at a time (the collective that owns the link); producers may be
/// any thread. Once failed, every later wait throws the failure after the queued items are drained.
final class AsyncQueue<Element: Sendable>: @unchecked Sendable {
    private enum PopOutcome {
        case item(Element, drained: Bool)
        case failed(Error)
        case wait(UInt64)
    }

    private let lock = NIOLock()
    private var items: [Element] = []
    private var head = 0
    private var failure: Error?
    private var waiter: CheckedContinuation<Element, Error>?
    private var waiterID: UInt64 = 0
    private var queuedCost = 0
    private let cost: @Sendable (Element) -> Int
    private var drainedCallback: (@Sendable () -> Void)?
    /// Called (outside the lock) after a pop brings the queued cost to `lowWater` or below.
    var onDrained: (@Sendable () -> Void)? {
        get { lock.withLock { drainedCallback } }
        set { lock.withLock { drainedCallback = newValue } }
    }
    let lowWater: Int

    init(lowWater: Int = 0, cost: @escaping @Sendable (Element) -> Int = { _ in 1 }) {
        self.cost = cost
        self.lowWater = lowWater
    }

    /// Sum of `cost` over what is queued.
    var queued: Int { lock.withLock { queuedCost } }

    func push(_ item: Element) {
        let w: CheckedContinuation<Element, Error>? = lock.withLock {
            if failure != nil { return nil }
            if let w = waiter {
                waiter = nil
                return w
            }
            items.append(item)
            queuedCost += cost(item)
            return nil
        }
        w?.resume(returning: item)
    }

    /// Fails the queue; a waiting consumer gets `error` now, later ones after the queue drains.
    func fail(_ error: Error) {
        let w: CheckedContinuation<Element, Error>? = lock.withLock {
            if failure == nil { failure = error }
            defer { waiter = nil }
            return waiter
        }
        w?.resume(throwing: error)
    }

    /// The next item, waiting at most `timeout` (scheduled on `loop`), else `timeoutError()`. A
    /// cancelled consumer stops waiting with `CancellationError` (a ring whose forming the
    /// coordinator overtook stops at once, not at its timeout).
    func next(timeout: TimeAmount?, on loop: EventLoop, timeoutError: @escaping @Sendable () -> Error) async throws -> Element {
        try await withTaskCancellationHandler {
            try await wait(timeout: timeout, on: loop, timeoutError: timeoutError)
        } onCancel: {
            // A task is marked cancelled before this runs: a wait not registered yet sees it (below).
            let cancelled: CheckedContinuation<Element, Error>? = lock.withLock {
                defer { waiter = nil }
                return waiter
            }
            cancelled?.resume(throwing: CancellationError())
        }
    }

    private func wait(timeout: TimeAmount?, on loop: EventLoop, timeoutError: @escaping @Sendable () -> Error) async throws -> Element {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Element, Error>) in
            let outcome: PopOutcome = lock.withLock {
                if head < items.count {
                    let item = items[head]
                    head += 1
                    let before = queuedCost
                    queuedCost -= cost(item)
                    if head > 64 && head * 2 > items.count {
                        items.removeFirst(head)
                        head = 0
                    }
                    return .item(item, drained: before > lowWater && queuedCost <= lowWater)
                }
                if let failure { return .failed(failure) }
                if Task.isCancelled { return .failed(CancellationError()) }
                waiterID &+= 1
                waiter = c
                return .wait(waiterID)
            }
            switch outcome {
            case let .item(item, drained):
                c.resume(returning: item)
                if drained { onDrained?() }
            case let .failed(error):
                c.resume(throwing: error)
            case let .wait(id):
                guard let timeout else { return }
                loop.scheduleTask(in: timeout) { [self] in
                    let expired: CheckedContinuation<Element, Error>? = lock.withLock {
                        guard waiterID == id, let w = waiter else { return nil }
                        waiter = nil
                        return w
                    }
                    expired?.resume(throwing: timeoutError())
                }
            }
        }
    }
}
