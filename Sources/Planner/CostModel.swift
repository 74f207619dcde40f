import Foundation

/// Number formats a run computes in: the compute rate and the bytes per value follow.
public enum Precision: String, Codable, Sendable, CaseIterable {
    case bf16, fp16, fp32
}

/// How attention is computed: fused kernels (FlashAttention and its kin) never materialise the
/// s × s scores; unfused ones write, read and keep them. `auto` takes the device's own default.
public enum AttentionKernel: String, Codable, Sendable, CaseIterable {
    case auto, fused, unfused
}

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
    /// The format matrix products run in: BF16/FP16 on tensor cores, or FP32.
    public var precision: Precision = .bf16
    public var attention: AttentionKernel = .auto

    public init(globalBatchSequences: Int, totalTokens: Double = 0) {
        self.globalBatchSequences = globalBatchSequences
        self.totalTokens = totalTokens
    }

    /// FP32 weights, gradients and Adam moments (8 bytes of state), computed in FP32.
    public mutating func useFP32() {
        precision = .fp32
        weightBytes = 4
        gradientBytes = 4
        optimizerBytesPerParameter = 8
    }

    /// Computes in `precision`: FP32 with its bytes (`useFP32`), BF16/FP16 with the defaults'.
    public mutating func use(_ precision: Precision) {
        if precision == .fp32 { useFP32() } else { self.precision = precision }
    }

    /// Whether attention runs fused on `device`.
    public func fusedAttention(on device: DeviceSpec) -> Bool {
        switch attention {
        case .auto: device.fusedAttention
        case .fused: true
        case .unfused: false
        }
    }
}

/// A layout of one group of identical devices: tensor parallel inside a node, pipeline stages,
/// data-parallel replicas, sequences per micro-batch, activation recomputation, and how much of
/// the training state is sharded across replicas: ZeRO stage 1 the optimizer state, 2 also the
/// gradients, 3 (FSDP) also the weights.
public struct GroupLayout: Codable, Sendable, Equatable, Hashable {
    public var tensorParallel: Int
    public var pipelineStages: Int
    public var dataParallel: Int
    public var microBatch: Int
    public var recompute: Bool
    public var zeroStage: Int
    /// Tensor-parallel collectives overlapped with the matrix products they feed (Megatron-Core's
    /// --tp-comm-overlap); otherwise they wait for each other.
    public var tensorParallelOverlap: Bool
    /// Whether the gradient all-reduce starts during the backward pass (PyTorch DDP, Megatron-LM)
    /// or only after the last micro-batch (DeepSpeed's pipeline engine): then none of it is hidden.
    public var dataParallelOverlapped: Bool

    public init(tensorParallel: Int, pipelineStages: Int, dataParallel: Int, microBatch: Int, recompute: Bool, zeroStage: Int = 0,
                tensorParallelOverlap: Bool = false, dataParallelOverlapped: Bool = true) {
        self.tensorParallel = tensorParallel
        self.pipelineStages = pipelineStages
        self.dataParallel = dataParallel
        self.microBatch = microBatch
        self.recompute = recompute
        self.zeroStage = zeroStage
        self.tensorParallelOverlap = tensorParallelOverlap
        self.dataParallelOverlapped = dataParallelOverlapped
    }

    public var devices: Int { tensorParallel * pipelineStages * dataParallel }

