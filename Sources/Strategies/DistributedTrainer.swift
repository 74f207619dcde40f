import Basics
import Collectives
import Coordination
import Dispatch
import Foundation
import ModelCore
import TensorCore
import Training
import Wire

/// One worker's share of a multi-worker run: trains its own part of the data and combines its
/// work with its peers over `ring`, by DDP (gradients every step) or DiLoCo (pseudo-gradients
/// every round, outer Nesterov SGD).
///
/// Every worker ends every round with bit-identical shared parameters: the ring's all-gather
/// hands every worker the same decoded values and the updates after it are deterministic.
public final class DistributedTrainer {
    public let trainer: Trainer
    public let ring: Ring
    public let name: String
    let strategy: StrategyConfig
    let codec: CodecID
    let throttle: ComputeThrottle
    let checkpoints: CheckpointStore?
    /// This worker's own state (inner optimizer, data position, strategy vectors), saved at
    /// every checkpoint so that the run can resume where it stopped.
    let workerState: CheckpointStore?
    /// The last rounds' state in memory, shared with the rings this worker forms after a loss.
    let memory: RoundMemory?
    let feedback: ErrorFeedback?
    private var random: LaneRandom
    /// Frame round of the next collective: the same sequence on every worker.
    private var collectiveRound: UInt64 = 0
    private var totals = CollectiveStats()
    private var computeSeconds = 0.0
    private var waitSeconds = 0.0
    private var tokens = 0
    private var start = DispatchTime.now().uptimeNanoseconds
    private var continuing = false
    /// Asked after every round but the last: true when the ring should be formed anew (a worker
    /// joined), which ends `run` with `RingChange`.
    public var ringChanged: (@Sendable () -> Bool)?
    /// A worker joining a ring that trains: whatever it saved before is stale, so on resume it
    /// takes the others' state instead of offering its own.
    public var joinsRunningRing = false
    /// Ring position of the worker the coordinator named to hand its state to workers without
    /// any (see `RingView.stateSource`); nil when it named none.
    public var stateSource: Int?

    /// `speed` emulates a slower device (see `ComputeThrottle`); `checkpoints` is given to the
    /// worker that saves the shared model (rank 0); `workerState` to every worker that keeps
    /// its own state for resuming.
    public init(config: TrainConfig, ring: Ring, name: String, speed: Double, checkpoints: CheckpointStore?,
                workerState: CheckpointStore? = nil, memory: RoundMemory? = nil) throws {
        guard let codec = CodecID(name: config.strategy.codec) else {
            throw ConfigError(field: "strategy.codec", reason: "unknown codec '\(config.strategy.codec)'; use fp32, fp16, bf16, int8, int4 or topk")
        }
        self.codec = codec
        trainer = try Trainer(config: config)
        self.ring = ring
        self.name = name
        strategy = config.strategy
        throttle = ComputeThrottle(speed: speed)
        self.checkpoints = checkpoints
        self.workerState = workerState
        self.memory = memory
        let lossy = codec != .fp32
        feedback = lossy ? ErrorFeedback(count: trainer.model.layout.count, beta: config.strategy.errorFeedback) : nil
        random = LaneRandom(seed: config.seed &+ UInt64(ring.rank) &* 7919)
        // Each worker reads its own contiguous part of the training tokens.
        trainer.restore(step: 0, trainCursor: shardStart)
    }

    /// Trains to the config's end, calling `report` after every round (every step for DDP).
    /// With `resume`, the workers first agree on the newest round every one of them saved and
    /// go on from there.
    @discardableResult
    public func run(resume: Bool = false, report: (WorkerReport) async -> Void) async throws -> WorkerReport {
        if !continuing { start = DispatchTime.now().uptimeNanoseconds }
        let saved = resume ? try await restoreAgreedState() : nil
        let total = strategy.name == .ddp ? trainer.config.steps : (trainer.config.steps + strategy.innerSteps - 1) / strategy.innerSteps
        if let saved, saved.progress >= total {
            throw ConfigError(field: "resume", reason: "the run already finished (\(saved.progress) of \(total) \(strategy.name == .ddp ? "steps" : "rounds") saved)")
        }
        switch strategy.name {
        case .ddp: return try await runDDP(from: saved, report: report)
        case .diloco: return try await runDiLoCo(from: saved, report: report)
        }
    }

