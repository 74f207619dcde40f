import Foundation
import Synchronization
import Training

/// A worker's state at the end of its last two rounds, kept in memory across rings: when a peer
/// is lost, the others go back at most one round instead of to their last checkpoint on disk.
public final class RoundMemory: Sendable {
    /// A trainer's model, inner optimizer state, step and data position.
    struct TrainerState {
        var parameters: [Float]
        var m: [Float]
        var v: [Float]
        var step: Int
        var cursor: Int

        /// The trainer's state.
        init(of trainer: Trainer) {
            parameters = Array(trainer.model.parameters.buffer)
            m = Array(trainer.optimizer.m.buffer)
            v = Array(trainer.optimizer.v.buffer)
            step = trainer.step
            cursor = trainer.trainCursor
        }

        /// No state yet: storage that `capture` fills.
        init() {
            (parameters, m, v, step, cursor) = ([], [], [], 0, 0)
        }

        /// Overwrites this state with the trainer's, in the storage it already has (a round's
        /// snapshot would otherwise allocate and fault in three model-sized arrays every round).
        mutating func capture(_ trainer: Trainer, parameters shared: UnsafeBufferPointer<Float>?) {
            overwrite(&parameters, with: shared ?? UnsafeBufferPointer(trainer.model.parameters.buffer))
            overwrite(&m, with: UnsafeBufferPointer(trainer.optimizer.m.buffer))
            // Only the second moments updates use change (Muon's matrices, 60% of `v`, stay zero): the rest was
            // copied once, when this storage was filled.
            overwrite(&v, with: UnsafeBufferPointer(trainer.optimizer.v.buffer), only: trainer.optimizer.secondMomentRanges)
            step = trainer.step
            cursor = trainer.trainCursor
        }

        func restore(into trainer: Trainer) {
            for (values, slab) in [(parameters, trainer.model.parameters), (m, trainer.optimizer.m), (v, trainer.optimizer.v)] {
                _ = values.withUnsafeBufferPointer { slab.buffer.update(fromContentsOf: $0) }
            }
            trainer.restore(step: step, trainCursor: cursor)
        }
    }

    /// Everything a worker needs to redo the rounds after `state.progress`.
    struct Snapshot {
        var trainer: TrainerState
        var state: StrategyState

        /// Overwrites this snapshot in its own storage; the state's vectors are copied, not shared, so
        /// that the optimizer and the codec do not copy theirs on their next write.
        mutating func capture(_ trainer: Trainer, parameters shared: UnsafeBufferPointer<Float>?, state new: StrategyState) {
            self.trainer.capture(trainer, parameters: shared)
            var velocity = state.outerVelocity, residual = state.feedbackResidual
            state = new
            state.outerVelocity = copied(new.outerVelocity, into: &velocity)
            state.feedbackResidual = copied(new.feedbackResidual, into: &residual)
        }
    }

    /// A DiLoCo round whose inner steps were done when its all-reduce broke: the survivors of a lost peer
    /// finish it in their new ring instead of training it again.
    struct Pending {
        var round: Int
        var trainer: TrainerState
        var steps: Int
        var lossSum: Double
        var computeSeconds: Double
    }

    private let snapshots = Mutex<[Snapshot]>([])
    private let pending = Mutex<Pending?>(nil)
    /// Memory the two snapshots may take; a model too large for it is not remembered (a loss
    /// then goes back to the last checkpoint on disk).
    public let maxBytes: Int

    public init(maxBytes: Int = 1 << 30) {
        self.maxBytes = maxBytes
    }

    /// Progress of the snapshots held, newest first.
    public var progresses: [Int] { snapshots.withLock { $0.map(\.state.progress).sorted(by: >) } }

    /// Keeps the trainer's state at the end of the round `state.progress` (and the one before it),
    /// with `shared` as its parameters when given (the model holds this worker's own).
    public func remember(_ trainer: Trainer, parameters shared: UnsafeBufferPointer<Float>? = nil, state: StrategyState) {
        let values = 3 * trainer.model.parameters.count + state.valueCount
        guard 2 * 4 * values <= maxBytes else { return }
        // The oldest of two snapshots is overwritten in place; until there are two, a new one is filled.
        var snapshot = snapshots.withLock { list -> Snapshot? in
            list.removeAll { $0.state.progress >= state.progress }
            return list.count >= 2 ? list.removeFirst() : nil
        } ?? Snapshot(trainer: TrainerState(), state: StrategyState(progress: state.progress))
        snapshot.capture(trainer, parameters: shared, state: state)
        snapshots.withLock { $0.append(snapshot) }
        pending.withLock { if let p = $0, p.round < state.progress { $0 = nil } }
    }

    /// Keeps the trainer's state after round `round`'s inner steps (`steps` of them, their loss sum and
    /// compute seconds), before its all-reduce.
    func rememberPending(_ trainer: Trainer, round: Int, steps: Int, lossSum: Double, computeSeconds: Double) {
        guard 2 * 4 * 3 * trainer.model.parameters.count <= maxBytes else { return }
        let p = Pending(round: round, trainer: TrainerState(of: trainer), steps: steps, lossSum: lossSum, computeSeconds: computeSeconds)
        pending.withLock { $0 = p }
    }

    /// Whether round `round`'s inner steps are held.
    func holdsPending(round: Int) -> Bool { pending.withLock { $0?.round == round } }

    /// Puts the state after round `round`'s inner steps back into `trainer`; the steps, their loss sum and
    /// compute seconds, or nil when that round is not held.
    func restorePending(round: Int, into trainer: Trainer) -> (steps: Int, lossSum: Double, seconds: Double)? {
        guard let p = pending.withLock({ $0?.round == round ? $0 : nil }) else { return nil }
        p.trainer.restore(into: trainer)
        return (p.steps, p.lossSum, p.computeSeconds)
    }

    /// Puts the state of round `progress` back into `trainer`; the strategy's state, or nil when
    /// that round is not held.
    public func restore(progress: Int, into trainer: Trainer) -> StrategyState? {
        guard let s = snapshots.withLock({ $0.first { $0.state.progress == progress } }) else { return nil }
        s.trainer.restore(into: trainer)
        return s.state
    }
}

/// Copies `values` into `storage` (reusing it when the size matches) and returns it: a copy that
/// shares nothing with `values`.
private func copied(_ values: [Float]?, into storage: inout [Float]?) -> [Float]? {
    guard let values else { return nil }
    var kept = storage ?? []
    storage = nil
    values.withUnsafeBufferPointer { overwrite(&kept, with: $0) }
    return kept
}

/// Overwrites `values` with `source`, in place when the sizes match (then only the ranges `only`, when given).
private func overwrite(_ values: inout [Float], with source: UnsafeBufferPointer<Float>, only ranges: [Range<Int>]? = nil) {
    if values.count == source.count {
        values.withUnsafeMutableBufferPointer { values in
            for range in ranges ?? [0..<source.count] {
                (values.baseAddress! + range.lowerBound).update(from: source.baseAddress! + range.lowerBound, count: range.count)
            }
        }
    } else {
        values = [Float](unsafeUninitializedCapacity: source.count) { out, filled in
            _ = out.initialize(fromContentsOf: source)
            filled = source.count
        }
    }
}
