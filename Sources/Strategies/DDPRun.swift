import Coordination
import Dispatch
import TensorCore
import Training

extension DistributedTrainer {
    /// DDP: every step, the gradients are averaged over workers before the optimizer step.
    ///
    /// With time rounds, every worker takes as many sequences as it can in the time the slowest
    /// takes for the config's batch plus its optimizer step (`DDPBalancer`), so that all finish
    /// a step together; gradients are weighted by sequences. Each worker's seconds per sequence
    /// and per optimizer step ride exactly beside its gradient in the same all-reduce, so every
    /// worker updates the same running averages and derives the same counts.
    func runDDP(from saved: StrategyState?, report: (WorkerReport) async -> Void) async throws -> WorkerReport {
        let config = trainer.config
        let gradients = trainer.model.gradients.buffer
        let n = ring.size, count = gradients.count
        let timed = strategy.round == .time
        var balancer = DDPBalancer(workers: n, baseSequences: config.batchSize * config.gradientAccumulation, saved: saved?.ddpSequences)
        var optimizerSeconds = 0.0
        let message = FloatSlab(count: count + (timed ? 2 * n : 0))
        var last: WorkerReport?
        for step in ((saved?.progress ?? 0) + 1)...config.steps {
            let stepStarted = DispatchTime.now().uptimeNanoseconds
            let mine = balancer.sequences[ring.rank]
            let (loss, c1) = try await throttle.run { try trainer.computeGradients(sequences: mine) }
            computeSeconds += c1
            let ownNorm = try screenOwnContribution(gradients, round: step - 1)
            if timed {
                let body = UnsafeMutableBufferPointer(rebasing: message.buffer[..<count])
                _ = body.update(fromContentsOf: gradients)
                for i in 0..<(2 * n) { message.base[count + i] = 0 }
                message.base[count + ring.rank] = Float(c1 / Double(mine))
                message.base[count + n + ring.rank] = Float(optimizerSeconds)
                try await collectives.average(message.buffer, weight: balancer.weight(of: ring.rank), exactTail: 2 * n)
                _ = gradients.update(fromContentsOf: body)
                balancer.record((0..<n).map {
                    DDPBalancer.Measurement(secondsPerSequence: Double(message.base[count + $0]), optimizerSeconds: Double(message.base[count + n + $0]))
                })
            } else {
                try await collectives.average(gradients, weight: 1 / Float(n))
            }
            // A rejected gradient is dropped: the step goes on with none (the optimizer's momentum
            // only), the same on every worker.
            let verdict = updateGuard.judge(UnsafeBufferPointer(gradients))
            if !verdict.isAccepted {
                gradients.initialize(repeating: 0)
                try await rejectUpdate(verdict, ownNorm: ownNorm, round: step - 1)
            }
            let (_, c2) = try await throttle.run { trainer.applyGradients() }
            computeSeconds += c2
            optimizerSeconds = c2
            tokens += mine * config.sequenceLength
            ledger?.add(mine * config.sequenceLength)
            let final = step == config.steps
            let interval = config.evaluation.interval
            let validation = try await (final || (interval > 0 && step % interval == 0)
                ? sharedValidationLoss(work: timed ? balancer.sequences.map(Float.init) : nil) : nil)
            try saveCheckpointIfDue(final: final, due: config.checkpoint.interval > 0 && step % config.checkpoint.interval == 0,
                                    state: StrategyState(progress: step, ddpSequences: timed ? balancer.sequences : nil))
            let r = makeReport(round: step - 1, rounds: config.steps, loss: Double(loss), validation: validation, finished: final)
            collectives.roundEnded(seconds: Double(DispatchTime.now().uptimeNanoseconds - stepStarted) / 1e9)
            await report(r)
            last = r
            if !final, ringChanged?() == true { throw RingChange() }
        }
        return last!
    }
}