    /// Where this worker's contiguous part of the training tokens begins.
    private var shardStart: Int { ring.rank * (trainer.trainTokenCount / ring.size) }

    /// Keeps counting from an earlier ring of this worker (one that broke when a peer was lost):
    /// tokens, bytes, computing and waiting seconds, and time since `startedAt` (uptime ns).
    public func continueCounting(from report: WorkerReport, startedAt: UInt64) {
        tokens = report.tokens
        computeSeconds = report.computeSeconds
        waitSeconds = report.waitSeconds
        totals.bytesSent = report.bytesSent
        totals.bytesReceived = report.bytesReceived
        start = startedAt
        continuing = true
    }

    /// Strategy state saved beside a worker's checkpoint: how far it got (steps for DDP, rounds
    /// for DiLoCo) and the vectors the strategy keeps between rounds.
    public struct SavedState {
        public var progress: Int
        public var vectors: [String: [Float]]
    }

    /// Agrees with the other workers on the newest progress every worker that saved state has,
    /// and loads this worker's state at it; nil when no worker saved any. Workers without saved
    /// state (added since) take the model, inner optimizer state, step and outer momentum of the
    /// first worker that has some, through one exact fp32 all-reduce (its values plus zeros),
    /// and read their own part of the data. Fewer workers than before simply leave out the
    /// missing ones' shares of the data.
    private func restoreAgreedState() async throws -> SavedState? {
        var mine: [(url: URL, state: SavedState)] = []
        for url in joinsRunningRing ? [] : workerState?.checkpoints() ?? [] {
            guard let vectors = try? CheckpointStore.strategyState(at: url), let p = vectors["progress"]?.first else { continue }
            mine.append((url, SavedState(progress: Int(p), vectors: vectors)))
        }
        let remembered = joinsRunningRing ? [] : memory?.progresses ?? []
        // Every worker offers its newest progress and the source its view of the ring names;
        // rank 0's view decides, so that all take the same source even if their views differed.
        let offers = try await exchangeAll([Float(max(mine.first?.state.progress ?? 0, remembered.first ?? 0)), Float(stateSource ?? -1)])
        let newest = offers.map { $0[0] }
        guard let lowest = newest.filter({ $0 > 0 }).min(), let first = newest.firstIndex(where: { $0 > 0 }) else { return nil }
        let named = Int(offers[0][1])
        let source = newest.indices.contains(named) && newest[named] > 0 ? named : first
        let agreed = Int(lowest)
        var state = SavedState(progress: agreed, vectors: [:])
        if !joinsRunningRing, let vectors = memory?.restore(progress: agreed, into: trainer) {
            state.vectors = vectors
        } else if !mine.isEmpty || !remembered.isEmpty {
            guard let (url, saved) = mine.first(where: { $0.state.progress == agreed }) else {
                throw ConfigError(field: "resume", reason: "\(name) has no saved state at \(agreed), the newest every worker has (its own: \(mine.map(\.state.progress)) on disk, \(remembered) in memory)")
            }
            try CheckpointStore.restore(from: url, into: trainer)
            state = saved
        }
        if let residual = state.vectors["feedback.residual"], let feedback, !feedback.restore(residual: residual) {
            throw ConfigError(field: "resume", reason: "the saved error-feedback residual of round \(agreed) has the wrong size")
        }
        if newest.contains(0) { try await shareState(from: source, into: &state) }
        return state
    }

    /// Hands the state of the worker at ring position `source` to the workers that have none:
    /// parameters, AdamW moments, outer momentum and step, summed with zeros from everyone else.
    private func shareState(from source: Int, into state: inout SavedState) async throws {
        let model = trainer.model, optimizer = trainer.optimizer
        let count = model.layout.count
        let message = FloatSlab(count: 4 * count + 1)
        let receiving = ring.rank != source
        if !receiving {
            let velocity = state.vectors["outer.velocity"] ?? [Float](repeating: 0, count: count)
            for (k, slab) in [model.parameters, optimizer.m, optimizer.v].enumerated() {
                _ = UnsafeMutableBufferPointer(rebasing: message.buffer[(k * count)..<((k + 1) * count)]).update(fromContentsOf: slab.buffer)
            }
            _ = velocity.withUnsafeBufferPointer { UnsafeMutableBufferPointer(rebasing: message.buffer[(3 * count)..<(4 * count)]).update(fromContentsOf: $0) }
            message.base[4 * count] = Float(trainer.step)
        }
        try await allReduce(message.buffer, codec: .fp32)
        // Workers with state of their own keep it (their G is the same); the others take the source's.
        guard receiving, state.vectors.isEmpty else { return }
        for (k, slab) in [model.parameters, optimizer.m, optimizer.v].enumerated() {
            _ = slab.buffer.update(fromContentsOf: UnsafeBufferPointer(rebasing: message.buffer[(k * count)..<((k + 1) * count)]))
        }
        state.vectors["outer.velocity"] = Array(message.buffer[(3 * count)..<(4 * count)])
        trainer.restore(step: Int(message.base[4 * count]), trainCursor: shardStart)
    }

