import Basics
import Collectives
import Coordination
import Dispatch
import Foundation
import Logging
import ModelCore
import TensorCore
import Training
import Wire

/// One worker's share of a multi-worker run: trains its own part of the data and combines its
/// work with its peers over `ring`, by DDP (gradients every step, `DDPRun.swift`) or DiLoCo
/// (pseudo-gradients every round, outer Nesterov SGD, `DiLoCoRun.swift`).
///
/// Every worker ends every round with bit-identical shared parameters: the ring's all-gather
/// hands every worker the same decoded values and the updates after it are deterministic.
public final class DistributedTrainer {
    public let trainer: Trainer
    public let name: String
    let strategy: StrategyConfig
    let throttle: any ComputeTiming
    let checkpoints: CheckpointStore?
    /// This worker's own state (inner optimizer, data position, strategy state), saved at every
    /// checkpoint so that the run can resume where it stopped.
    let workerState: CheckpointStore?
    /// The last rounds' state in memory, shared with the rings this worker forms after a loss.
    let memory: RoundMemory?
    let collectives: WorkerCollectives
    var computeSeconds = 0.0
    var tokens = 0
    private var start = DispatchTime.now().uptimeNanoseconds
    private var continuing = false
    /// Whether the shared model was saved since the last report (the report says so).
    private var savedCheckpoint = false
    /// Judges every round's all-reduced update before it reaches the shared model.
    var updateGuard = UpdateGuard()
    /// The last update the guard rejected, for the next report.
    private var rejection: UpdateRejection?
    /// A fault to inject on purpose (tests, demos of the guard).
    public var fault: FaultInjection?
    /// The ring's members' names in ring order, for naming a worker whose update was rejected.
    public var memberNames: [String] = []
    /// Asked after every round but the last: true when the ring should be formed anew (a worker
    /// joined), which ends `run` with `RingChange`.
    public var ringChanged: (@Sendable () -> Bool)?
    /// Whether this worker's round is stale (it did not run while the others went on without it):
    /// checked every inner step, so that it leaves the round at once.
    public var roundAbandoned: (@Sendable () -> Bool)?
    /// A worker joining a ring that trains: whatever it saved before is stale, so on resume it
    /// takes the others' state instead of offering its own.
    public var joinsRunningRing = false
    /// Ring position of the worker the coordinator named to hand its state to workers without
    /// any (see `RingView.stateSource`); nil when it named none.
    public var stateSource: Int?
    /// Every token this process trained on, kept across its rings (reports carry it).
    public var ledger: ComputeLedger?
    /// A DiLoCo round whose inner steps every worker of this ring holds (its all-reduce broke in the ring
    /// before): it is finished from round memory, not trained again.
    var finishesRound: Int?
    /// An engine outside this process that trains DiLoCo's inner steps instead of `trainer`
    /// (which then holds the shared model, validates and saves it).
    public var innerEngine: (any InnerEngine)?
    /// Links straight to other workers for handing state to the ones without any; nil in an
    /// in-process ring, which then hands it around the ring.
    public var directState: DirectStateTransfer?
    /// Where the worker says what it did besides training (state handed over).
    public var logger: Logger?

    public var ring: Ring { collectives.ring }

    /// `speed` emulates a slower device (see `ComputeThrottle`), unless `timing` says how long
    /// compute takes; `checkpoints` is given to the worker that saves the shared model (rank 0);
    /// `workerState` to every worker that keeps its own state for resuming.
    public init(config: TrainConfig, ring: Ring, name: String, speed: Double, checkpoints: CheckpointStore?,
                workerState: CheckpointStore? = nil, memory: RoundMemory? = nil, timing: (any ComputeTiming)? = nil) throws {
        guard let codec = CodecID(name: config.strategy.codec) else {
            throw ConfigError(field: "strategy.codec", reason: "unknown codec '\(config.strategy.codec)'; use fp32, fp16, bf16, int8, int4 or topk")
        }
        trainer = try Trainer(config: config)
        self.name = name
        strategy = config.strategy
        throttle = timing ?? ComputeThrottle(speed: speed)
        self.checkpoints = checkpoints
        self.workerState = workerState
        self.memory = memory
        collectives = WorkerCollectives(ring: ring, codec: codec, errorFeedback: config.strategy.errorFeedback,
                                        count: trainer.model.layout.count, seed: config.seed)
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
        let total = strategy.name == .ddp ? trainer.config.steps : strategy.rounds(steps: trainer.config.steps)
        if let saved, saved.progress >= total {
            throw ConfigError(field: "resume", reason: "the run already finished (\(saved.progress) of \(total) \(strategy.name == .ddp ? "steps" : "rounds") saved)")
        }
        switch strategy.name {
        case .ddp: return try await runDDP(from: saved, report: report)
        case .diloco: return try await runDiLoCo(from: saved, report: report)
        }
    }