    /// "TP8 PP4 DP32, micro-batch 1, recompute, ZeRO-1".
    public var summary: String {
        var text = "TP\(tensorParallel) PP\(pipelineStages) DP\(dataParallel), micro-batch \(microBatch)"
        if recompute { text += ", recompute" }
        if zeroStage > 0 { text += zeroStage == 3 ? ", ZeRO-3/FSDP" : ", ZeRO-\(zeroStage)" }
        if tensorParallelOverlap && tensorParallel > 1 { text += ", TP overlapped" }
        if !dataParallelOverlapped && dataParallel > 1 { text += ", DP all-reduce after the backward" }
        return text
    }

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
    /// Gradient all-reduce across replicas, the part not hidden behind the backward pass, and a
    /// tied embedding's between the first and the last pipeline stage.
    public var dataParallelSeconds: Double
    /// What the compute loses while hidden collectives run beside it (they take SMs and memory
    /// bandwidth): `overlapSlowdown` of the time they overlap.
    public var contentionSeconds: Double
    public var optimizerSeconds: Double
    public var stepSeconds: Double
    /// Parameters of the fullest stage per tensor-parallel rank, before any ZeRO sharding.
    public var stageParameters: Double
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
/// 2·b·s·W/t FLOPs in matrix products (W: the block's matrix weights, 12h² in GPT) and
/// 4·b·s²·h/t in attention scores and context, forward; backward is twice that and full
/// recomputation adds one forward (Megatron-LM's count). The last stage adds the LM head,
/// 6·b·s·h·V/t over forward and backward. Matrix products run at the device's sustained rate at
/// the run's precision (peak × achievable) scaled by the shape, which falls for narrow
/// matrices: h/t / (h/t + w), w the device's half-rate width (`halfRateWidth`).
/// Fused attention (FlashAttention) computes only the causal half of the scores, recomputes
/// them in the backward pass (backward = 2.5 forwards, FlashAttention-2's count) and runs at
/// `fusedAttentionEfficiency` of the matrix rate (or the device's measured share of its peak); it never writes the s × s scores, so neither
/// their memory traffic nor their activation memory is paid. Unfused attention is charged in
/// full at the matrix rate, with the softmax and dropout traffic and memory of the scores.
/// Memory-bound work (LayerNorm, GELU, softmax, residuals, dropout) moves
/// `elementwiseBytesPerToken` bytes per token per block forward, twice that backward.
/// Tensor parallelism: 4 all-reduces of b·s·h values per block per micro-batch (6 with
/// recomputation), ring time 2(t−1)/t·bytes over the node's links. Pipeline: each stage boundary
/// sends b·s·h values forward and the same backward per micro-batch; a send keeps its stage busy
/// for its transmission (blocking sends: DT-FM's regional cases fit compute + sends, not their
/// maximum) and its latency delays the receiver. 1F1B keeps only as many micro-batches in flight
/// as there are stages, so nothing hides the hops: a stage's time per micro-batch is its compute,
/// its two transmissions and two hop latencies, and a step is (m + p − 1) such stage times (the
/// simulator's replay of the schedule agrees).
/// Data parallelism: a ring all-reduce of the stage's gradients over the NIC (inside a node when
/// the replicas fit in one), of which `dataParallelOverlap` hides behind the backward pass (none
/// where the framework all-reduces only after the last micro-batch)
/// (ZeRO-1 sends the same bytes as a reduce-scatter and an all-gather; ZeRO-2 reduce-scatters
/// every micro-batch's gradients, since it keeps only its shard of them). ZeRO-3/FSDP
/// gathers every block's weights before its forward and again before its backward and
/// reduce-scatters its gradients, for every micro-batch: 3(d−1)/d of the weights per
/// micro-batch, prefetched behind the compute, so only what the compute cannot cover and one
/// block's collectives at each end of a pass are exposed.
/// A tied embedding's gradient is all-reduced between a pipeline's first and last stage every
/// step, exposed. Collectives counted as hidden slow the compute beside them by
/// `overlapSlowdown` of their time. The loss makes `logitBytesPerValue` of memory traffic per logit.
/// Optimizer: reads and writes weights, gradients and state once, at memory bandwidth, for the
/// replica's shard of them when the state is sharded.
public enum CostModel {
    /// Matrix width at which products run at half their sustained rate (calibrated on the
    /// Megatron-LM 2021 A100 runs in published-runs.md); a device may give its own.
    public static let narrowMatrixWidth = 160.0
    /// Share of the gradient all-reduce hidden behind the backward pass.
    public static let dataParallelOverlap = 0.5
    /// Fraction of a link's nominal bandwidth that collectives reach (NCCL-like).
    public static let linkEfficiency = 0.8
    /// Fused attention's rate as a share of the device's sustained matrix rate: FlashAttention-2
    /// reaches 170–190 TFLOP/s forward and backward (causal, head size 128, 2k–8k tokens) on an
    /// A100 whose largest products reach 271 (Dao 2023, Fig. 4–6; MAMF from devices.md).
    public static let fusedAttentionEfficiency = 0.65
    /// Slowdown of the compute that runs while a collective runs beside it: 18.9% on average
    /// over GPT and Llama layers on A100, H100, MI250 and MI210 (Lee et al. 2025, arXiv
    /// 2507.03114: the collective's kernels hold SMs and share memory bandwidth). A collective
    /// counted as hidden costs this share of the time it overlaps.
    public static let overlapSlowdown = 0.189

