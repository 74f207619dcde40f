import Foundation

/// What is trained: batch, precision, optimizer state, total tokens.
public struct TrainingSpec: Codable, Sendable, Equatable {
    /// Sequences per optimizer step, all devices together.
    public var globalBatchSequences: Int
    /// Bytes per weight and per gradient as stored for compute (2 for BF16/FP16).
    public var weightBytes: Double = 2
    public var gradientBytes: Double = 2
    /// Optimizer state per parameter: FP32 master weights and Adam's two moments = 12 bytes.
    public var optimizerBytesPerParameter: Double = 12
    /// Tokens to train on in total (for time-to-train).
    public var totalTokens: Double = 0

    public init(globalBatchSequences: Int, totalTokens: Double = 0) {
        self.globalBatchSequences = globalBatchSequences
        self.totalTokens = totalTokens
    }
}

/// A layout of one group of identical devices: tensor parallel inside a node, pipeline stages,
/// data-parallel replicas, sequences per micro-batch, activation recomputation, and whether the
/// optimizer state is sharded across replicas (ZeRO-1).
public struct GroupLayout: Codable, Sendable, Equatable, Hashable {
    public var tensorParallel: Int
    public var pipelineStages: Int
    public var dataParallel: Int
    public var microBatch: Int
    public var recompute: Bool
    public var shardOptimizer: Bool

    public init(tensorParallel: Int, pipelineStages: Int, dataParallel: Int, microBatch: Int, recompute: Bool, shardOptimizer: Bool = false) {
        self.tensorParallel = tensorParallel
        self.pipelineStages = pipelineStages
        self.dataParallel = dataParallel
        self.microBatch = microBatch
        self.recompute = recompute
        self.shardOptimizer = shardOptimizer
    }

    public var devices: Int { tensorParallel * pipelineStages * dataParallel }

    /// Layers of each pipeline stage, in order: an even split, the first `L mod p` stages one
    /// layer larger. Every layer sits on exactly one stage.
    public func layersPerStage(layers: Int) -> [Int] {
        let p = pipelineStages
        return (0..<p).map { layers / p + ($0 < layers % p ? 1 : 0) }
    }
}

/// One site's devices with the catalogue and the site's overrides applied.
public struct SiteResources: Sendable, Equatable {
    public var name: String
    public var device: DeviceSpec
    public var count: Int
    public var devicesPerNode: Int
    /// Bytes/s per device inside a node, one direction.
    public var intraNodeBytesPerSecond: Double
    /// Bytes/s per device between nodes of the site.
    public var nicBytesPerSecond: Double
    public var latency: Double

    public init(site: SiteSpec, catalogue: DeviceCatalogue) throws {
        let d = try catalogue.device(named: site.device)
        name = site.name
        device = d
        count = site.count
        devicesPerNode = site.devicesPerNode ?? d.devicesPerNode
        intraNodeBytesPerSecond = (site.intraNodeGBs ?? d.intraNodeGBs) * 1e9
        nicBytesPerSecond = (site.nicGbps ?? d.nicGbps) * 1e9 / 8
        latency = (site.latencyMs ?? 0.01) / 1000
    }
}

/// Seconds and bytes of one optimizer step of one group, by part, and memory per device.
public struct GroupCost: Codable, Sendable, Equatable {
    /// Forward and backward of one micro-batch on the slowest stage (matrix products, memory-bound
    /// operations, tensor-parallel all-reduces, pipeline transmissions and hop latencies).
    public var stageSeconds: Double
    public var computeSeconds: Double
    public var memoryBoundSeconds: Double
    public var tensorParallelSeconds: Double
    /// Transmissions to the next and the previous stage, during which the stage is busy.
    public var pipelineSendSeconds: Double
    /// One-way latency of a hop between stages: it delays a micro-batch but does not keep the
    /// sender busy.
    public var pipelineHopLatency: Double
    /// Micro-batches per replica per step.
    public var microBatches: Int
    /// (micro-batches + stages − 1) × stage time: the 1F1B schedule with its bubble.
    public var pipelineSeconds: Double
    /// Gradient all-reduce across replicas, the part not hidden behind the backward pass.
    public var dataParallelSeconds: Double
    public var optimizerSeconds: Double
    public var stepSeconds: Double
    /// Bytes each device sends per step, by kind.
    public var tensorParallelBytes: Double
    public var pipelineBytes: Double
    public var dataParallelBytes: Double
    /// Memory per device (the fullest stage): weights, gradients, optimizer state, activations.
    public var weightMemory: Double
    public var gradientMemory: Double
    public var optimizerMemory: Double
    public var activationMemory: Double
    public var memoryBytes: Double { weightMemory + gradientMemory + optimizerMemory + activationMemory }
}