    /// Remembers this round's state, and saves the shared model (rank 0) and this worker's own
    /// state when a checkpoint is due.
    private func saveCheckpointIfDue(final: Bool, due: Bool, progress: Int, strategyVectors: [(name: String, values: [Float])] = []) throws {
        var vectors = [(name: "progress", values: [Float(progress)])] + strategyVectors
        if let feedback { vectors.append((name: "feedback.residual", values: feedback.residual)) }
        memory?.remember(trainer, progress: progress, vectors: Dictionary(vectors.map { ($0.name, $0.values) }) { a, _ in a })
        guard final || due else { return }
        try checkpoints?.save(trainer)
        try workerState?.save(trainer, strategy: vectors)
    }

    // MARK: DDP

    private func runDDP(from saved: SavedState?, report: (WorkerReport) async -> Void) async throws -> WorkerReport {
        let config = trainer.config
        let gradients = trainer.model.gradients.buffer
        var last: WorkerReport?
        // With time rounds, every worker takes as many sequences as it can in the time the
        // slowest takes for the config's batch plus its optimizer step, so that all finish a
        // step together; gradients are weighted by sequences. Each worker's seconds per sequence
        // and per optimizer step ride exactly beside its gradient in the same all-reduce, so
        // every worker updates the same running averages and derives the same counts.
        let base = config.batchSize * config.gradientAccumulation
        let key = "ddp.sequences"
        let n = ring.size, count = gradients.count
        let timed = strategy.round == .time
        var counts = [Int](repeating: base, count: n)
        if let balanced = saved?.vectors[key], balanced.count == n { counts = balanced.map { Int($0) } }
        var speeds: [(sequence: Double, optimizer: Double)]?
        var optimizerSeconds = 0.0
        let message = FloatSlab(count: count + (timed ? 2 * n : 0))
        for step in ((saved?.progress ?? 0) + 1)...config.steps {
            let mine = counts[ring.rank]
            let (loss, c1) = try await throttle.run { try trainer.computeGradients(sequences: mine) }
            computeSeconds += c1
            if timed {
                let body = UnsafeMutableBufferPointer(rebasing: message.buffer[..<count])
                _ = body.update(fromContentsOf: gradients)
                for i in 0..<(2 * n) { message.base[count + i] = 0 }
                message.base[count + ring.rank] = Float(c1 / Double(mine))
                message.base[count + n + ring.rank] = Float(optimizerSeconds)
                try await average(message.buffer, weight: Float(mine) / Float(counts.reduce(0, +)), exactTail: 2 * n)
                _ = gradients.update(fromContentsOf: body)
                let measured = (0..<n).map { (Double(message.base[count + $0]), Double(message.base[count + n + $0])) }
                speeds = speeds.map { zip($0, measured).map { (0.7 * $0.0 + 0.3 * $1.0, 0.7 * $0.1 + 0.3 * $1.1) } } ?? measured
                let step = speeds!.map { Double(base) * $0.sequence + $0.optimizer }.max()!
                counts = speeds!.map { max(1, Int(((step - $0.optimizer) / max($0.sequence, 1e-12)).rounded())) }
            } else {
                try await average(gradients, weight: 1 / Float(n))
            }
            let (_, c2) = try await throttle.run { trainer.applyGradients() }
            computeSeconds += c2
            optimizerSeconds = c2
            tokens += mine * config.sequenceLength
            let final = step == config.steps
            let interval = config.evaluation.interval
            let validation = try await (final || (interval > 0 && step % interval == 0)
                ? sharedValidationLoss(work: timed ? counts.map(Float.init) : nil) : nil)
            try saveCheckpointIfDue(final: final, due: config.checkpoint.interval > 0 && step % config.checkpoint.interval == 0, progress: step,
                                    strategyVectors: timed ? [(name: key, values: counts.map(Float.init))] : [])
            let r = makeReport(round: step - 1, rounds: config.steps, loss: Double(loss), validation: validation, finished: final)
            await report(r)
            last = r
            if !final, ringChanged?() == true { throw RingChange() }
        }
        return last!
    }