    /// What collectives hidden for `hidden` seconds beside `compute` seconds of work cost it.
    static func contention(hidden: Double, compute: Double) -> Double {
        overlapSlowdown * max(0, min(hidden, compute))
    }
    /// Backward of fused attention in forwards: FlashAttention-2 counts 2.5 (five products
    /// against two, the scores recomputed).
    static let fusedAttentionBackward = 2.5

    /// Bytes of memory-bound traffic per token per block, forward: reads and writes of the
    /// activations LayerNorm, GELU, softmax, dropout and residuals touch (about 3 passes over
    /// Korthikanti et al.'s saved activations, 34·h + 5·a·s bytes for GPT; the scores' 5·a·s
    /// only when attention is unfused).
    static func elementwiseBytesPerToken(model: ModelSpec, t: Double, fused: Bool) -> Double {
        let (h, a, s) = (Double(model.hidden), Double(model.heads), Double(model.sequenceLength))
        return 3 * (18 * h + feedForwardActivationBytes(model) + (fused ? 0 : 5 * a * s)) / t
    }

    /// Activation bytes per token the feed-forward block keeps (16h in GPT: its input of 4h
    /// values to GELU and GELU's output; a gated block keeps both branches and their product).
    static func feedForwardActivationBytes(_ model: ModelSpec) -> Double {
        Double(model.feedForward) * (model.gatedFeedForward ? 6 : 4)
    }

    /// Seconds one block takes for a micro-batch of `tokens` on one of `t` tensor-parallel ranks
    /// of `device`, forward and backward (and the recomputed forward): matrix products and
    /// attention, and the memory-bound work beside them.
    static func blockSeconds(model: ModelSpec, training: TrainingSpec, device: DeviceSpec, tokens: Double, t: Double,
                             recompute: Bool) -> (compute: Double, memoryBound: Double) {
        let (h, s) = (Double(model.hidden), Double(model.sequenceLength))
        let passes = recompute ? 4.0 : 3.0
        let fused = training.fusedAttention(on: device)
        let rate = matrixRate(model: model, training: training, device: device, t: t)
        let attentionForward = 4 * tokens * s * h / t
        var seconds = passes * 2 * model.matrixParametersPerLayer * tokens / t / rate
        if fused {
            // The causal half, a backward of 2.5 forwards, and one more forward when recomputing.
            let flops = 0.5 * attentionForward * (1 + fusedAttentionBackward + (recompute ? 1 : 0))
            let attentionRate = device.fusedAttentionShare.map { $0 * device.peakFLOPS(training.precision) } ?? rate * fusedAttentionEfficiency
            seconds += flops / attentionRate
        } else {
            seconds += passes * attentionForward / rate
        }
        let elementwise = elementwiseBytesPerToken(model: model, t: t, fused: fused) * tokens * passes
        return (seconds, elementwise / (device.memoryBandwidthTBs * 1e12))
    }

    /// Bytes of memory traffic per logit in the loss (forward and backward), beside the LM head's
    /// products: the logits cast to FP32 (read 2, write 4), the max and the sum of exponentials
    /// (two reads of 4), the softmax written as the logits' gradient (write 4, then read 4 and
    /// written in 2 for the head's backward) — Megatron-LM's vocab-parallel cross-entropy and
    /// PyTorch's `cross_entropy` both take about these passes.
    static let logitBytesPerValue = 24.0

