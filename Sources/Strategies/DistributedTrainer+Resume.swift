import Dispatch
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
            let takers = Set(offers.indices.filter { !offers[$0].held.contains(agreed) })
            state = try await handOffState(from: agreement.source, to: takers, mine: state, progress: agreed)
            // DDP's per-worker counts are not handed over: every worker starts again from the
            // config's batch, so that all derive the same weights.
            state?.ddpSequences = nil
        }
        return state ?? StrategyState(progress: agreed)
    }

    /// Hands the state of the worker at ring position `source` to the workers that have none
    /// (`takers`): straight from the source to each taker in checksummed chunks (`DirectStateTransfer`)
    /// where the ring runs on sockets; in an in-process ring, one exact fp32 sum of the source's state
    /// with zeros from everyone else. Returns this worker's strategy state afterwards.
    private func handOffState(from source: Int, to takers: Set<Int>, mine: StrategyState?, progress: Int) async throws -> StrategyState? {
        let model = trainer.model, optimizer = trainer.optimizer
        let message = FloatSlab(count: StateHandOff.messageCount(parameters: model.layout.count))
        if ring.rank == source {
            StateHandOff.pack(into: message.buffer, parameters: UnsafeBufferPointer(model.parameters.buffer),
                              m: UnsafeBufferPointer(optimizer.m.buffer), v: UnsafeBufferPointer(optimizer.v.buffer),
                              step: trainer.step, state: mine)
        }
        // The slab must outlive the pointers into it, not just its own last use.
        defer { withExtendedLifetime(message) {} }
        guard let direct = directState else {
            try await collectives.allReduce(message.buffer, codec: .fp32)
            return try takeHandedOffState(message, from: source, mine: mine, progress: progress)
        }
        let started = DispatchTime.now().uptimeNanoseconds
        func seconds() -> Double { Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9 }
        let megabytes = { (bytes: Int) in String(format: "%.1f MB", Double(bytes) / 1e6) }
        if ring.rank == source {
            let sent = try await direct.serve(UnsafeBufferPointer(message.buffer), to: takers, timeout: ring.timeout)
            collectives.countDirect(sent: sent, received: 0, seconds: seconds())
            logger?.info("handed this worker's state to ranks \(takers.sorted()): \(megabytes(sent)) in \(String(format: "%.2f", seconds())) s")
            return mine
        }
        guard takers.contains(ring.rank) else { return mine }
        let received = try await direct.download(from: source, into: message.buffer, timeout: ring.timeout)
        collectives.countDirect(sent: 0, received: received, seconds: seconds())
        logger?.info("took the state of rank \(source) ('\(direct.names[source])'): \(megabytes(received)) in \(String(format: "%.2f", seconds())) s")
        return try takeHandedOffState(message, from: source, mine: nil, progress: progress)
    }

    /// This worker's strategy state after a hand-off of `message`: its own if it has one, else the source's.
    private func takeHandedOffState(_ message: FloatSlab, from source: Int, mine: StrategyState?, progress: Int) throws -> StrategyState? {
        let model = trainer.model, optimizer = trainer.optimizer
        // Workers with state of their own keep it (their G is the same); the others take the source's.
        guard ring.rank != source, mine == nil else { return mine }
        let taken = try StateHandOff.unpack(UnsafeBufferPointer(message.buffer), parameters: model.parameters.buffer,
                                            m: optimizer.m.buffer, v: optimizer.v.buffer)
        trainer.restore(step: taken.step, trainCursor: shardStart)
        return StrategyState(progress: progress, previousTotalTokens: taken.previousTotalTokens, roundBudgetSeconds: taken.roundBudgetSeconds,
                             outerVelocity: taken.outerVelocity)
    }
}
