import Foundation
import TensorCore
import Training

extension DistributedTrainer {
    /// Agrees with the other workers on the newest progress every worker that saved state has,
    /// and loads this worker's state at it; nil when no worker saved any. Workers without saved
    /// state (added since, or joining a ring that trains) take the model, inner optimizer state,
    /// step and outer momentum of the source worker (`StateHandOff`), and read their own part of
    /// the data. Fewer workers than before simply leave out the missing ones' shares of the data.
    func restoreAgreedState() async throws -> StrategyState? {
        var mine: [(url: URL, state: StrategyState)] = []
        for url in joinsRunningRing ? [] : workerState?.checkpoints() ?? [] {
            // A damaged state is passed over, whole files checked before it is offered: the
            // others then go back to an older state this worker still has.
            guard (try? CheckpointStore.verifyFiles(at: url)) != nil, let record = try? CheckpointStore.strategyRecord(at: url),
                  let state = try? StrategyState(record: record, path: url.path) else { continue }
            mine.append((url, state))
        }
        let remembered = joinsRunningRing ? [] : memory?.progresses ?? []
        let offer = ResumeAgreement.Offer(held: mine.map(\.state.progress) + remembered, namedSource: stateSource)
        let offers = try await collectives.exchangeAll(offer.values).map { try ResumeAgreement.Offer(values: $0[...]) }
        let agreement = ResumeAgreement(offers: offers)
        // After a lost peer, the round that broke in its all-reduce is finished rather than trained again when
        // every worker holds its inner steps (a newcomer or one that fell behind does not: then it is redone).
        let next = agreement?.progress ?? 0
        let holds = !joinsRunningRing && memory?.holdsPending(round: next) == true
        let everyone = try await collectives.exchangeAll([holds ? 1 : 0])
        finishesRound = everyone.allSatisfy { $0.first == 1 } ? next : nil
        guard let agreement else { return nil }
        let agreed = agreement.progress
        var state: StrategyState?
        if !joinsRunningRing, let held = memory?.restore(progress: agreed, into: trainer) {
            state = held
        } else if let (url, saved) = mine.first(where: { $0.state.progress == agreed }) {
            try CheckpointStore.restore(from: url, into: trainer)
            state = saved
        }
        // A worker without the agreed state (none, or only older: it fell behind while away)
        // takes the source's below, like a newcomer.
        if let residual = state?.feedbackResidual, let feedback = collectives.feedback, !feedback.restore(residual: residual) {
            throw ConfigError(field: "resume", reason: "the saved error-feedback residual of round \(agreed) has the wrong size")
        }
        if agreement.someHaveNone {
            state = try await handOffState(from: agreement.source, mine: state, progress: agreed)
            // DDP's per-worker counts are not handed over: every worker starts again from the
            // config's batch, so that all derive the same weights.
            state?.ddpSequences = nil
        }
        return state ?? StrategyState(progress: agreed)
    }

    /// Hands the state of the worker at ring position `source` to the workers that have none
    /// (`mine` nil): one exact fp32 sum of the source's state with zeros from everyone else
    /// (`StateHandOff`). Returns this worker's strategy state afterwards.
    private func handOffState(from source: Int, mine: StrategyState?, progress: Int) async throws -> StrategyState? {
        let model = trainer.model, optimizer = trainer.optimizer
        let message = FloatSlab(count: StateHandOff.messageCount(parameters: model.layout.count))
        if ring.rank == source {
            StateHandOff.pack(into: message.buffer, parameters: UnsafeBufferPointer(model.parameters.buffer),
                              m: UnsafeBufferPointer(optimizer.m.buffer), v: UnsafeBufferPointer(optimizer.v.buffer),
                              step: trainer.step, state: mine)
        }
        // The slab must outlive the pointers into it, not just its own last use.
        defer { withExtendedLifetime(message) {} }
        try await collectives.allReduce(message.buffer, codec: .fp32)
        // Workers with state of their own keep it (their G is the same); the others take the source's.
        guard ring.rank != source, mine == nil else { return mine }
        let taken = try StateHandOff.unpack(UnsafeBufferPointer(message.buffer), parameters: model.parameters.buffer,
                                            m: optimizer.m.buffer, v: optimizer.v.buffer)
        trainer.restore(step: taken.step, trainCursor: shardStart)
        return StrategyState(progress: progress, previousTotalTokens: taken.previousTotalTokens, roundBudgetSeconds: taken.roundBudgetSeconds,
                             outerVelocity: taken.outerVelocity)
    }
}