    /// Seconds of the loss's memory-bound passes over a micro-batch's logits (b·s·V/t values).
    static func lossSeconds(model: ModelSpec, device: DeviceSpec, tokens: Double, t: Double) -> Double {
        tokens * Double(model.vocabulary) / t * logitBytesPerValue / (device.memoryBandwidthTBs * 1e12)
    }

    /// Seconds of the LM head (forward and backward) for a micro-batch of `tokens`.
    static func headSeconds(model: ModelSpec, training: TrainingSpec, device: DeviceSpec, tokens: Double, t: Double) -> Double {
        6 * tokens * Double(model.hidden) * Double(model.vocabulary) / t / matrixRate(model: model, training: training, device: device, t: t)
    }

    /// The device's sustained rate at the run's precision on this model's matrix products
    /// (narrow ones run slower).
    static func matrixRate(model: ModelSpec, training: TrainingSpec, device: DeviceSpec, t: Double) -> Double {
        let width = Double(model.hidden) / t
        return device.sustainedFLOPS(training.precision) * width / (width + halfRateWidth(device, training.precision))
    }

    /// The matrix width at which a device's products run at half rate: its own (a CPU's, from
    /// `bench engine`), else `narrowMatrixWidth` scaled by the device's ridge point (peak FLOPs
    /// per byte of memory bandwidth) against the A100's on which it was calibrated: a narrow
    /// product is bound by loading its operands, so a device with more FLOPs per byte needs
    /// wider matrices to reach its rate.
    static func halfRateWidth(_ device: DeviceSpec, _ precision: Precision) -> Double {
        if let own = device.narrowMatrixWidth { return own }
        let ridge = device.peakFLOPS(precision) / (device.memoryBandwidthTBs * 1e12)
        return narrowMatrixWidth * ridge / calibrationRidge
    }

    /// The A100-80GB's ridge point, 312 TFLOP/s over 2.039 TB/s: where `narrowMatrixWidth` was fitted.
    static let calibrationRidge = 312.0 / 2.039

    /// Activation bytes one block keeps per micro-batch until its backward (Korthikanti et al.
    /// with sequence parallelism: 2 bytes per value, (34 + 5·a·s/h)·h/t per token for GPT; with recomputation
    /// only the block's input), and what one block needs in full while it is recomputed.
    static func activationBytes(model: ModelSpec, training: TrainingSpec, device: DeviceSpec, tokens: Double, t: Double,
                                recompute: Bool) -> (kept: Double, full: Double) {
        let (h, s, a) = (Double(model.hidden), Double(model.sequenceLength), Double(model.heads))
        let scores = training.fusedAttention(on: device) ? 0 : 5 * a * s
        // With tensor parallelism, sequence parallelism (Korthikanti et al.) splits the
        // LayerNorm and dropout activations too.
        let full = tokens * (10 * h + 8 * h + feedForwardActivationBytes(model) + scores) / t
        return (recompute ? 2 * tokens * h : full, full)
    }

    /// One block's tensor-parallel collectives for a micro-batch of `tokens` on `t` ranks inside
    /// a node: 4 all-reduces of its activations (6 with recomputation), seconds and bytes per rank.
    static func tensorParallelCollectives(model: ModelSpec, training: TrainingSpec, site: SiteResources, tokens: Double, t: Int,
                                          recompute: Bool) -> (seconds: Double, bytes: Double) {
        guard t > 1 else { return (0, 0) }
        let count = recompute ? 6.0 : 4.0
        let perAllReduce = 2 * Double(t - 1) / Double(t) * tokens * Double(model.hidden) * training.weightBytes
        let seconds = perAllReduce / (site.intraNodeBytesPerSecond * linkEfficiency) + 2 * Double(t - 1) * site.latency
        return (count * seconds, count * perAllReduce)
    }