/// The analytic cost model. Every constant is named and its source or calibration given here.
///
/// Compute: a micro-batch of b sequences of s tokens costs, per block and tensor-parallel rank,
/// 24·b·s·h²/t FLOPs in matrix products and 4·b·s²·h/t in attention scores and context, forward;
/// backward is twice that and full recomputation adds one forward (Megatron-LM's count). The last
/// stage adds the LM head, 6·b·s·h·V/t over forward and backward. Matrix products run at the
/// device's sustained rate (peak × achievable) scaled by `shapeEfficiency`, which falls for
/// narrow matrices: h/t / (h/t + `narrowMatrixWidth`).
/// Memory-bound work (LayerNorm, GELU, softmax, residuals, dropout) moves
/// `elementwiseBytesPerToken(h, a, s, t)` bytes per token per block forward, twice that backward.
/// Tensor parallelism: 4 all-reduces of b·s·h values per block per micro-batch (6 with
/// recomputation), ring time 2(t−1)/t·bytes over the node's links. Pipeline: each stage boundary
/// sends b·s·h values forward and the same backward per micro-batch; a send keeps its stage busy
/// for its transmission (blocking sends: DT-FM's regional cases fit compute + sends, not their
/// maximum) and its latency delays the receiver. 1F1B keeps only as many micro-batches in flight
/// as there are stages, so nothing hides the hops: a stage's time per micro-batch is its compute,
/// its two transmissions and two hop latencies, and a step is (m + p − 1) such stage times (the
/// simulator's replay of the schedule agrees).
/// Data parallelism: a ring all-reduce of the stage's gradients over the NIC (inside a node when
/// the replicas fit in one), of which `dataParallelOverlap` hides behind the backward pass.
/// Optimizer: reads and writes weights, gradients and state once, at memory bandwidth.
public enum CostModel {
    /// Matrix width at which products run at half their sustained rate (calibrated on the
    /// Megatron-LM 2021 A100 runs in published-runs.md); a device may give its own.
    public static let narrowMatrixWidth = 160.0
    /// Share of the gradient all-reduce hidden behind the backward pass.
    public static let dataParallelOverlap = 0.5
    /// Fraction of a link's nominal bandwidth that collectives reach (NCCL-like).
    public static let linkEfficiency = 0.8

    /// Bytes of memory-bound traffic per token per block, forward: reads and writes of the
    /// activations LayerNorm, GELU, softmax, dropout and residuals touch (about 3 passes over
    /// Korthikanti et al.'s 34·h + 5·a·s bytes of saved activations).
    static func elementwiseBytesPerToken(h: Double, a: Double, s: Double, t: Double) -> Double {
        3 * (34 * h / t + 5 * a * s / t)
    }

    /// Seconds one block takes for a micro-batch of `tokens` on one of `t` tensor-parallel ranks
    /// of `device`, forward and backward (and the recomputed forward): matrix products, and the
    /// memory-bound work beside them.
    static func blockSeconds(model: ModelSpec, device: DeviceSpec, tokens: Double, t: Double, recompute: Bool) -> (compute: Double, memoryBound: Double) {
        let (h, s, a) = (Double(model.hidden), Double(model.sequenceLength), Double(model.heads))
        let passes = recompute ? 4.0 : 3.0
        let flops = passes * (24 * tokens * h * h + 4 * tokens * s * h) / t
        let elementwise = elementwiseBytesPerToken(h: h, a: a, s: s, t: t) * tokens * passes
        return (flops / matrixRate(model: model, device: device, t: t), elementwise / (device.memoryBandwidthTBs * 1e12))
    }

    /// Seconds of the LM head (forward and backward) for a micro-batch of `tokens`.
    static func headSeconds(model: ModelSpec, device: DeviceSpec, tokens: Double, t: Double) -> Double {
        6 * tokens * Double(model.hidden) * Double(model.vocabulary) / t / matrixRate(model: model, device: device, t: t)
    }

    /// The device's sustained rate on this model's matrix products (narrow ones run slower).
    static func matrixRate(model: ModelSpec, device: DeviceSpec, t: Double) -> Double {
        let width = Double(model.hidden) / t
        return device.sustainedFLOPS * width / (width + (device.narrowMatrixWidth ?? narrowMatrixWidth))
    }

    /// Activation bytes one block keeps per micro-batch until its backward (Korthikanti et al.:
    /// 2 bytes per value; with recomputation only the block's input), and what one block needs
    /// in full while it is recomputed.
    static func activationBytes(model: ModelSpec, tokens: Double, t: Double, recompute: Bool) -> (kept: Double, full: Double) {
        let (h, s, a) = (Double(model.hidden), Double(model.sequenceLength), Double(model.heads))
        let full = tokens * h * (10 + 24 / t + 5 * a * s / (h * t))
        return (recompute ? 2 * tokens * h : full, full)
    }