    // MARK: DiLoCo

    /// A round's all-reduce running in the background (overlapped DiLoCo).
    private struct InFlight {
        let task: Task<CollectiveStats, any Error>
        let message: FloatSlab
        let guess: Float
    }

    private func runDiLoCo(from saved: SavedState?, report: (WorkerReport) async -> Void) async throws -> WorkerReport {
        let config = trainer.config
        let h = strategy.innerSteps
        let rounds = (config.steps + h - 1) / h
        let parameters = trainer.model.parameters.buffer
        let n = ring.size, count = parameters.count
        // The pseudo-gradient, then (time rounds) every worker's tokens and mean step time,
        // which travel exactly beside it in the same all-reduce.
        let timed = strategy.round == .time
        let tail = timed ? 2 * n : 0
        // G, the shared parameters (bit-identical on every worker), and S, where this worker's
        // round started: G itself, or with overlap G plus this worker's own unsynced progress.
        var global = Array(parameters)
        var start = global
        var outer = NesterovSGD(count: parameters.count, learningRate: strategy.outerLearningRate, momentum: strategy.outerMomentum)
        let evaluateEvery = config.evaluation.interval > 0 ? max(1, config.evaluation.interval / h) : Int.max
        let checkpointEvery = config.checkpoint.interval > 0 ? max(1, config.checkpoint.interval / h) : Int.max
        var budget: Double?
        var previousTotal: Int?
        var lastWork: [Float]?
        var inFlight: InFlight?
        var last: WorkerReport?
        if let saved {
            // Resuming: G is in the model (restored), with the outer momentum and the round
            // budget as they were when it was saved.
            if let velocity = saved.vectors["outer.velocity"], !outer.restore(velocity: velocity) {
                throw ConfigError(field: "resume", reason: "the saved outer momentum has the wrong size")
            }
            previousTotal = saved.vectors["previousTotal"]?.first.map { Int($0) }
            budget = saved.vectors["budget"]?.first.map(Double.init)
        }

        /// Applies an all-reduced message to G: undo the weight guess, outer step, next budget.
        func apply(_ message: FloatSlab, guess: Float) {
            let pseudo = UnsafeMutableBufferPointer(rebasing: message.buffer[..<count])
            if timed {
                let total = message.buffer[count..<(count + n)].reduce(0, +)
                let correction = guess / total
                for i in 0..<count { pseudo[i] *= correction }
                previousTotal = Int(total)
                lastWork = Array(message.buffer[count..<(count + n)])
                // The next round lasts `innerSteps` steps of the fastest worker.
                budget = Double(h) * Double(message.buffer[(count + n)...].min()!)
            }
            global.withUnsafeMutableBufferPointer { outer.step(parameters: $0, gradient: UnsafeBufferPointer(pseudo)) }
        }

        for round in (saved?.progress ?? 0)..<rounds {
            // Inner steps: a fixed count, or as many as fit the round's time budget.
            let fixed = min(h, config.steps - round * h)
            var steps = 0, lossSum = 0.0, roundCompute = 0.0
            while true {
                let ((loss, _, _), seconds) = try await throttle.run { try trainer.trainStep() }
                steps += 1
                lossSum += Double(loss)
                roundCompute += seconds
                if timed && budget == nil {
                    // The first round's budget comes from everyone's first step.
                    budget = Double(h) * (try await exchange(tokens: 0, stepSeconds: seconds)).fastestStep
                }
                if let budget {
                    if roundCompute + roundCompute / Double(steps) > budget { break }
                } else if steps == fixed {
                    break
                }
            }
            computeSeconds += roundCompute
            let roundTokens = steps * config.tokensPerStep
            tokens += roundTokens

            // This round's progress, weighted: equal weights when every worker took the same
            // steps, else by tokens. The total is known only after the all-reduce, so scale by
            // the previous round's total now and correct afterwards (it keeps the
            // error-feedback residual in stable units).
            let guess = Float(previousTotal ?? roundTokens * n)
            let weight = timed ? Float(roundTokens) / guess : 1 / Float(n)
            let message = FloatSlab(count: count + tail)
            let pseudo = UnsafeMutableBufferPointer(rebasing: message.buffer[..<count])
            let progress = [Float](unsafeUninitializedCapacity: count) { out, filled in
                start.withUnsafeBufferPointer { s in for i in 0..<count { out[i] = s[i] - parameters[i] } }
                filled = count
            }
            for i in 0..<count { pseudo[i] = progress[i] * weight }
            if timed {
                message.base[count + ring.rank] = Float(roundTokens)
                message.base[count + n + ring.rank] = Float(roundCompute / Double(steps))
            }
            if let feedback { try feedback.compress(pseudo, codec: codec.codec, rounding: .nearest, random: &random) }

            // Last round's exchange, if it ran in the background, lands in G now.
            if let pending = inFlight {
                let waitStart = DispatchTime.now().uptimeNanoseconds
                let stats = try await pending.task.value
                waitSeconds += Double(DispatchTime.now().uptimeNanoseconds - waitStart) / 1e9
                totals.bytesSent += stats.bytesSent
                totals.bytesReceived += stats.bytesReceived
                apply(pending.message, guess: pending.guess)
                inFlight = nil
            }
            let final = round == rounds - 1
            let evaluate = final || (round + 1) % evaluateEvery == 0
            let save = (round + 1) % checkpointEvery == 0
            let overlapped = strategy.overlap && !final
            if !overlapped {
                try await allReduce(message.buffer, codec: codec, exactTail: tail)
                apply(message, guess: guess)
            }
            // Validation, checkpoint and the reported hash are of G, the same on every worker
            // (with overlap, G lags this round's progress, which is still on its way). They run
            // before the background all-reduce starts: nothing else may use the ring meanwhile.
            _ = global.withUnsafeBufferPointer { parameters.update(fromContentsOf: $0) }
            let validation = try await evaluate ? sharedValidationLoss(work: lastWork) : nil
            try saveCheckpointIfDue(final: final, due: save, progress: round + 1,
                                    strategyVectors: [(name: "outer.velocity", values: outer.velocity)]
                                        + (previousTotal.map { [(name: "previousTotal", values: [Float($0)])] } ?? [])
                                        + (budget.map { [(name: "budget", values: [Float($0)])] } ?? []))
            let r = makeReport(round: round, rounds: rounds, loss: lossSum / Double(steps), validation: validation, finished: final)
            if overlapped {
                // Send this round's progress in the background and go on from G plus it.
                inFlight = InFlight(task: launch(message, exactTail: tail), message: message, guess: guess)
                for i in 0..<count { start[i] = global[i] - progress[i] }
                _ = start.withUnsafeBufferPointer { parameters.update(fromContentsOf: $0) }
            } else {
                start = global
            }
            await report(r)
            last = r
            if !final, ringChanged?() == true {
                if let pending = inFlight { _ = try? await pending.task.value }
                throw RingChange()
            }
        }
        return last!
    }