    /// The all-reduce of a tied embedding's gradient between the first stage (the input
    /// embedding) and the last (the LM head) of a pipeline, after the backward and before the
    /// optimizer, every step (Megatron-LM's embedding group, DeepSpeed's tied modules): V·h/t
    /// gradients, which two ranks exchange in full, in the format the model computes in (DeepSpeed
    /// all-reduces the module's own gradient there even where the data-parallel all-reduce runs in
    /// FP32). Nothing to do without a pipeline or a tie.
    static func tiedEmbeddingAllReduce(model: ModelSpec, training: TrainingSpec, stages: Int, t: Double, bytesPerSecond: Double,
                                       latency: Double) -> (seconds: Double, bytes: Double) {
        guard stages > 1 && model.tiedEmbeddings else { return (0, 0) }
        let bytes = Double(model.vocabulary) * Double(model.hidden) / t * training.weightBytes
        return (bytes / bytesPerSecond + 2 * latency, bytes)
    }

    /// Bytes/s per device of a ring among `replicas` data-parallel peers (each `tensorParallel`
    /// devices): the node's links when they share one node; across nodes, the k peers that share
    /// a node (ranks ordered tensor-parallel first, then data-parallel, as Megatron-LM and NCCL's
    /// rings lay them out) each drive their own NIC in parallel rings, so the ring runs at k NICs'
    /// rate, at most the node's links.
    static func dataParallelBandwidth(site: SiteResources, replicas: Int, tensorParallel: Int, inOneNode: Bool) -> Double {
        let intra = site.intraNodeBytesPerSecond > 0 ? site.intraNodeBytesPerSecond : site.nicBytesPerSecond
        if inOneNode { return intra * linkEfficiency }
        let sharing = Double(max(1, min(replicas, site.devicesPerNode / tensorParallel)))
        return min(site.nicBytesPerSecond * sharing, intra) * linkEfficiency
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
        let block = blockSeconds(model: model, training: training, device: d, tokens: tokens, t: t, recompute: layout.recompute)
        let compute = layersPerStage * block.compute + headSeconds(model: model, training: training, device: d, tokens: tokens, t: t)
        let memoryBound = layersPerStage * block.memoryBound + lossSeconds(model: model, device: d, tokens: tokens, t: t)

        // Tensor parallel all-reduces inside the node.
        let boundaryBytes = tokens * h * training.weightBytes
        let perLayerTP = tensorParallelCollectives(model: model, training: training, site: site, tokens: tokens, t: layout.tensorParallel,
                                                   recompute: layout.recompute)
        let tpBytes = layersPerStage * perLayerTP.bytes * Double(m)
        var tpSeconds = layersPerStage * perLayerTP.seconds
        // Overlapped collectives cost only what the products they hide behind cannot cover,
        // and slow those products while they run.
        var stageContention = 0.0
        if layout.tensorParallelOverlap {
            stageContention = contention(hidden: tpSeconds, compute: compute)
            tpSeconds = max(0, tpSeconds - compute)
        }
        // Pipeline sends between stages (over the NIC: stages sit on different nodes).
        var ppSeconds = 0.0, ppBytes = 0.0
        if p > 1 {
            let perSend = boundaryBytes / t
            ppBytes = 2 * perSend * Double(m)
            ppSeconds = 2 * perSend / (site.nicBytesPerSecond * linkEfficiency)
        }
        let hop = p > 1 ? site.latency : 0
        let stage = compute + memoryBound + tpSeconds + ppSeconds + 2 * hop + stageContention
        let pipeline = Double(m + p - 1) * stage

        // Gradient all-reduce (or ZeRO-3's gathers and reduce-scatters) across replicas.
        // The last stage holds the LM head (a copy of a tied embedding); one stage holds all of them.
        let stageParameters = (layersPerStage * model.parametersPerLayer + (p == 1 ? model.embeddingParameters : v * h)) / t
        let dp = Double(layout.dataParallel)
        var dpSeconds = 0.0, dpBytes = 0.0, dpHidden = 0.0
        if layout.dataParallel > 1 {
            // Replicas of one stage sit on different nodes unless everything fits in one node.
            let bandwidth = dataParallelBandwidth(site: site, replicas: layout.dataParallel, tensorParallel: layout.tensorParallel,
                                                  inOneNode: layout.devices <= site.devicesPerNode)
            if layout.zeroStage == 3 {
                let collectives = 3 * Double(m)
                dpBytes = collectives * (dp - 1) / dp * stageParameters * training.weightBytes
                let full = dpBytes / bandwidth + collectives * layersPerStage * (dp - 1) * site.latency
                let perBlock = full / (collectives * layersPerStage)
                dpSeconds = max(2 * perBlock, full - (pipeline - Double(p - 1) * stage))
                dpHidden = full - dpSeconds
            } else {
                // ZeRO-2 reduce-scatters every micro-batch's gradients (it keeps only its shard)
                // and all-gathers the weights once; the others all-reduce once per step.
                let collectives = layout.zeroStage == 2 ? Double(m + 1) : 2
                dpBytes = collectives * (dp - 1) / dp * stageParameters * training.gradientBytes
                let full = dpBytes / bandwidth + collectives * (dp - 1) * site.latency
                dpSeconds = full * (layout.dataParallelOverlapped ? 1 - dataParallelOverlap : 1)
                dpHidden = full - dpSeconds
            }
        }
        // Stages sit on different nodes: the tied embedding's copies meet over the NIC.
        let tied = tiedEmbeddingAllReduce(model: model, training: training, stages: p, t: t,
                                          bytesPerSecond: site.nicBytesPerSecond * linkEfficiency, latency: site.latency)
        dpSeconds += tied.seconds
        dpBytes += tied.bytes
        // Hidden data-parallel collectives slow the compute they overlap (at most all of it).
        let dpContention = contention(hidden: dpHidden, compute: Double(m) * (compute + memoryBound))
        let zero = layout.dataParallel > 1 ? layout.zeroStage : 0
        let stateShards = zero >= 1 ? dp : 1
        let stateBytes = 2 * stageParameters * (training.weightBytes + training.gradientBytes + training.optimizerBytesPerParameter)
        let optimizer = stateBytes / stateShards / (d.memoryBandwidthTBs * 1e12)

        // Memory of the fullest stage (the first: it holds p micro-batches of activations in 1F1B).
        let inFlight = Double(min(p, m))
        let perLayer = activationBytes(model: model, training: training, device: d, tokens: tokens, t: t, recompute: layout.recompute)
        let activations = layersPerStage * inFlight * perLayer.kept + (layout.recompute ? perLayer.full : 0)
        // ZeRO-3 holds its shard plus the gathered weights and gradients of the block in use and the next one.
        let gathered = 2 * max(model.parametersPerLayer / t, p == 1 ? model.embeddingParameters / t : 0)
        let weights = zero == 3 ? stageParameters / dp + gathered : stageParameters
        let gradients = zero >= 2 ? stageParameters / dp + (zero == 3 ? gathered : 0) : stageParameters
        return GroupCost(
            stageSeconds: stage, computeSeconds: compute, memoryBoundSeconds: memoryBound, tensorParallelSeconds: tpSeconds,
            pipelineSendSeconds: ppSeconds, pipelineHopLatency: hop, microBatches: m, pipelineSeconds: pipeline, dataParallelSeconds: dpSeconds,
            contentionSeconds: dpContention + Double(m + p - 1) * stageContention,
            optimizerSeconds: optimizer, stepSeconds: pipeline + dpSeconds + dpContention + optimizer, stageParameters: stageParameters,
            tensorParallelBytes: tpBytes, pipelineBytes: ppBytes, dataParallelBytes: dpBytes,
            weightMemory: weights * training.weightBytes, gradientMemory: gradients * training.gradientBytes,
            optimizerMemory: stageParameters * training.optimizerBytesPerParameter / stateShards, activationMemory: activations)
    }
}