    /// Where this worker's contiguous part of the training tokens begins.
    var shardStart: Int { ring.rank * (trainer.trainTokenCount / ring.size) }

    /// Keeps counting from an earlier ring of this worker (one that broke when a peer was lost):
    /// tokens, bytes, computing and waiting seconds, and time since `startedAt` (uptime ns).
    public func continueCounting(from report: WorkerReport, startedAt: UInt64) {
        tokens = report.tokens
        computeSeconds = report.computeSeconds
        collectives.continueCounting(bytesSent: report.bytesSent, bytesReceived: report.bytesReceived, waitSeconds: report.waitSeconds,
                                     peakRates: (report.peakBytesPerSecond ?? 0, report.peakBytesInASecond ?? 0))
        start = startedAt
        continuing = true
    }

    /// Remembers this round's state, and saves the shared model (rank 0) and this worker's own
    /// state when a checkpoint is due. `shared`: the shared parameters, when the model holds this
    /// worker's own (streaming or overlapped DiLoCo).
    func saveCheckpointIfDue(final: Bool, due: Bool, state: StrategyState, shared: [Float]? = nil) throws {
        var state = state
        state.feedbackResidual = collectives.feedback?.residual
        if let shared {
            shared.withUnsafeBufferPointer { memory?.remember(trainer, parameters: $0, state: state) }
        } else {
            memory?.remember(trainer, state: state)
        }
        guard final || due else { return }
        try withModel(holding: shared) {
            if let checkpoints {
                try checkpoints.save(trainer)
                savedCheckpoint = true
            }
            try workerState?.save(trainer, strategy: state.record())
        }
    }

    /// Runs `body` with the model holding `shared` (when given) in place of this worker's own
    /// parameters, which it then puts back.
    func withModel<T>(holding shared: [Float]?, _ body: () throws -> T) rethrows -> T {
        guard let shared else { return try body() }
        let parameters = trainer.model.parameters.buffer
        let own = Array(parameters)
        _ = shared.withUnsafeBufferPointer { parameters.update(fromContentsOf: $0) }
        defer { _ = own.withUnsafeBufferPointer { parameters.update(fromContentsOf: $0) } }
        return try body()
    }

    /// Validation loss of the shared parameters: each worker measures a share of the batches,
    /// in proportion to `work` (what each did in the last round, the same on every worker) when
    /// speeds differ, so that the fast do not wait for the slow; else an equal share.
    /// `shared`: the shared parameters, when the model holds this worker's own.
    func sharedValidationLoss(work: [Float]? = nil, shared: [Float]? = nil) async throws -> Double {
        let sums = FloatSlab(try await validationShare(work: work, shared: shared))
        try await collectives.allReduce(sums.buffer, codec: .fp32)
        return Double(sums.base[0] / sums.base[1])
    }

    /// This worker's share of the validation batches (see `sharedValidationLoss`): its loss sum and
    /// batch count, to be summed over the workers.
    func validationShare(work: [Float]?, shared: [Float]?) async throws -> [Float] {
        let batches = trainer.config.evaluation.batches
        let range = work.flatMap { $0.count == ring.size ? proportionalRanges(of: batches, weights: $0.map(Double.init))?[ring.rank] : nil }
        let (result, seconds) = try await throttle.run {
            try withModel(holding: shared) {
                try range.map { r in try trainer.validationLossSum { r.contains($0) } } ?? trainer.validationLossSum(part: ring.rank, of: ring.size)
            }
        }
        computeSeconds += seconds
        return [result.sum, Float(result.batches)]
    }

    /// Replaces the inner optimizer's state with its mean over the workers (DES-LOC's moment
    /// sync), in bf16: relative precision, because second moments span orders of magnitude
    /// inside a block, where a block-scaled int8 would zero the small ones (and blow up their steps).
    func averageOptimizerState() async throws {
        let scale = 1 / Float(ring.size)
        let m = trainer.optimizer.m, v = trainer.optimizer.v
        for i in 0..<m.count { m.base[i] *= scale }
        try await collectives.allReduce(m.buffer, codec: .bf16)
        // Only the second moments updates use travel: Muon's matrices leave theirs at zero (60% of them
        // in the default model), and the mean of zeros is zero.
        let ranges = trainer.optimizer.secondMomentRanges
        let used = FloatSlab(count: ranges.reduce(0) { $0 + $1.count })
        var k = 0
        for range in ranges { for i in range { used.base[k] = v.base[i] * scale; k += 1 } }
        try await collectives.allReduce(used.buffer, codec: .bf16)
        k = 0
        for range in ranges { for i in range { v.base[i] = used.base[k]; k += 1 } }
    }

