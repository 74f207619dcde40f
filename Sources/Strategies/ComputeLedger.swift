import Synchronization

/// The tokens a worker process has trained on since it started, in every ring it formed: rounds
/// that were later discarded (a peer was lost mid-round, the ring went back) count too. Against
/// the tokens that reached the shared model it tells how much work faults cost (the chaos
/// experiment's efficiency).
public final class ComputeLedger: Sendable {
    private let total = Mutex(0)

    public init() {}

    func add(_ tokens: Int) { total.withLock { $0 += tokens } }

    public var tokens: Int { total.withLock { $0 } }
}
