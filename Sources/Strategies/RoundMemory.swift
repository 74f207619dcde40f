import Foundation
import Synchronization
import Training

/// A worker's state at the end of its last two rounds, kept in memory across rings: when a peer
/// is lost, the others go back at most one round instead of to their last checkpoint on disk.
public final class RoundMemory: Sendable {
    /// Everything a worker needs to redo the rounds after `state.progress`.
    struct Snapshot {
        var parameters: [Float]
        var m: [Float]
        var v: [Float]
        var step: Int
        var cursor: Int
        var state: StrategyState
    }

    private let snapshots = Mutex<[Snapshot]>([])
    /// Memory the two snapshots may take; a model too large for it is not remembered (a loss
    /// then goes back to the last checkpoint on disk).
    public let maxBytes: Int

    public init(maxBytes: Int = 1 << 30) {
        self.maxBytes = maxBytes
    }

    /// Progress of the snapshots held, newest first.
    var progresses: [Int] { snapshots.withLock { $0.map(\.state.progress).sorted(by: >) } }

    /// Keeps the trainer's state at the end of the round `state.progress` (and the one before it).
    func remember(_ trainer: Trainer, state: StrategyState) {
        let values = 3 * trainer.model.parameters.count + state.valueCount
        guard 2 * 4 * values <= maxBytes else { return }
        let snapshot = Snapshot(parameters: Array(trainer.model.parameters.buffer), m: Array(trainer.optimizer.m.buffer),
                                v: Array(trainer.optimizer.v.buffer), step: trainer.step, cursor: trainer.trainCursor, state: state)
        snapshots.withLock { list in
            list.removeAll { $0.state.progress >= state.progress }
            list.append(snapshot)
            if list.count > 2 { list.removeFirst(list.count - 2) }
        }
    }

    /// Puts the state of round `progress` back into `trainer`; the strategy's state, or nil when
    /// that round is not held.
    func restore(progress: Int, into trainer: Trainer) -> StrategyState? {
        guard let s = snapshots.withLock({ $0.first { $0.state.progress == progress } }) else { return nil }
        for (values, slab) in [(s.parameters, trainer.model.parameters), (s.m, trainer.optimizer.m), (s.v, trainer.optimizer.v)] {
            _ = values.withUnsafeBufferPointer { slab.buffer.update(fromContentsOf: $0) }
        }
        trainer.restore(step: s.step, trainCursor: s.cursor)
        return s.state
    }
}