    /// Checks this worker's own contribution before it is sent (a codec could hide a NaN in a
    /// finite sum): one that is not finite is dropped — replaced by zeros, the error-feedback
    /// residual that carries it cleared — and the report names this worker. Returns its norm.
    func screenOwnContribution(_ values: UnsafeMutableBufferPointer<Float>, round: Int) throws -> Float {
        if let fault, fault.round == round { fault.apply(to: values) }
        let norm = UpdateGuard.norm(UnsafeBufferPointer(values))
        guard !norm.isFinite else { return norm }
        values.initialize(repeating: 0)
        updateGuard.countOffence(ring.rank)
        try blame(round: round, reason: "not finite in \(name)'s own contribution, dropped before sending", named: [ring.rank])
        return 0
    }

    /// Records a rejection that named the workers at `named` (ring positions) for the next report;
    /// a named worker clears its error-feedback residual (it carries the poison), and one named
    /// too often stops.
    private func blame(round: Int, reason: String, named: [Int]) throws {
        if named.contains(ring.rank), let feedback = collectives.feedback {
            _ = feedback.restore(residual: [Float](repeating: 0, count: feedback.residual.count))
        }
        rejection = UpdateRejection(round: round, reason: reason,
                                    workers: named.map { $0 < memberNames.count ? memberNames[$0] : "rank \($0)" })
        if updateGuard.mustStop(ring.rank) {
            throw StrategyError.excluded(reason: "\(name)'s contribution was named in \(updateGuard.maxOffences) rejected updates "
                + "(the last: round \(round + 1), \(reason)); it stops so that the others go on without it")
        }
    }

    /// After the guard rejected round `round`'s update (`verdict`): the workers tell each other
    /// their own contribution's norm, which names the worker(s) to blame.
    func rejectUpdate(_ verdict: UpdateGuard.Verdict, ownNorm: Float, round: Int) async throws {
        let norms = try await collectives.exchangeAll([ownNorm]).map { $0[0] }
        let named = updateGuard.name(norms)
        let reason: String
        switch verdict {
        case .accepted: return
        case .notFinite: reason = "not finite"
        case let .outlier(norm, largest): reason = String(format: "norm %.3g, %.0f× the largest recent %.3g", norm, norm / largest, largest)
        }
        try blame(round: round, reason: reason, named: named)
    }

    /// The hash of the shared parameters: `shared` when given, else the model's.
    private func parameterHash(shared: [Float]?) -> String {
        var hasher = FNV1a()
        if let shared {
            shared.withUnsafeBytes { hasher.addWide($0) }
        } else {
            hasher.addWide(UnsafeRawBufferPointer(trainer.model.parameters.buffer))
        }
        return hex16(hasher.value)
    }

    /// This round's report; `shared`: the shared parameters, when the model holds this worker's own.
    func makeReport(round: Int, rounds: Int, loss: Double, validation: Double?, finished: Bool, shared: [Float]? = nil) -> WorkerReport {
        let totals = collectives.totals
        var report = WorkerReport(name: name, round: round, rounds: rounds, steps: trainer.step, tokens: tokens, loss: loss,
                                  validationLoss: validation, bytesSent: totals.bytesSent, bytesReceived: totals.bytesReceived,
                                  computeSeconds: computeSeconds, waitSeconds: collectives.waitSeconds,
                                  elapsedSeconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9,
                                  tokensPerComputeSecond: Double(tokens) / max(computeSeconds, 1e-9), finished: finished,
                                  parameterHash: parameterHash(shared: shared))
        report.checkpointSaved = savedCheckpoint ? true : nil
        report.computedTokens = ledger?.tokens
        (report.peakBytesPerSecond, report.peakBytesInASecond) = collectives.peakRates
        report.rejectedUpdate = rejection
        savedCheckpoint = false
        rejection = nil
        return report
    }
}

/// The coordinator changed the ring (a worker joined): form it anew and go on from the last
/// round every member completed.
public struct RingChange: Error, CustomStringConvertible {
    public init() {}
    public var description: String { "the ring changed: a worker joined" }
}
