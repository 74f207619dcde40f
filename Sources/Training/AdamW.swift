import ModelCore
import TensorCore

/// AdamW over a flat parameter slab, with decay only on the tensors the layout marks as decayed.
///
/// Holds the two moment slabs; they stay local to a worker (DiLoCo keeps inner state local).
public final class AdamW: Optimizer {
    /// First moments, same layout as the parameters.
    public let m: FloatSlab
    /// Second moments, same layout as the parameters.
    public let v: FloatSlab
    /// Number of updates applied so far.
    public private(set) var stepCount = 0
    public let beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float
    private let runs: [(range: Range<Int>, decayed: Bool)]

    /// Zeroed moments for `layout`.
    public init(layout: ParameterLayout, beta1: Float = 0.9, beta2: Float = 0.95, epsilon: Float = 1e-8, weightDecay: Float = 0.1) {
        m = FloatSlab(count: layout.count)
        v = FloatSlab(count: layout.count)
        runs = layout.decayRuns
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }

    /// Applies one update; `gradientScale` multiplies every gradient first (clipping).
    public func step(parameters: FloatSlab, gradients: FloatSlab, learningRate: Float, gradientScale: Float = 1, parallelism: Parallelism) {
        precondition(parameters.count == m.count && gradients.count == m.count, "[AdamW] slab size mismatch")
        stepCount += 1
        let hyper = AdamWStep(learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon,
                              weightDecay: weightDecay, step: stepCount, gradientScale: gradientScale)
        adamWUpdate(runs: runs, parameters: parameters, gradients: gradients, m: m, v: v, hyper: hyper, parallelism: parallelism)
    }

    /// Every parameter has a second moment.
    public var secondMomentRanges: [Range<Int>] { [0..<v.count] }

    /// Restores the step counter (from a checkpoint).
    public func restore(stepCount: Int) { self.stepCount = stepCount }
}

/// One AdamW update of the slab ranges `runs`, with `hyper`'s weight decay only where a run is decayed.
func adamWUpdate(runs: [(range: Range<Int>, decayed: Bool)], parameters: FloatSlab, gradients: FloatSlab, m: FloatSlab, v: FloatSlab,
                 hyper: AdamWStep, parallelism: Parallelism) {
    for run in runs {
        var h = hyper
        if !run.decayed { h.weightDecay = 0 }
        let o = run.range.lowerBound
        adamWUpdate(params: parameters.base + o, grads: gradients.base + o, m: m.base + o, v: v.base + o,
                    count: run.range.count, hyper: h, parallelism: parallelism)
    }
}

/// The L2 norm of a whole gradient slab.
public func gradientNorm(_ gradients: FloatSlab, parallelism: Parallelism) -> Float {
    Float(sumOfSquares(gradients.base, count: gradients.count, parallelism: parallelism).squareRoot())
}