    /// Starts an all-reduce of `message` that runs while this worker computes. Its frames use
    /// the next collective round number; nothing else uses the ring until it is awaited.
    private func launch(_ message: FloatSlab, exactTail: Int) -> Task<CollectiveStats, any Error> {
        let ring = self.ring, codec = self.codec, round = collectiveRound
        collectiveRound += 1
        let random = LaneRandom(seed: UInt64(ring.rank) &* 0x9E37_79B9 &+ round)
        return Task {
            var random = random
            return try await sumAcrossWorkers(message.buffer, on: ring, codec: codec, exactTail: exactTail, round: round, random: &random)
        }
    }

    // MARK: Shared pieces

    /// Scales `vector` by `weight` and replaces it with the sum over workers, through the
    /// run's codec (with error feedback when the codec is lossy); its last `exactTail` values
    /// are summed as they are, in fp32.
    private func average(_ vector: UnsafeMutableBufferPointer<Float>, weight: Float, exactTail: Int = 0) async throws {
        let body = UnsafeMutableBufferPointer(rebasing: vector[..<(vector.count - exactTail)])
        if weight != 1 { for i in 0..<body.count { body[i] *= weight } }
        if let feedback { try feedback.compress(body, codec: codec.codec, rounding: .nearest, random: &random) }
        try await allReduce(vector, codec: codec, exactTail: exactTail)
    }

