import ModelCore
import TensorCore

/// Muon (Keller Jordan, 2024) for the weight matrices inside the blocks, AdamW for the rest
/// (embeddings, norms, biases), one learning rate and schedule for both.
///
/// For each matrix W with gradient g: m ← μ·m + (1−μ)·g; u = (1−μ)·g + μ·m (Nesterov);
/// O = NewtonSchulz(u) ≈ the orthogonal factor of u; W ← W·(1 − lr·wd) − lr·0.2·√max(rows, cols)·O.
/// The 0.2·√max(rows, cols) factor (Moonshot AI's "Muon is scalable", 2025) gives the update the
/// RMS of a typical AdamW update (O has RMS 1/√max), which is what lets AdamW's learning rate
/// and weight decay serve the matrices too. Matrices keep their momentum in `m`; `v` stays zero
/// there, so the state keeps AdamW's shape and checkpoints, round memory and hand-off carry it.
public final class Muon: Optimizer {
    public let m: FloatSlab
    public let v: FloatSlab
    public private(set) var stepCount = 0
    public let momentum: Float
    public let beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float
    /// The tensors Muon orthogonalises: every matrix inside a block.
    public let matrices: [ParameterTensor]
    private let adamRuns: [(range: Range<Int>, decayed: Bool)]
    private let orthogonalizers: [NewtonSchulz]
    private let update: FloatSlab
    private let scratch: FloatSlab

    /// Zeroed state for `layout`; AdamW's hyper-parameters apply to the tensors that are not matrices.
    public init(layout: ParameterLayout, momentum: Float = 0.95, newtonSchulzSteps: Int = 5,
                beta1: Float = 0.9, beta2: Float = 0.95, epsilon: Float = 1e-8, weightDecay: Float = 0.1) {
        m = FloatSlab(count: layout.count)
        v = FloatSlab(count: layout.count)
        self.momentum = momentum
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        matrices = layout.tensors.filter(Muon.handles)
        adamRuns = layout.tensors.filter { !Muon.handles($0) }.map { ($0.range, $0.decayed) }
        orthogonalizers = matrices.map { NewtonSchulz(rows: $0.shape[0], cols: $0.shape[1], steps: newtonSchulzSteps) }
        update = FloatSlab(count: matrices.map(\.count).max() ?? 0)
        scratch = FloatSlab(count: orthogonalizers.map(\.scratchCount).max() ?? 0)
    }

    /// Matrices inside the blocks; the embeddings (a lookup table, and the output head tied to it)
    /// stay with AdamW, as in every Muon recipe.
    static func handles(_ tensor: ParameterTensor) -> Bool {
        tensor.shape.count == 2 && tensor.name.hasPrefix("h.")
    }

    public func step(parameters: FloatSlab, gradients: FloatSlab, learningRate: Float, gradientScale: Float = 1,
                     parallelism: Parallelism) {
        precondition(parameters.count == m.count && gradients.count == m.count, "[Muon] slab size mismatch")
        stepCount += 1
        let hyper = AdamWStep(learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon,
                              weightDecay: weightDecay, step: stepCount, gradientScale: gradientScale)
        adamWUpdate(runs: adamRuns, parameters: parameters, gradients: gradients, m: m, v: v, hyper: hyper, parallelism: parallelism)
        let mu = momentum
        for (tensor, orthogonalizer) in zip(matrices, orthogonalizers) {
            let o = tensor.offset, n = tensor.count
            let g = gradients.base + o, buffer = m.base + o, u = update.base
            for i in 0..<n {
                let gi = g[i] * gradientScale
                buffer[i] = mu * buffer[i] + (1 - mu) * gi
                u[i] = (1 - mu) * gi + mu * buffer[i]
            }
            orthogonalizer.orthogonalize(u, scratch: scratch.base, parallelism: parallelism)
            let p = parameters.base + o
            let decay = 1 - learningRate * (tensor.decayed ? weightDecay : 0)
            let scale = learningRate * 0.2 * Float(max(tensor.shape[0], tensor.shape[1])).squareRoot()
            for i in 0..<n { p[i] = p[i] * decay - scale * u[i] }
        }
    }

    /// The tensors AdamW updates (adjacent ones joined); the matrices leave `v` at zero.
    public var secondMomentRanges: [Range<Int>] {
        adamRuns.map(\.range).sorted { $0.lowerBound < $1.lowerBound }.reduce(into: []) { joined, range in
            if let last = joined.last, last.upperBound == range.lowerBound {
                joined[joined.count - 1] = last.lowerBound..<range.upperBound
            } else {
                joined.append(range)
            }
        }
    }

    public func restore(stepCount: Int) { self.stepCount = stepCount }
}