    public static func evaluate(model: ModelSpec, training: TrainingSpec, site: SiteResources, layout: GroupLayout) -> GroupCost {
        let (h, s, v) = (Double(model.hidden), Double(model.sequenceLength), Double(model.vocabulary))
        let t = Double(layout.tensorParallel), p = layout.pipelineStages, b = Double(layout.microBatch)
        let layersPerStage = Double((model.layers + p - 1) / p)
        let d = site.device
        let sequencesPerReplica = Double(training.globalBatchSequences) / Double(layout.dataParallel)
        let m = max(1, Int((sequencesPerReplica / b).rounded(.up)))
        let tokens = b * s

        // Compute of the slowest stage (the last one: it also has the LM head).
        let block = blockSeconds(model: model, device: d, tokens: tokens, t: t, recompute: layout.recompute)
        let compute = layersPerStage * block.compute + headSeconds(model: model, device: d, tokens: tokens, t: t)
        let memoryBound = layersPerStage * block.memoryBound

        // Tensor parallel all-reduces inside the node.
        let boundaryBytes = tokens * h * training.weightBytes
        var tpSeconds = 0.0, tpBytes = 0.0
        if layout.tensorParallel > 1 {
            let count = (layout.recompute ? 6.0 : 4.0) * layersPerStage
            let perAllReduce = 2 * (t - 1) / t * boundaryBytes
            tpBytes = count * perAllReduce * Double(m)
            tpSeconds = count * (perAllReduce / (site.intraNodeBytesPerSecond * linkEfficiency) + 2 * (t - 1) * site.latency)
        }
        // Pipeline sends between stages (over the NIC: stages sit on different nodes).
        var ppSeconds = 0.0, ppBytes = 0.0
        if p > 1 {
            let perSend = boundaryBytes / t
            ppBytes = 2 * perSend * Double(m)
            ppSeconds = 2 * perSend / (site.nicBytesPerSecond * linkEfficiency)
        }
        let hop = p > 1 ? site.latency : 0
        let stage = compute + memoryBound + tpSeconds + ppSeconds + 2 * hop
        let pipeline = Double(m + p - 1) * stage

        // Gradient all-reduce across replicas.
        let stageParameters = layersPerStage * model.parametersPerLayer / t + (p == 1 ? model.embeddingParameters / t : v * h / t)
        var dpSeconds = 0.0, dpBytes = 0.0
        if layout.dataParallel > 1 {
            let dp = Double(layout.dataParallel)
            let gradientBytes = stageParameters * training.gradientBytes
            dpBytes = 2 * (dp - 1) / dp * gradientBytes
            // Replicas of one stage sit on different nodes unless everything fits in one node.
            let inNode = layout.devices <= site.devicesPerNode
            let bandwidth = (inNode ? site.intraNodeBytesPerSecond : site.nicBytesPerSecond) * linkEfficiency
            let full = dpBytes / bandwidth + 2 * (dp - 1) * site.latency
            dpSeconds = full * (1 - dataParallelOverlap)
        }
        let stateBytes = 2 * stageParameters * (training.weightBytes + training.gradientBytes + training.optimizerBytesPerParameter)
        let optimizer = stateBytes / (d.memoryBandwidthTBs * 1e12)

        // Memory of the fullest stage (the first: it holds p micro-batches of activations in 1F1B).
        let inFlight = Double(min(p, m))
        let perLayer = activationBytes(model: model, tokens: tokens, t: t, recompute: layout.recompute)
        let activations = layersPerStage * inFlight * perLayer.kept + (layout.recompute ? perLayer.full : 0)
        let optimizerShards = layout.shardOptimizer ? Double(layout.dataParallel) : 1
        return GroupCost(
            stageSeconds: stage, computeSeconds: compute, memoryBoundSeconds: memoryBound, tensorParallelSeconds: tpSeconds,
            pipelineSendSeconds: ppSeconds, pipelineHopLatency: hop, microBatches: m, pipelineSeconds: pipeline, dataParallelSeconds: dpSeconds,
            optimizerSeconds: optimizer, stepSeconds: pipeline + dpSeconds + optimizer,
            tensorParallelBytes: tpBytes, pipelineBytes: ppBytes, dataParallelBytes: dpBytes,
            weightMemory: stageParameters * training.weightBytes, gradientMemory: stageParameters * training.gradientBytes,
            optimizerMemory: stageParameters * training.optimizerBytesPerParameter / optimizerShards, activationMemory: activations)
    }
}