    /// `sumAcrossWorkers` in the foreground, counted as waiting.
    private func allReduce(_ vector: UnsafeMutableBufferPointer<Float>, codec: CodecID, exactTail: Int = 0) async throws {
        let stats = try await sumAcrossWorkers(vector, on: ring, codec: codec, exactTail: exactTail, round: collectiveRound, random: &random)
        collectiveRound += 1
        totals += stats
        waitSeconds += stats.seconds
    }

    /// Every worker's `values`, in ring order.
    private func exchangeAll(_ values: [Float]) async throws -> [[Float]] {
        let k = values.count
        let shared = FloatSlab(count: ring.size * k)
        for (i, v) in values.enumerated() { shared.base[ring.rank * k + i] = v }
        try await allReduce(shared.buffer, codec: .fp32)
        return (0..<ring.size).map { Array(shared.buffer[($0 * k)..<(($0 + 1) * k)]) }
    }

    /// Shares this worker's tokens and mean step time: returns the total tokens and the
    /// fastest worker's step time.
    private func exchange(tokens: Int, stepSeconds: Double) async throws -> (tokens: Int, fastestStep: Double) {
        let all = try await exchangeAll([Float(tokens), Float(stepSeconds)])
        return (Int(all.map { $0[0] }.reduce(0, +)), Double(all.map { $0[1] }.min()!))
    }

    /// Validation loss of the shared parameters: each worker measures a share of the batches,
    /// in proportion to `work` (what each did in the last round, the same on every worker) when
    /// speeds differ, so that the fast do not wait for the slow; else an equal share.
    private func sharedValidationLoss(work: [Float]? = nil) async throws -> Double {
        let batches = trainer.config.evaluation.batches
        let range = work.flatMap { $0.count == ring.size ? proportionalRanges(of: batches, weights: $0.map(Double.init))?[ring.rank] : nil }
        let (result, seconds) = try await throttle.run {
            try range.map { r in try trainer.validationLossSum { r.contains($0) } } ?? trainer.validationLossSum(part: ring.rank, of: ring.size)
        }
        computeSeconds += seconds
        let sums = FloatSlab([result.sum, Float(result.batches)])
        try await allReduce(sums.buffer, codec: .fp32)
        return Double(sums.base[0] / sums.base[1])
    }

    private func parameterHash() -> String {
        var hasher = FNV1a()
        hasher.add(UnsafeRawBufferPointer(trainer.model.parameters.buffer))
        return hex16(hasher.value)
    }


    private func makeReport(round: Int, rounds: Int, loss: Double, validation: Double?, finished: Bool) -> WorkerReport {
        WorkerReport(name: name, round: round, rounds: rounds, steps: trainer.step, tokens: tokens, loss: loss, validationLoss: validation,
                     bytesSent: totals.bytesSent, bytesReceived: totals.bytesReceived, computeSeconds: computeSeconds,
                     waitSeconds: waitSeconds, elapsedSeconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9,
                     tokensPerComputeSecond: Double(tokens) / max(computeSeconds, 1e-9), finished: finished,
                     parameterHash: parameterHash())
    }
}

/// Sums `vector` over workers: a ring all-reduce, or for sparse codecs an all-gather of each
/// worker's encoding (re-sparsifying partial sums at every hop would lose most of them).
private func sumAcrossWorkers(_ vector: UnsafeMutableBufferPointer<Float>, on ring: Ring, codec: CodecID, exactTail: Int, round: UInt64,
                              random: inout LaneRandom) async throws -> CollectiveStats {
    codec.isSparse
        ? try await ring.allGatherSum(vector, codec: codec, exactTail: exactTail, round: round, random: &random)
        : try await ring.allReduceSum(vector, codec: codec, exactTail: exactTail, round: round, random: &random)
}

/// The coordinator changed the ring (a worker joined): form it anew and go on from the last
/// round every member completed.
public struct RingChange: Error, CustomStringConvertible {
    public init() {}
    public var description: String { "the ring changed: a worker joined" }
}
